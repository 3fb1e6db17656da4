package rocketmqsource

import (
	"bytes"
	"context"
	"os"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	duckv1 "knative.dev/pkg/apis/duck/v1"
	"sigs.k8s.io/yaml"

	"github.com/tide-run/tide/internal/gcfloor"
)

// containerSource mirrors knative.dev/eventing sources/v1 ContainerSource (importing that package would pull a
// dependency go.sum does not pin), strict enough to catch misspelt fields.
type containerSource struct {
	APIVersion string            `json:"apiVersion"`
	Kind       string            `json:"kind"`
	Metadata   metav1.ObjectMeta `json:"metadata"`
	Spec       struct {
		Template          corev1.PodTemplateSpec `json:"template"`
		duckv1.SourceSpec `json:",inline"`
	} `json:"spec"`
}

// TestContainerSourceExample keeps deploy/knative/containersource/containersource.yaml honest: it is a valid Knative
// ContainerSource (strict decoding, Knative's own validation), runs `tide adapter rocketmq`, and sets only
// variables the adapter reads.
func TestContainerSourceExample(t *testing.T) {
	b, err := os.ReadFile("../../deploy/knative/containersource/containersource.yaml")
	if err != nil {
		t.Fatal(err)
	}
	known := map[string]bool{}
	for _, v := range EnvVars {
		known[v.Name] = true
	}
	known[gcfloor.EnvVar] = true // read by the tide binary's main, for every command
	found := false
	for _, doc := range bytes.Split(b, []byte("\n---\n")) {
		if !bytes.Contains(doc, []byte("kind: ContainerSource")) {
			continue
		}
		found = true
		var cs containerSource
		if err := yaml.UnmarshalStrict(doc, &cs); err != nil {
			t.Fatal(err)
		}
		if cs.APIVersion != "sources.knative.dev/v1" || len(cs.Spec.Template.Spec.Containers) != 1 {
			t.Fatalf("%s with %d containers", cs.APIVersion, len(cs.Spec.Template.Spec.Containers))
		}
		if err := cs.Spec.SourceSpec.Validate(context.Background()); err != nil {
			t.Fatalf("invalid sink or ceOverrides: %v", err)
		}
		c := cs.Spec.Template.Spec.Containers[0]
		if strings.Join(c.Args, " ") != "adapter rocketmq" {
			t.Errorf("args %v", c.Args)
		}
		for _, e := range c.Env {
			if !known[e.Name] {
				t.Errorf("env %s is not read by the adapter", e.Name)
			}
		}
	}
	if !found {
		t.Fatal("no ContainerSource in the example")
	}
}
