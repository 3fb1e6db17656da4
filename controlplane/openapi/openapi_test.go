package openapi

import (
	"encoding/json"
	"testing"

	corev1 "k8s.io/api/core/v1"
	servingv1 "knative.dev/serving/pkg/apis/serving/v1"
)

func TestSchemasFromGoTypes(t *testing.T) {
	b := NewBuilder("#/definitions/")
	name := b.AddKind(&servingv1.Service{}, GVK{Group: "serving.knative.dev", Version: "v1", Kind: "Service"})
	if name != "dev.knative.serving.pkg.apis.serving.v1.Service" {
		t.Fatalf("definition name %q", name)
	}
	svc := b.Defs[name]
	if _, ok := svc.Properties["apiVersion"]; !ok {
		t.Errorf("the inline TypeMeta's apiVersion is missing: %v", svc.Properties)
	}
	if gvk, ok := svc.Extensions["x-kubernetes-group-version-kind"]; !ok {
		t.Errorf("no group-version-kind extension")
	} else if b, _ := json.Marshal(gvk); string(b) != `[{"group":"serving.knative.dev","kind":"Service","version":"v1"}]` {
		t.Errorf("gvk extension %s", b)
	}
	rs := b.Defs["dev.knative.serving.pkg.apis.serving.v1.RevisionSpec"]
	cc, ok := rs.Properties["containerConcurrency"]
	if !ok || cc.Type[0] != "integer" || cc.Format != "int64" {
		t.Errorf("RevisionSpec.containerConcurrency: %+v", cc)
	}
	// The embedded corev1.PodSpec is flattened into RevisionSpec (json:",inline"), and Knative's containers carry
	// no list merge key (BuiltinPatchTags unset), as on a cluster.
	cs, ok := rs.Properties["containers"]
	if !ok || cs.Type[0] != "array" {
		t.Fatalf("RevisionSpec.containers: %+v", cs)
	}
	if _, ok := cs.Extensions["x-kubernetes-patch-merge-key"]; ok {
		t.Errorf("Knative's containers have a merge key")
	}
	// Types with their own encoding: metav1.Time, Quantity (int-or-string), Knative's apis.URL.
	meta := b.Defs["io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta"]
	if ct := meta.Properties["creationTimestamp"]; ct.Type[0] != "string" || ct.Format != "date-time" {
		t.Errorf("creationTimestamp: %+v", ct)
	}
	if or := meta.Properties["ownerReferences"]; or.Extensions["x-kubernetes-patch-merge-key"] != "uid" {
		t.Errorf("ObjectMeta.ownerReferences keeps its merge key: %+v", or.Extensions)
	}
	rr := b.Defs["io.k8s.api.core.v1.ResourceRequirements"]
	lim := rr.Properties["limits"].AdditionalProperties.Schema
	if lim == nil || lim.Extensions["x-kubernetes-int-or-string"] != true {
		t.Errorf("Quantity is not int-or-string: %+v", lim)
	}
	st := b.Defs["dev.knative.serving.pkg.apis.serving.v1.ServiceStatus"]
	if u := st.Properties["url"]; len(u.Type) != 1 || u.Type[0] != "string" {
		t.Errorf("status.url (apis.URL): %+v", u)
	}

	core := NewBuilder("#/definitions/")
	core.BuiltinPatchTags = true
	core.AddKind(&corev1.Secret{}, GVK{Version: "v1", Kind: "Secret"})
	sec := core.Defs["io.k8s.api.core.v1.Secret"]
	if d := sec.Properties["data"]; d.AdditionalProperties == nil || d.AdditionalProperties.Schema.Format != "byte" {
		t.Errorf("Secret.data: %+v", d)
	}
}

// A type with its own decoder is an open kind: its schema cannot say what the decoder accepts.
type custom struct{ A int }

func (c *custom) UnmarshalJSON([]byte) error { return nil }

func TestCustomDecoderIsOpen(t *testing.T) {
	b := NewBuilder("#/definitions/")
	name := b.AddKind(&custom{}, GVK{Group: "x.example", Version: "v1", Kind: "Custom"})
	d := b.Defs[name]
	if spec := d.Properties["spec"]; spec.Extensions["x-kubernetes-preserve-unknown-fields"] != true {
		t.Errorf("open kind's spec: %+v", spec)
	}
	if _, ok := d.Properties["A"]; ok {
		t.Errorf("the Go fields of a custom decoder's type were described")
	}
}
