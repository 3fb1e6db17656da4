package api

import (
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// sendH is do with extra headers; it returns the code, the body and the response headers.
func sendH(t *testing.T, method, url, contentType, body string, header map[string]string) (int, []byte, http.Header) {
	t.Helper()
	req, _ := http.NewRequest(method, url, strings.NewReader(body))
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	for k, v := range header {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, b, resp.Header
}

const svcGK = "Service.serving.knative.dev"

const brokerWithBogus = `{"apiVersion":"eventing.knative.dev/v1","kind":"Broker","metadata":{"name":"b"},"spec":{"bogus":1,"bogus2":{"x":1}}}`

func TestFieldValidation(t *testing.T) {
	_, hs := newTestServer(t)
	brokers := hs.URL + "/apis/eventing.knative.dev/v1/namespaces/default/brokers"
	code, b, _ := sendH(t, "POST", brokers+"?fieldValidation=Strict", "application/json", brokerWithBogus, nil)
	st := status(t, b)
	want := `Broker in version "v1" cannot be handled as a Broker: strict decoding error: unknown field "spec.bogus", unknown field "spec.bogus2"`
	if code != 400 || st.Reason != metav1.StatusReasonBadRequest || st.Message != want {
		t.Fatalf("Strict: %d %q, want 400 %q", code, st.Message, want)
	}
	code, b, _ = sendH(t, "POST", brokers+"?fieldValidation=Strict", "application/json",
		`{"apiVersion":"eventing.knative.dev/v1","kind":"Broker","metadata":{"name":"b"},"spec":{},"spec":{}}`, nil)
	if st := status(t, b); code != 400 || !strings.HasSuffix(st.Message, `strict decoding error: duplicate field "spec"`) {
		t.Fatalf("Strict, duplicate: %d %q", code, st.Message)
	}
	code, b, _ = sendH(t, "POST", brokers+"?fieldValidation=Sometimes", "application/json", brokerWithBogus, nil)
	if st := status(t, b); code != 422 || !strings.Contains(st.Message, `CreateOptions.meta.k8s.io "" is invalid: fieldValidation: Unsupported value: "Sometimes"`) {
		t.Fatalf("bad value: %d %q", code, st.Message)
	}
	// Warn (also the default): created without the fields, one warning each.
	for _, q := range []string{"", "?fieldValidation=Warn"} {
		code, b, h := sendH(t, "POST", brokers+q, "application/json", brokerWithBogus, nil)
		if code != 201 || strings.Contains(string(b), "bogus") {
			t.Fatalf("Warn %q: %d %s", q, code, b)
		}
		if w := h.Values("Warning"); len(w) != 2 || w[0] != `299 - "unknown field \"spec.bogus\""` {
			t.Errorf("Warn %q: warnings %q", q, w)
		}
		do(t, "DELETE", brokers+"/b", "")
	}
	code, _, h := sendH(t, "POST", brokers+"?fieldValidation=Ignore", "application/json", brokerWithBogus, nil)
	if code != 201 || len(h.Values("Warning")) != 0 {
		t.Fatalf("Ignore: %d %q", code, h.Values("Warning"))
	}
	// A patch that adds an unknown field: 422 on "patch" under Strict, as the API server words it.
	code, b, _ = sendH(t, "PATCH", brokers+"/b?fieldValidation=Strict", MergePatchType, `{"spec":{"nope":true}}`, nil)
	if st := status(t, b); code != 422 || !strings.HasPrefix(st.Message, ` "" is invalid: patch: Invalid value: "{`) ||
		!strings.HasSuffix(st.Message, `strict decoding error: unknown field "spec.nope"`) {
		t.Fatalf("patch, Strict: %d %q", code, st.Message)
	}
}

type managedEntry struct {
	Manager, Operation string
	FieldsV1           map[string]any
}

func managedFieldsOf(t *testing.T, b []byte) map[string]managedEntry {
	t.Helper()
	var obj struct {
		Metadata struct {
			ManagedFields []managedEntry
		}
	}
	if err := json.Unmarshal(b, &obj); err != nil {
		t.Fatal(err)
	}
	out := map[string]managedEntry{}
	for _, e := range obj.Metadata.ManagedFields {
		out[e.Manager+"/"+e.Operation] = e
	}
	return out
}

// Non-apply writes record "Update" entries under fieldManager or the User-Agent's product, without defaults or
// status; a later server-side apply of a field an update set conflicts, and force takes it.
func TestManagedFieldsOfUpdates(t *testing.T) {
	srv, hs := newTestServer(t)
	svcs := hs.URL + "/apis/serving.knative.dev/v1/namespaces/default/services"
	doc := `{"apiVersion":"serving.knative.dev/v1","kind":"Service","metadata":{"name":"s"},"spec":{"template":{"spec":{"containers":[{"image":"ko://example.com/a"}]}}}}`
	code, b, _ := sendH(t, "POST", svcs, "application/json", doc, map[string]string{"User-Agent": "my-ctl/1.0 (linux)"})
	if code != 201 {
		t.Fatalf("create: %d %s", code, b)
	}
	mf := managedFieldsOf(t, b)
	e, ok := mf["my-ctl/Update"]
	if !ok || len(mf) != 1 {
		t.Fatalf("create: managedFields %+v", mf)
	}
	spec, _ := json.Marshal(e.FieldsV1)
	if !strings.Contains(string(spec), `"f:containers"`) || strings.Contains(string(spec), "timeoutSeconds") || strings.Contains(string(spec), "f:status") {
		t.Errorf("create: the entry should own the image, not Knative's defaults or status: %s", spec)
	}
	// A re-sent unchanged document (whose atomic containers list differs from the defaulted live one) is no write:
	// the entry keeps its time (set to 2020 here in the store).
	stored, err := srv.st.Get(svcGK, "default", "s")
	if err != nil {
		t.Fatal(err)
	}
	mfs := stored.GetManagedFields()
	mfs[0].Time = &metav1.Time{Time: time.Date(2020, 1, 1, 0, 0, 0, 0, time.UTC)}
	stored.SetManagedFields(mfs)
	if _, err := srv.st.Update(stored); err != nil {
		t.Fatal(err)
	}
	var rv struct {
		Metadata struct{ ResourceVersion string }
	}
	_, b = do(t, "GET", svcs+"/s", "")
	_ = json.Unmarshal(b, &rv)
	code, b, _ = sendH(t, "PUT", svcs+"/s", "application/json", doc, map[string]string{"User-Agent": "my-ctl/1.0"})
	if code != 200 || !strings.Contains(string(b), `"time":"2020-01-01T00:00:00Z"`) || !strings.Contains(string(b), `"resourceVersion":"`+rv.Metadata.ResourceVersion+`"`) {
		t.Fatalf("unchanged re-PUT wrote: %d %s", code, b)
	}
	code, b, _ = sendH(t, "PATCH", svcs+"/s?fieldManager=kubectl-patch", MergePatchType,
		`{"spec":{"template":{"spec":{"timeoutSeconds":30}}}}`, nil)
	if mf := managedFieldsOf(t, b); code != 200 || len(mf) != 2 || mf["kubectl-patch/Update"].Manager == "" {
		t.Fatalf("patch: %d %+v", code, mf)
	}
	apply := func(manager, force string, timeout int) (int, []byte) {
		code, b, _ := sendH(t, "PATCH", svcs+"/s?fieldManager="+manager+force, applyPatchType,
			`{"apiVersion":"serving.knative.dev/v1","kind":"Service","metadata":{"name":"s"},"spec":{"template":{"spec":{"timeoutSeconds":`+
				itoa(timeout)+`}}}}`, nil)
		return code, b
	}
	code, b = apply("kubectl", "", 40)
	if st := status(t, b); code != 409 || !strings.Contains(st.Message, `conflict with "kubectl-patch"`) || !strings.Contains(st.Message, ".spec.template.spec.timeoutSeconds") {
		t.Fatalf("apply over the patched field: %d %q", code, st.Message)
	}
	if code, b = apply("kubectl", "&force=true", 40); code != 200 {
		t.Fatalf("forced apply: %d %s", code, b)
	}
	mf = managedFieldsOf(t, b)
	if _, ok := mf["kubectl/Apply"]; !ok {
		t.Fatalf("forced apply: %+v", mf)
	}
	if p, ok := mf["kubectl-patch/Update"]; ok {
		if s, _ := json.Marshal(p.FieldsV1); strings.Contains(string(s), "timeoutSeconds") {
			t.Errorf("after the forced apply kubectl-patch still owns timeoutSeconds: %s", s)
		}
	}
	// The containers list is atomic in a custom resource's schema (no list type), as on a cluster: my-ctl owns it.
	// Same value by the applier: shared, no conflict; a later PUT without managedFields keeps them.
	if code, b = apply("kubectl", "", 40); code != 200 {
		t.Fatalf("re-apply: %d %s", code, b)
	}
	_, cur := do(t, "GET", svcs+"/s", "")
	var obj map[string]any
	_ = json.Unmarshal(cur, &obj)
	delete(obj["metadata"].(map[string]any), "managedFields")
	obj["metadata"].(map[string]any)["labels"] = map[string]any{"team": "a"}
	body, _ := json.Marshal(obj)
	code, b, _ = sendH(t, "PUT", svcs+"/s?fieldManager=kubectl-edit", "application/json", string(body), nil)
	mf = managedFieldsOf(t, b)
	if _, ok := mf["kubectl/Apply"]; code != 200 || !ok || mf["kubectl-edit/Update"].Manager == "" {
		t.Fatalf("update: %d %+v", code, mf)
	}
	if code, b, _ = sendH(t, "POST", svcs+"?fieldManager="+strings.Repeat("m", 129), "application/json", doc, nil); code != 422 ||
		!strings.Contains(status(t, b).Message, "fieldManager: Too long") {
		t.Errorf("long fieldManager: %d %s", code, b)
	}
}

func itoa(n int) string { b, _ := json.Marshal(n); return string(b) }

// propagationPolicy: Foreground keeps the owner (foregroundDeletion) while a finalizer holds a dependent; bad
// options are Invalid DeleteOptions.
func TestDeletePropagation(t *testing.T) {
	_, hs := newTestServer(t)
	cms := hs.URL + "/api/v1/namespaces/default/configmaps"
	code, b := do(t, "POST", cms, `{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"owner"}}`)
	if code != 201 {
		t.Fatal(string(b))
	}
	var owner struct{ Metadata struct{ UID string } }
	_ = json.Unmarshal(b, &owner)
	dep := `{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"dep","finalizers":["example.com/hold"],"ownerReferences":[{"apiVersion":"v1","kind":"ConfigMap","name":"owner","uid":"` +
		owner.Metadata.UID + `","blockOwnerDeletion":true}]}}`
	if code, b := do(t, "POST", cms, dep); code != 201 {
		t.Fatal(string(b))
	}
	code, b = do(t, "DELETE", cms+"/owner", `{"propagationPolicy":"Sideways"}`)
	if st := status(t, b); code != 422 || !strings.Contains(st.Message, `propagationPolicy: Unsupported value: "Sideways"`) {
		t.Fatalf("bad policy: %d %q", code, st.Message)
	}
	code, b = do(t, "DELETE", cms+"/owner", `{"propagationPolicy":"Foreground"}`)
	if code != 200 || !strings.Contains(string(b), `"finalizers":["foregroundDeletion"]`) || !strings.Contains(string(b), "deletionTimestamp") {
		t.Fatalf("foreground: %d %s", code, b)
	}
	if code, b := do(t, "GET", cms+"/dep", ""); code != 200 || !strings.Contains(string(b), "deletionTimestamp") {
		t.Fatalf("the dependent should be marked: %d %s", code, b)
	}
	if code, b, _ := sendH(t, "PATCH", cms+"/dep", MergePatchType, `{"metadata":{"finalizers":null}}`, nil); code != 200 {
		t.Fatalf("removing the finalizer: %d %s", code, b)
	}
	for _, n := range []string{"dep", "owner"} {
		if code, _ := do(t, "GET", cms+"/"+n, ""); code != 404 {
			t.Errorf("%s: %d, want gone", n, code)
		}
	}
}
