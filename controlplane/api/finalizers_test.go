package api

import (
	"bufio"
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"
)

// TestFinalizersOverHTTP walks one Service with two finalizers (and a ConfigMap it owns) through a delete, updates
// while it is being deleted, and the removal of its finalizers, checking each answer and every watch event.
func TestFinalizersOverHTTP(t *testing.T) {
	_, hs := newTestServer(t)
	base := hs.URL + "/apis/serving.knative.dev/v1/namespaces/default/services"
	code, b := do(t, "POST", base, `{"apiVersion":"serving.knative.dev/v1","kind":"Service","metadata":{"name":"s",
		"finalizers":["example.com/a","example.com/b"]},"spec":{"template":{"spec":{"containers":[{"image":"example.com/hello:1"}]}}}}`)
	if code != 201 {
		t.Fatalf("create %d %s", code, b)
	}
	var svc map[string]any
	_ = json.Unmarshal(b, &svc)
	md := svc["metadata"].(map[string]any)
	child := fmt.Sprintf(`{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"owned","ownerReferences":[
		{"apiVersion":"serving.knative.dev/v1","kind":"Service","name":"s","uid":%q}]}}`, md["uid"])
	if code, b := do(t, "POST", hs.URL+"/api/v1/namespaces/default/configmaps", child); code != 201 {
		t.Fatalf("create child %d %s", code, b)
	}

	resp, err := http.Get(hs.URL + "/apis/serving.knative.dev/v1/namespaces/default/services?watch=true&resourceVersion=" +
		md["resourceVersion"].(string))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()

	deleting := func(t *testing.T, obj map[string]any) {
		t.Helper()
		m := obj["metadata"].(map[string]any)
		if m["deletionTimestamp"] == nil || m["deletionTimestamp"] == "" || m["deletionGracePeriodSeconds"] != float64(0) {
			t.Fatalf("not marked for deletion: %v", m)
		}
	}
	finalizers := func(t *testing.T, obj map[string]any, want ...string) {
		t.Helper()
		var got []string
		for _, f := range obj["metadata"].(map[string]any)["finalizers"].([]any) {
			got = append(got, f.(string))
		}
		if !slices.Equal(got, want) {
			t.Fatalf("finalizers %v, want %v", got, want)
		}
	}
	var stamp, lastRV string
	steps := []struct {
		name        string
		method, sub string
		contentType string
		body        func(cur map[string]any) string
		code        int
		check       func(t *testing.T, obj map[string]any)
	}{
		{name: "delete marks", method: "DELETE", code: 200, check: func(t *testing.T, obj map[string]any) {
			deleting(t, obj)
			finalizers(t, obj, "example.com/a", "example.com/b")
			stamp = obj["metadata"].(map[string]any)["deletionTimestamp"].(string)
			lastRV = obj["metadata"].(map[string]any)["resourceVersion"].(string)
		}},
		{name: "get shows the mark", method: "GET", code: 200, check: deleting},
		{name: "second delete changes nothing", method: "DELETE", code: 200, check: func(t *testing.T, obj map[string]any) {
			deleting(t, obj)
			if rv := obj["metadata"].(map[string]any)["resourceVersion"]; rv != lastRV {
				t.Fatalf("resourceVersion %v, want %s", rv, lastRV)
			}
		}},
		{name: "put cannot clear the stamp", method: "PUT", code: 200, body: func(cur map[string]any) string {
			m := cur["metadata"].(map[string]any)
			delete(m, "deletionTimestamp")
			delete(m, "deletionGracePeriodSeconds")
			m["labels"] = map[string]any{"step": "put"}
			return mustJSON(t, cur)
		}, check: func(t *testing.T, obj map[string]any) {
			deleting(t, obj)
			if obj["metadata"].(map[string]any)["labels"].(map[string]any)["step"] != "put" {
				t.Fatal("label lost")
			}
		}},
		{name: "patch cannot move the stamp", method: "PATCH", contentType: MergePatchType, code: 200, body: func(map[string]any) string {
			return `{"metadata":{"deletionTimestamp":"2030-01-01T00:00:00Z","labels":{"step":"patch"}}}`
		}, check: func(t *testing.T, obj map[string]any) {
			if got := obj["metadata"].(map[string]any)["deletionTimestamp"]; got != stamp {
				t.Fatalf("deletionTimestamp %v, want %s", got, stamp)
			}
		}},
		{name: "put cannot add a finalizer", method: "PUT", code: 422, body: func(cur map[string]any) string {
			cur["metadata"].(map[string]any)["finalizers"] = []any{"example.com/a", "example.com/b", "example.com/c"}
			return mustJSON(t, cur)
		}},
		{name: "patch cannot add a finalizer", method: "PATCH", contentType: JSONPatchType, code: 422, body: func(map[string]any) string {
			return `[{"op":"add","path":"/metadata/finalizers/-","value":"example.com/c"}]`
		}},
		{name: "status update keeps the mark", method: "PUT", sub: "/status", code: 200, body: func(cur map[string]any) string {
			delete(cur["metadata"].(map[string]any), "deletionTimestamp")
			cur["status"] = map[string]any{"observedGeneration": 1}
			return mustJSON(t, cur)
		}, check: deleting},
		{name: "removing one finalizer keeps the object", method: "PATCH", contentType: JSONPatchType, code: 200,
			body: func(map[string]any) string { return `[{"op":"remove","path":"/metadata/finalizers/0"}]` },
			check: func(t *testing.T, obj map[string]any) {
				deleting(t, obj)
				finalizers(t, obj, "example.com/b")
			}},
		{name: "removing the last finalizer removes it", method: "PATCH", contentType: MergePatchType, code: 200,
			body: func(map[string]any) string { return `{"metadata":{"finalizers":null}}` },
			check: func(t *testing.T, obj map[string]any) {
				deleting(t, obj)
				if _, ok := obj["metadata"].(map[string]any)["finalizers"]; ok {
					t.Fatalf("finalizers in the last state: %v", obj["metadata"])
				}
			}},
		{name: "gone", method: "GET", code: 404},
	}
	for _, st := range steps {
		t.Run(st.name, func(t *testing.T) {
			body := ""
			if st.body != nil {
				_, cur := do(t, "GET", base+"/s", "")
				var obj map[string]any
				if err := json.Unmarshal(cur, &obj); err != nil {
					t.Fatal(err)
				}
				body = st.body(obj)
			}
			ct := st.contentType
			if ct == "" && body != "" {
				ct = "application/json"
			}
			code, b := doRequest(t, st.method, base+"/s"+st.sub, ct, body)
			if code != st.code {
				t.Fatalf("%s: %d %s", st.method, code, b)
			}
			if code == 422 {
				s := status(t, b)
				if s.Reason != "Invalid" || !strings.Contains(s.Message, `Service.serving.knative.dev "s" is invalid: metadata.finalizers: Forbidden: no new finalizers can be added if the object is being deleted`) ||
					s.Details == nil || len(s.Details.Causes) != 1 || s.Details.Causes[0].Field != "metadata.finalizers" || s.Details.Causes[0].Type != "FieldValueForbidden" {
					t.Fatalf("status %+v", s)
				}
				return
			}
			if st.check != nil {
				var obj map[string]any
				if err := json.Unmarshal(b, &obj); err != nil {
					t.Fatal(err)
				}
				st.check(t, obj)
			}
		})
	}
	if code, _ := do(t, "GET", hs.URL+"/api/v1/namespaces/default/configmaps/owned", ""); code != 404 {
		t.Fatalf("owned ConfigMap survived: %d", code)
	}

	// Every write made one event, and the refused or unchanged ones none: mark, put, patch, status, one finalizer
	// off, and the removal. A sentinel Service ends the list.
	if code, b := do(t, "POST", base, `{"apiVersion":"serving.knative.dev/v1","kind":"Service","metadata":{"name":"sentinel"},
		"spec":{"template":{"spec":{"containers":[{"image":"example.com/hello:1"}]}}}}`); code != 201 {
		t.Fatalf("sentinel %d %s", code, b)
	}
	lines := make(chan WatchEvent, 100)
	go func() {
		sc := bufio.NewScanner(resp.Body)
		for sc.Scan() {
			var e WatchEvent
			_ = json.Unmarshal(sc.Bytes(), &e)
			lines <- e
		}
		close(lines)
	}()
	var got []string
	timeout := time.After(10 * time.Second)
	for {
		select {
		case e, ok := <-lines:
			if !ok {
				t.Fatalf("watch ended; events %v", got)
			}
			name := e.Object["metadata"].(map[string]any)["name"]
			if name == "sentinel" {
				want := []string{"MODIFIED", "MODIFIED", "MODIFIED", "MODIFIED", "MODIFIED", "DELETED"}
				if !slices.Equal(got, want) {
					t.Fatalf("events %v, want %v", got, want)
				}
				return
			}
			got = append(got, e.Type)
		case <-timeout:
			t.Fatalf("sentinel not seen; events %v", got)
		}
	}
}

func mustJSON(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}
