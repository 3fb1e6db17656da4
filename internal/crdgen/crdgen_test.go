package crdgen

import (
	"bytes"
	"flag"
	"os"
	"path/filepath"
	"testing"

	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
)

var update = flag.Bool("update", false, "rewrite deploy/knative/300-rocketmqsource-crd.yaml from the Go types")

// crdFile is the checked-in output, applied by `ko apply -f deploy/knative/`.
var crdFile = filepath.Join("..", "..", "deploy", "knative", "300-rocketmqsource-crd.yaml")

// TestCRDUpToDate fails when the checked-in CRD differs from what the Go types generate: a field added to
// apis/sources/v1alpha1 must reach the cluster's schema, or the API server would prune it.
func TestCRDUpToDate(t *testing.T) {
	got, err := YAML()
	if err != nil {
		t.Fatal(err)
	}
	if *update {
		if err := os.WriteFile(crdFile, got, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(crdFile)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("%s is stale: run `go generate ./internal/crdgen` and commit the result", crdFile)
	}
}

// TestSchemaFollowsTypes checks the generated schema where a mistake would hurt on a cluster: every spec field of
// the Go type is in the schema (else the API server prunes it), types and formats follow the JSON encoding,
// descriptions come from the doc comments, and the CRD has what Knative expects of a source.
func TestSchemaFollowsTypes(t *testing.T) {
	crds, err := CRDs()
	if err != nil {
		t.Fatal(err)
	}
	if len(crds) != 2 || crds[0].Name != "rocketmqsources.sources.knative.dev" || crds[1].Name != "rocketmqsources.sources.eventing.knative.dev" {
		t.Fatalf("CRDs: got %d, want the current and the 2020 group", len(crds))
	}
	for _, c := range crds {
		if c.Labels["duck.knative.dev/source"] != "true" || c.Labels["eventing.knative.dev/source"] != "true" {
			t.Errorf("%s: missing Knative's source duck labels: %v", c.Name, c.Labels)
		}
		v := c.Spec.Versions[0]
		if v.Subresources == nil || v.Subresources.Status == nil {
			t.Errorf("%s: no status subresource", c.Name)
		}
		if got := c.Spec.Names.Categories; len(got) != 3 || got[0] != "all" || got[1] != "knative" || got[2] != "sources" {
			t.Errorf("%s: categories %v", c.Name, got)
		}
		status := v.Schema.OpenAPIV3Schema.Properties["status"]
		cond := status.Properties["conditions"].Items.Schema
		for _, f := range []string{"type", "status", "reason", "message", "lastTransitionTime", "severity"} {
			if _, ok := cond.Properties[f]; !ok {
				t.Errorf("%s: status.conditions[] lacks %s", c.Name, f)
			}
		}
		if lt := cond.Properties["lastTransitionTime"]; lt.Type != "string" {
			t.Errorf("%s: lastTransitionTime: %+v, want a string (apis.VolatileTime marshals as one)", c.Name, lt)
		}
		for _, f := range []string{"sinkUri", "observedGeneration", "consumerGroup", "ceAttributes"} {
			if _, ok := status.Properties[f]; !ok {
				t.Errorf("%s: status lacks %s", c.Name, f)
			}
		}
	}
	spec := crds[0].Spec.Versions[0].Schema.OpenAPIV3Schema.Properties["spec"]
	for _, f := range []string{"nameServers", "topic", "topics", "consumerGroup", "selector", "initialOffset", "ordering",
		"maxInFlight", "namespace", "accessKey", "secretKey", "accessToken", "delivery", "sink", "ceOverrides"} {
		if _, ok := spec.Properties[f]; !ok {
			t.Errorf("spec lacks %s", f)
		}
	}
	if p := spec.Properties["maxInFlight"]; p.Type != "integer" || p.Format != "int32" {
		t.Errorf("maxInFlight: %s/%s", p.Type, p.Format)
	}
	if p := spec.Properties["nameServers"]; p.Type != "array" || p.Items.Schema.Type != "string" {
		t.Errorf("nameServers: %+v", p)
	}
	if p := spec.Properties["sink"].Properties["uri"]; p.Type != "string" {
		t.Errorf("sink.uri: %+v, want string (apis.URL marshals as one)", p)
	}
	ref := spec.Properties["sink"].Properties["ref"]
	for _, f := range []string{"apiVersion", "kind", "name", "namespace"} {
		if _, ok := ref.Properties[f]; !ok {
			t.Errorf("sink.ref lacks %s", f)
		}
	}
	if p := spec.Properties["ceOverrides"].Properties["extensions"]; p.Type != "object" || p.AdditionalProperties == nil || p.AdditionalProperties.Schema.Type != "string" {
		t.Errorf("ceOverrides.extensions: %+v", p)
	}
	sk := spec.Properties["accessKey"].Properties["secretKeyRef"]
	if _, ok := sk.Properties["name"]; !ok { // corev1.LocalObjectReference is embedded inline
		t.Errorf("accessKey.secretKeyRef lacks the inline name: %+v", sk.Properties)
	}
	if d := spec.Properties["topic"].Description; d == "" {
		t.Error("spec.topic has no description: doc comments were not read")
	}
	legacy := crds[1].Spec.Versions[0].Schema.OpenAPIV3Schema.Properties["spec"]
	for _, f := range []string{"topic", "namesrvAddr", "namespace", "groupName", "accessToken", "sink", "serviceAccountName"} {
		if _, ok := legacy.Properties[f]; !ok {
			t.Errorf("2020 spec lacks %s", f)
		}
	}
	var _ apiextensionsv1.JSONSchemaProps
}
