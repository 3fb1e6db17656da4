package api

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/tide-run/tide/controlplane/registry"
)

// oldWidget reads the old form {spec: {size}} and writes the new one {apiVersion: new.example/v1, spec: {width}};
// it reads the new form too (Prepare round-trips the defaulted object through JSON).
type oldWidget struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata"`
	Spec              struct {
		Width int `json:"width"`
	} `json:"spec"`
}

func (w *oldWidget) UnmarshalJSON(b []byte) error {
	var raw struct {
		APIVersion string            `json:"apiVersion"`
		Metadata   metav1.ObjectMeta `json:"metadata"`
		Spec       map[string]int    `json:"spec"`
	}
	if err := json.Unmarshal(b, &raw); err != nil {
		return err
	}
	w.TypeMeta = metav1.TypeMeta{APIVersion: "new.example/v1", Kind: "Widget"}
	w.ObjectMeta = raw.Metadata
	w.Spec.Width = raw.Spec["width"]
	if raw.APIVersion == "old.example/v1" {
		w.Spec.Width = raw.Spec["size"]
	}
	return nil
}

func TestStoredAsServesTheConvertedObjectUnderBothPaths(t *testing.T) {
	s, hs := newTestServer(t)
	type newWidget struct {
		metav1.TypeMeta   `json:",inline"`
		metav1.ObjectMeta `json:"metadata"`
		Spec              map[string]int `json:"spec"`
	}
	if err := s.reg.Register(registry.Kind{Group: "new.example", Version: "v1", Kind: "Widget", Plural: "widgets", Namespaced: true,
		New: func() any { return &newWidget{} }}); err != nil {
		t.Fatal(err)
	}
	if err := s.reg.Register(registry.Kind{Group: "old.example", Version: "v1", Kind: "Widget", Plural: "widgets", Namespaced: true,
		New: func() any { return &oldWidget{} }, StoredAs: "Widget.new.example"}); err != nil {
		t.Fatal(err)
	}
	oldPath := hs.URL + "/apis/old.example/v1/namespaces/default/widgets"
	newPath := hs.URL + "/apis/new.example/v1/namespaces/default/widgets"
	code, b := do(t, http.MethodPost, oldPath, `{"apiVersion":"old.example/v1","kind":"Widget","metadata":{"name":"w"},"spec":{"size":3}}`)
	if code != http.StatusCreated || !strings.Contains(string(b), `"apiVersion":"new.example/v1"`) || !strings.Contains(string(b), `"width":3`) {
		t.Fatalf("create via the old path: %d %s", code, b)
	}
	for _, p := range []string{oldPath + "/w", newPath + "/w"} {
		code, b := do(t, http.MethodGet, p, "")
		if code != 200 || !strings.Contains(string(b), `"width":3`) {
			t.Errorf("GET %s: %d %s", p, code, b)
		}
	}
	var obj map[string]any
	_, b = do(t, http.MethodGet, oldPath+"/w", "")
	_ = json.Unmarshal(b, &obj)
	rv := obj["metadata"].(map[string]any)["resourceVersion"]
	code, b = do(t, http.MethodPut, oldPath+"/w", `{"apiVersion":"old.example/v1","kind":"Widget","metadata":{"name":"w","resourceVersion":"`+rv.(string)+`"},"spec":{"size":5}}`)
	if code != 200 || !strings.Contains(string(b), `"width":5`) {
		t.Errorf("update via the old path: %d %s", code, b)
	}
	if code, b := do(t, http.MethodGet, oldPath, ""); code != 200 || !strings.Contains(string(b), `"width":5`) {
		t.Errorf("list via the old path: %d %s", code, b)
	}
	if code, b := do(t, http.MethodDelete, oldPath+"/w", ""); code != 200 {
		t.Errorf("delete via the old path: %d %s", code, b)
	}
	if code, _ := do(t, http.MethodGet, newPath+"/w", ""); code != 404 {
		t.Errorf("after delete: %d", code)
	}
}
