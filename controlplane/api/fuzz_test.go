package api

import (
	"strings"
	"testing"
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
	} {
		f.Add(s)
	}
	s, _ := newTestServerTB(f)
	f.Fuzz(func(t *testing.T, path string) {
		rt, err := s.parse(path)
		if err != nil {
			return
		}
		if rt.kind.Plural == "" || (!rt.kind.Namespaced && rt.namespace != "") {
			t.Fatalf("%q -> %+v", path, rt)
		}
		if rt.name != "" && !strings.Contains(path, rt.name) {
			t.Fatalf("%q -> name %q", path, rt.name)
		}
	})
}
