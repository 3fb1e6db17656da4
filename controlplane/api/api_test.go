package api

import (
	"bufio"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/tide-run/tide/controlplane/registry"
	"github.com/tide-run/tide/controlplane/store"
)

func newTestServer(t *testing.T) (*Server, *httptest.Server) { return newTestServerTB(t) }

func newTestServerTB(t testing.TB) (*Server, *httptest.Server) {
	t.Helper()
	reg := registry.NewDefault()
	st, err := store.Open(store.Options{Path: filepath.Join(t.TempDir(), "db"), ClusterScoped: func(gk string) bool {
		k, err := reg.ForGroupKind(gk)
		return err == nil && !k.Namespaced
	}})
	if err != nil {
		t.Fatal(err)
	}
	s, err := New(Options{Registry: reg, Store: st})
	if err != nil {
		t.Fatal(err)
	}
	hs := httptest.NewServer(s)
	t.Cleanup(func() { hs.Close(); _ = st.Close() })
	return s, hs
}

// do sends body as application/json (what the CLI and kubectl send; the guard refuses other bodies).
func do(t *testing.T, method, url, body string) (int, []byte) {
	t.Helper()
	ct := ""
	if body != "" {
		ct = "application/json"
	}
	return doRequest(t, method, url, ct, body)
}

func status(t *testing.T, b []byte) metav1.Status {
	t.Helper()
	var st metav1.Status
	if err := json.Unmarshal(b, &st); err != nil || st.Kind != "Status" {
		t.Fatalf("not a Status: %s", b)
	}
	return st
}

const cm = `{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"c"},"data":{"a":"b"}}`

func TestErrorsAreStatuses(t *testing.T) {
	_, hs := newTestServer(t)
	base := hs.URL + "/api/v1/namespaces/default/configmaps"
	if code, _ := do(t, "POST", base, cm); code != 201 {
		t.Fatalf("create %d", code)
	}
	cases := []struct {
		name, method, url, body string
		code                    int
		reason                  metav1.StatusReason
		wantInMessage           string
	}{
		{"not found", "GET", base + "/nope", "", 404, metav1.StatusReasonNotFound, `configmaps "nope" not found`},
		{"already exists", "POST", base, cm, 409, metav1.StatusReasonAlreadyExists, `configmaps "c" already exists`},
		{"conflict", "PUT", base + "/c", `{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"c","resourceVersion":"999"}}`,
			409, metav1.StatusReasonConflict, "the object has been modified"},
		{"invalid", "POST", hs.URL + "/apis/serving.knative.dev/v1/namespaces/default/services",
			`{"apiVersion":"serving.knative.dev/v1","kind":"Service","metadata":{"name":"s"},"spec":{"template":{"spec":{"containerConcurrency":-1,"containers":[{"image":"x"}]}}}}`,
			422, metav1.StatusReasonInvalid, "spec.template.spec.containerConcurrency"},
		{"kind mismatch", "POST", hs.URL + "/api/v1/namespaces/default/secrets", cm, 400, metav1.StatusReasonBadRequest, "do not match"},
		{"namespace mismatch", "POST", hs.URL + "/api/v1/namespaces/other/configmaps",
			`{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"x","namespace":"default"}}`, 400, metav1.StatusReasonBadRequest, "does not match"},
		{"unknown resource", "GET", hs.URL + "/apis/example.com/v1/widgets", "", 404, metav1.StatusReasonNotFound, "the server could not find the requested resource: /apis/example.com/v1/widgets"},
		{"method", "PATCH", base, "{}", 405, metav1.StatusReasonMethodNotAllowed, "does not allow"},
		{"bad json", "POST", base, "{", 422, metav1.StatusReasonInvalid, "cannot decode"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			code, b := do(t, c.method, c.url, c.body)
			st := status(t, b)
			if code != c.code || int(st.Code) != c.code || st.Reason != c.reason || !strings.Contains(st.Message, c.wantInMessage) {
				t.Fatalf("%d %+v", code, st)
			}
		})
	}
	// Without fieldValidation (Warn, the API server's default) an unknown field is dropped with a warning, and the
	// bad image is the one cause of Invalid.
	_, b := do(t, "POST", hs.URL+"/apis/serving.knative.dev/v1/namespaces/default/services",
		`{"apiVersion":"serving.knative.dev/v1","kind":"Service","metadata":{"name":"s"},"spec":{"template":{"spec":{"bogus":1,"containers":[{"image":"x"}]}}}}`)
	st := status(t, b)
	if st.Details == nil || len(st.Details.Causes) != 1 || st.Details.Causes[0].Field != "spec.template.spec.containers[0].image" {
		t.Fatalf("causes %+v; message %q", st.Details, st.Message)
	}
}

