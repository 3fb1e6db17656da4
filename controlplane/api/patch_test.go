package api

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

func doPatch(t *testing.T, url, contentType, body string) (int, []byte) {
	t.Helper()
	return doRequest(t, http.MethodPatch, url, contentType, body)
}

func decodeObj(t *testing.T, b []byte) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatalf("%v: %s", err, b)
	}
	return m
}

// TestPatch covers what kubectl sends: merge patches (apply, edit, label, patch --type merge) and JSON patches
// (patch --type json), on the object and on its status subresource.
func TestPatch(t *testing.T) {
	_, hs := newTestServer(t)
	base := hs.URL + "/api/v1/namespaces/default/configmaps"
	if code, b := do(t, "POST", base, `{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"c"},"data":{"a":"1","b":"2"}}`); code != 201 {
		t.Fatalf("create %d %s", code, b)
	}
	cases := []struct {
		name, contentType, body string
		wantData                map[string]any
		wantLabel               string
	}{
		{"merge: add, change and delete keys", MergePatchType, `{"data":{"a":"10","b":null,"c":"3"}}`, map[string]any{"a": "10", "c": "3"}, ""},
		{"merge: label (kubectl label)", MergePatchType + "; charset=utf-8", `{"metadata":{"labels":{"tier":"web"}}}`, map[string]any{"a": "10", "c": "3"}, "web"},
		{"json patch: replace, add, remove", JSONPatchType,
			`[{"op":"test","path":"/data/a","value":"10"},{"op":"replace","path":"/data/a","value":"11"},{"op":"add","path":"/data/d","value":"4"},{"op":"remove","path":"/data/c"}]`,
			map[string]any{"a": "11", "d": "4"}, "web"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			code, b := doPatch(t, base+"/c", c.contentType, c.body)
			if code != 200 {
				t.Fatalf("patch %d %s", code, b)
			}
			got := decodeObj(t, b)
			data, _ := got["data"].(map[string]any)
			if len(data) != len(c.wantData) {
				t.Fatalf("data %v, want %v", data, c.wantData)
			}
			for k, v := range c.wantData {
				if data[k] != v {
					t.Fatalf("data %v, want %v", data, c.wantData)
				}
			}
			labels, _ := got["metadata"].(map[string]any)["labels"].(map[string]any)
			if c.wantLabel != "" && labels["tier"] != c.wantLabel {
				t.Fatalf("labels %v", labels)
			}
			// What the PATCH answered is what is stored.
			_, stored := do(t, "GET", base+"/c", "")
			if sd := decodeObj(t, stored)["data"]; !jsonEqual(sd, got["data"]) {
				t.Fatalf("stored %v, answered %v", sd, got["data"])
			}
		})
	}
}

func jsonEqual(a, b any) bool {
	x, _ := json.Marshal(a)
	y, _ := json.Marshal(b)
	return string(x) == string(y)
}

// TestPatchStatusSubresource: a patch of .../status changes the status only; a patch of the object leaves the
// status alone (as Kubernetes does for kinds with a status subresource).
func TestPatchStatusSubresource(t *testing.T) {
	_, hs := newTestServer(t)
	url := hs.URL + "/apis/eventing.knative.dev/v1/namespaces/default/brokers/b"
	if code, b := do(t, "POST", hs.URL+"/apis/eventing.knative.dev/v1/namespaces/default/brokers",
		`{"apiVersion":"eventing.knative.dev/v1","kind":"Broker","metadata":{"name":"b"}}`); code != 201 {
		t.Fatalf("create %d %s", code, b)
	}
	if code, b := doPatch(t, url+"/status", MergePatchType, `{"status":{"observedGeneration":1,"address":{"url":"http://x"}}}`); code != 200 {
		t.Fatalf("status patch %d %s", code, b)
	}
	code, b := doPatch(t, url, MergePatchType, `{"metadata":{"labels":{"a":"b"}},"status":{"address":{"url":"http://forged"}}}`)
	if code != 200 {
		t.Fatalf("object patch %d %s", code, b)
	}
	got := decodeObj(t, b)
	addr, _ := got["status"].(map[string]any)["address"].(map[string]any)
	if addr["url"] != "http://x" {
		t.Fatalf("object patch changed the status: %v", got["status"])
	}
	if got["metadata"].(map[string]any)["labels"].(map[string]any)["a"] != "b" {
		t.Fatalf("labels %v", got["metadata"])
	}
}

