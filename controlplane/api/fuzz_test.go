package api

import (
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"k8s.io/apimachinery/pkg/util/validation"
)

// FuzzParsePath: request paths come from the network; parse must never panic, and a path it accepts names a
// registered kind with a namespace only where the kind is namespaced.
func FuzzParsePath(f *testing.F) {
	for _, s := range []string{
		"/apis/serving.knative.dev/v1/namespaces/default/services/hello/status",
		"/apis/serving.knative.dev/v1/services",
		"/api/v1/namespaces/default/configmaps/c",
		"/api/v1/namespaces/food",
		"/api/v1/namespaces",
		"/apis/rbac.authorization.k8s.io/v1/clusterroles/x",
		"/apis//v1/namespaces//services", "/api", "/apis/a/b/c/d/e/f/g", "//",
		"/api/v1/namespaces/../configmaps", "/api/v1/namespaces/a%2Fb/configmaps/c", "/api/v1/namespaces/a/configmaps/%00",
	} {
		f.Add(s)
	}
	s, _ := newTestServerTB(f)
	f.Fuzz(func(t *testing.T, path string) {
		u, perr := url.Parse(path)
		if perr != nil {
			return
		}
		rt, err := s.parse(u)
		if err != nil {
			return
		}
		if rt.kind.Plural == "" || (!rt.kind.Namespaced && rt.namespace != "") {
			t.Fatalf("%q -> %+v", path, rt)
		}
		if rt.namespace != "" && len(validation.IsDNS1123Label(rt.namespace)) > 0 {
			t.Fatalf("%q -> invalid namespace %q accepted", path, rt.namespace)
		}
		if rt.name != "" && len(validation.IsDNS1123Subdomain(rt.name)) > 0 {
			t.Fatalf("%q -> invalid name %q accepted", path, rt.name)
		}
		if rt.name != "" && !strings.Contains(u.Path, rt.name) {
			t.Fatalf("%q -> name %q", path, rt.name)
		}
	})
}

// FuzzPatch: patch bodies come from the network; whatever they hold, the server answers (never panics) and either
// stores an object that is still a whole, valid ConfigMap named c or leaves the stored one exactly as it was.
func FuzzPatch(f *testing.F) {
	for _, s := range []struct {
		merge bool
		body  string
	}{
		{true, `{"data":{"a":null,"b":"2"}}`}, {true, `{"metadata":{"labels":{"x":"y"}}}`}, {true, `{"metadata":{"name":"d"}}`},
		{true, `{"kind":"Secret"}`}, {true, `null`}, {true, `{"data":[1,2]}`},
		{false, `[{"op":"add","path":"/data/x","value":"1"}]`}, {false, `[{"op":"remove","path":"/metadata"}]`},
		{false, `[{"op":"move","from":"/data","path":"/data/a"}]`}, {false, `[{"op":"copy","from":"/metadata","path":"/data/m"}]`},
	} {
		f.Add(s.merge, s.body)
	}
	_, hs := newTestServerTB(f)
	url := hs.URL + "/api/v1/namespaces/default/configmaps"
	if code, _ := doRequest(f, "POST", url, "application/json", `{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"c"},"data":{"a":"1"}}`); code != 201 {
		f.Fatal("create")
	}
	f.Fuzz(func(t *testing.T, merge bool, body string) {
		ct := JSONPatchType
		if merge {
			ct = MergePatchType
		}
		_, before := doRequest(t, "GET", url+"/c", "", "")
		code, _ := doRequest(t, "PATCH", url+"/c", ct, body)
		_, after := doRequest(t, "GET", url+"/c", "", "")
		switch {
		case code == 200:
			var m map[string]any
			if err := json.Unmarshal(after, &m); err != nil || m["kind"] != "ConfigMap" || m["metadata"].(map[string]any)["name"] != "c" {
				t.Fatalf("patch %q stored %s", body, after)
			}
		case code >= 500:
			t.Fatalf("patch %q: %d", body, code)
		case string(before) != string(after):
			t.Fatalf("refused patch %q (%d) changed the object:\n%s\n%s", body, code, before, after)
		}
	})
}

func doRequest(t testing.TB, method, url, contentType, body string) (int, []byte) {
	t.Helper()
	req, _ := http.NewRequest(method, url, strings.NewReader(body))
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, b
}