func TestClusterScopedAndListing(t *testing.T) {
	_, hs := newTestServer(t)
	ns := `{"apiVersion":"v1","kind":"Namespace","metadata":{"name":"food"}}`
	if code, b := do(t, "POST", hs.URL+"/api/v1/namespaces", ns); code != 201 {
		t.Fatalf("create namespace %d %s", code, b)
	}
	if code, _ := do(t, "GET", hs.URL+"/api/v1/namespaces/food", ""); code != 200 {
		t.Fatalf("get namespace %d", code)
	}
	for _, n := range []string{"default", "food"} {
		body := strings.Replace(cm, `"name":"c"`, `"name":"c","labels":{"ns":"`+n+`"}`, 1)
		if code, b := do(t, "POST", hs.URL+"/api/v1/namespaces/"+n+"/configmaps", body); code != 201 {
			t.Fatalf("%d %s", code, b)
		}
	}
	_, b := do(t, "GET", hs.URL+"/api/v1/configmaps?labelSelector=ns%3Dfood", "")
	var list struct {
		Kind  string           `json:"kind"`
		Items []map[string]any `json:"items"`
	}
	_ = json.Unmarshal(b, &list)
	if list.Kind != "ConfigMapList" || len(list.Items) != 1 {
		t.Fatalf("list %s", b)
	}
	_, b = do(t, "GET", hs.URL+"/api/v1/configmaps", "")
	_ = json.Unmarshal(b, &list)
	if len(list.Items) != 2 {
		t.Fatalf("all namespaces: %s", b)
	}
}

func TestReadyz(t *testing.T) {
	s, hs := newTestServer(t)
	if code, b := do(t, "GET", hs.URL+"/readyz", ""); code != 200 || !strings.Contains(string(b), "[+]store ok") {
		t.Fatalf("%d %s", code, b)
	}
	var fail error = errors.New("broker not listening")
	s.AddReadyCheck("broker", func() error { return fail })
	if code, b := do(t, "GET", hs.URL+"/readyz", ""); code != 503 || !strings.Contains(string(b), "[-]broker failed: broker not listening") {
		t.Fatalf("%d %s", code, b)
	}
	fail = nil
	if code, _ := do(t, "GET", hs.URL+"/readyz", ""); code != 200 {
		t.Fatalf("%d after recovery", code)
	}
	if code, _ := do(t, "GET", hs.URL+"/healthz", ""); code != 200 {
		t.Fatal("healthz")
	}
	s.Handle("/", http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { _, _ = io.WriteString(w, "dashboard") }))
	if _, b := do(t, "GET", hs.URL+"/", ""); string(b) != "dashboard" {
		t.Fatalf("mounted handler: %s", b)
	}
}

func TestWatchStream(t *testing.T) {
	_, hs := newTestServer(t)
	base := hs.URL + "/api/v1/namespaces/default/configmaps"
	do(t, "POST", base, cm)
	resp, err := http.Get(base + "?watch=true")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	next := func() WatchEvent {
		t.Helper()
		if !sc.Scan() {
			t.Fatalf("stream ended: %v", sc.Err())
		}
		var e WatchEvent
		if err := json.Unmarshal(sc.Bytes(), &e); err != nil {
			t.Fatal(err)
		}
		return e
	}
	if e := next(); e.Type != "ADDED" {
		t.Fatalf("initial %v", e.Type)
	}
	do(t, "PUT", base+"/c", strings.Replace(cm, `"b"`, `"c"`, 1))
	if e := next(); e.Type != "MODIFIED" || e.Object["data"].(map[string]any)["a"] != "c" {
		t.Fatalf("modified %+v", e)
	}
	do(t, "DELETE", base+"/c", "")
	if e := next(); e.Type != "DELETED" {
		t.Fatalf("deleted %v", e.Type)
	}
	code, b := do(t, "GET", base+"?watch=true&resourceVersion=abc", "")
	if code != 400 {
		t.Fatalf("bad resourceVersion: %d %s", code, b)
	}
}