// TestBadPatchChangesNothing: every refused patch answers a Status with the reason and leaves the object as it was.
func TestBadPatchChangesNothing(t *testing.T) {
	_, hs := newTestServer(t)
	svcs := hs.URL + "/apis/serving.knative.dev/v1/namespaces/default/services"
	if code, b := do(t, "POST", svcs, `{"apiVersion":"serving.knative.dev/v1","kind":"Service","metadata":{"name":"s"},"spec":{"template":{"spec":{"containers":[{"image":"example.com/hello:1"}]}}}}`); code != 201 {
		t.Fatalf("create %d %s", code, b)
	}
	_, before := do(t, "GET", svcs+"/s", "")
	cases := []struct {
		name, url, contentType, body string
		code                         int
		reason                       metav1.StatusReason
		wantInMessage                string
	}{
		{"strategic merge", svcs + "/s", strategicPatchType, `{}`, 415, metav1.StatusReasonUnsupportedMediaType, "--type merge"},
		{"strategic merge of a custom kind", svcs + "/s", strategicPatchType, `{}`, 415, metav1.StatusReasonUnsupportedMediaType, "built-in kinds"},
		{"server-side apply without a field manager", svcs + "/s", applyPatchType, `{}`, 422, metav1.StatusReasonInvalid, "fieldManager"},
		{"server-side apply of another name", svcs + "/s?fieldManager=m", applyPatchType, `{"apiVersion":"serving.knative.dev/v1","kind":"Service","metadata":{"name":"t"}}`,
			400, metav1.StatusReasonBadRequest, "does not match the name"},
		{"no content type", svcs + "/s", "", `{}`, 415, metav1.StatusReasonUnsupportedMediaType, MergePatchType},
		{"merge patch not an object", svcs + "/s", MergePatchType, `[1]`, 400, metav1.StatusReasonBadRequest, "expected a JSON object"},
		{"broken json patch", svcs + "/s", JSONPatchType, `{"op":`, 400, metav1.StatusReasonBadRequest, "cannot decode the JSON patch"},
		{"failed test op", svcs + "/s", JSONPatchType, `[{"op":"test","path":"/metadata/name","value":"other"}]`, 422, metav1.StatusReasonInvalid, "cannot be applied"},
		{"missing path", svcs + "/s", JSONPatchType, `[{"op":"remove","path":"/spec/nope"}]`, 422, metav1.StatusReasonInvalid, "cannot be applied"},
		{"invalid result", svcs + "/s", MergePatchType, `{"spec":{"template":{"spec":{"containerConcurrency":-1}}}}`, 422, metav1.StatusReasonInvalid,
			"spec.template.spec.containerConcurrency"},
		{"rename", svcs + "/s", MergePatchType, `{"metadata":{"name":"t"}}`, 400, metav1.StatusReasonBadRequest, "metadata.name"},
		{"stale resourceVersion", svcs + "/s", MergePatchType, `{"metadata":{"resourceVersion":"999"},"spec":{"template":{"spec":{"containerConcurrency":3}}}}`,
			409, metav1.StatusReasonConflict, "modified"},
		{"not found", svcs + "/nope", MergePatchType, `{}`, 404, metav1.StatusReasonNotFound, `"nope" not found`},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			code, b := doPatch(t, c.url, c.contentType, c.body)
			st := status(t, b)
			if code != c.code || st.Reason != c.reason || !strings.Contains(st.Message, c.wantInMessage) {
				t.Fatalf("%d %+v", code, st)
			}
			if _, after := do(t, "GET", svcs+"/s", ""); string(after) != string(before) {
				t.Fatalf("a refused patch changed the object:\nbefore %s\nafter  %s", before, after)
			}
		})
	}
}

// TestConcurrentPatchesAllLand: merge patches without a resourceVersion from concurrent writers each land (the
// server re-applies a patch that lost a race to the newer object instead of answering 409).
func TestConcurrentPatchesAllLand(t *testing.T) {
	_, hs := newTestServer(t)
	base := hs.URL + "/api/v1/namespaces/default/configmaps"
	if code, b := do(t, "POST", base, `{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"c"}}`); code != 201 {
		t.Fatalf("create %d %s", code, b)
	}
	const writers, each = 4, 10
	errs := make(chan string, writers*each)
	done := make(chan struct{})
	for w := range writers {
		go func() {
			defer func() { done <- struct{}{} }()
			for i := range each {
				code, b := doPatch(t, base+"/c", MergePatchType, fmt.Sprintf(`{"data":{"k%d-%d":"v"}}`, w, i))
				if code != 200 {
					errs <- fmt.Sprintf("%d %s", code, b)
				}
			}
		}()
	}
	for range writers {
		<-done
	}
	close(errs)
	for e := range errs {
		t.Error(e)
	}
	_, b := do(t, "GET", base+"/c", "")
	if data, _ := decodeObj(t, b)["data"].(map[string]any); len(data) != writers*each {
		t.Fatalf("%d keys after %d patches: %v", len(data), writers*each, data)
	}
}
