package api

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/serializer/protobuf"
)

// FuzzProtobufBody: any bytes sent as a protobuf body (client-go's typed clientsets) are decoded or refused with a
// 4xx, never a panic or a 5xx; whatever decodes is a JSON object.
func FuzzProtobufBody(f *testing.F) {
	ser := protobuf.NewSerializer(protoScheme, protoScheme)
	var buf bytes.Buffer
	ns := &corev1.Namespace{TypeMeta: metav1.TypeMeta{APIVersion: "v1", Kind: "Namespace"}, ObjectMeta: metav1.ObjectMeta{Name: "shop"}}
	if err := ser.Encode(ns, &buf); err != nil {
		f.Fatal(err)
	}
	f.Add(buf.Bytes())
	f.Add([]byte("k8s\x00"))
	f.Add([]byte("k8s\x00\x0a\x04\x0a\x02v1"))
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, b []byte) {
		out, aerr := protobufToJSON(b)
		if aerr != nil {
			if aerr.code >= 500 {
				t.Fatalf("%d for %q", aerr.code, b)
			}
			return
		}
		var m map[string]any
		if err := json.Unmarshal(out, &m); err != nil {
			t.Fatalf("decoded to non-JSON %q: %v", out, err)
		}
	})
}

// FuzzApplyPatch: any apply-patch body (YAML or JSON) answers a Status or the object, never a 5xx, and a refused
// one changes nothing.
func FuzzApplyPatch(f *testing.F) {
	for _, s := range []string{
		"apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: c\ndata:\n  b: \"2\"\n",
		`{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"c"},"data":{"a":null}}`,
		"apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: c\n  managedFields: [{manager: x}]\n",
		"apiVersion: v1\nkind: Secret\nmetadata:\n  name: c\n", "- a\n- b\n", "{", "",
	} {
		f.Add(s)
	}
	_, hs := newTestServerTB(f)
	url := hs.URL + "/api/v1/namespaces/default/configmaps"
	if code, _ := doRequest(f, "POST", url, "application/json", `{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"c"},"data":{"a":"1"}}`); code != 201 {
		f.Fatal("create")
	}
	f.Fuzz(func(t *testing.T, body string) {
		_, before := doRequest(t, "GET", url+"/c", "", "")
		code, resp := doRequest(t, "PATCH", url+"/c?fieldManager=fuzz&force=true", applyPatchType, body)
		_, after := doRequest(t, "GET", url+"/c", "", "")
		switch {
		case code >= 500:
			t.Fatalf("apply %q: %d %s", body, code, resp)
		case code != 200 && string(before) != string(after):
			t.Fatalf("refused apply %q (%d) changed the object:\n%s\n%s", body, code, before, after)
		}
	})
}

// FuzzAccept: any Accept header picks JSON, a Table or aggregated discovery without failing the request.
func FuzzAccept(f *testing.F) {
	for _, s := range []string{"application/json;as=Table;v=v1;g=meta.k8s.io,application/json", aggregatedV2, "*/*",
		"application/json;as=Table;v=v1beta1;g=meta.k8s.io", "application/json;;;=", ""} {
		f.Add(s)
	}
	_, hs := newTestServerTB(f)
	f.Fuzz(func(t *testing.T, accept string) {
		for _, p := range []string{"/api/v1/namespaces/default/configmaps", "/apis", "/api"} {
			req, _ := http.NewRequest("GET", hs.URL+p, nil)
			req.Header.Set("Accept", accept)
			rec := httptest.NewRecorder()
			hs.Config.Handler.ServeHTTP(rec, req)
			if rec.Code != 200 || !json.Valid(rec.Body.Bytes()) {
				t.Fatalf("GET %s with Accept %q: %d %s", p, accept, rec.Code, rec.Body.Bytes())
			}
		}
	})
}
