package kubectl_test

import (
	"encoding/json"
	"slices"
	"strings"
	"testing"

	"github.com/tide-run/tide/server"
)

// TestDiscovery: kubectl finds tide's kinds the way it finds a cluster's: the server version, api-resources with
// short names, categories and verbs (from the aggregated discovery document kubectl asks for first), api-versions,
// and the legacy documents for older clients.
func TestDiscovery(t *testing.T) {
	t.Parallel()
	k := startTide(t, server.Options{})
	out := k.ok("version", "-o", "json")
	if !strings.Contains(out, `"gitVersion": "v1.35.7-tide"`) {
		t.Errorf("kubectl version: no server version:\n%s", out)
	}
	rows := map[string][]string{}
	for _, r := range fields(k.ok("api-resources", "-o", "wide", "--no-headers")) {
		for _, f := range r[1:] { // name + apiVersion (SHORTNAMES may be empty)
			if f == "v1" || strings.Contains(f, "/v") {
				rows[r[0]+" "+f] = r
				break
			}
		}
	}
	want := map[string][]string{ // name apiVersion -> short names, categories
		"services serving.knative.dev/v1":              {"kservice,ksvc", "all,knative,serving"},
		"revisions serving.knative.dev/v1":             {"rev", "all,knative,serving"},
		"configurations serving.knative.dev/v1":        {"config,cfg", "all,knative,serving"},
		"routes serving.knative.dev/v1":                {"rt", "all,knative,serving"},
		"brokers eventing.knative.dev/v1":              {"", "all,knative,eventing"},
		"triggers eventing.knative.dev/v1":             {"", "all,knative,eventing"},
		"rocketmqsources sources.knative.dev/v1alpha1": {"", "all,knative,eventing,sources"},
		"secrets v1":    {"", ""},
		"namespaces v1": {"ns", ""},
	}
	for key, w := range want {
		r, ok := rows[key]
		if !ok {
			t.Errorf("api-resources: no %s", key)
			continue
		}
		line := strings.Join(r, " ")
		if w[0] != "" && !slices.Contains(r, w[0]) {
			t.Errorf("api-resources %s: short names %q missing: %s", key, w[0], line)
		}
		if w[1] != "" && r[len(r)-1] != w[1] {
			t.Errorf("api-resources %s: categories %q, want %q", key, r[len(r)-1], w[1])
		}
		if !strings.Contains(line, "create,delete,get,list,patch,update,watch") {
			t.Errorf("api-resources %s: verbs: %s", key, line)
		}
	}
	if out := k.ok("api-resources", "--categories=sources", "-o", "name"); !strings.Contains(out, "rocketmqsources.sources.knative.dev") {
		t.Errorf("api-resources --categories=sources:\n%s", out)
	}
	if out := k.ok("api-resources", "--namespaced=false", "-o", "name"); !strings.Contains(out, "namespaces") || strings.Contains(out, "secrets") {
		t.Errorf("api-resources --namespaced=false:\n%s", out)
	}
	vers := k.ok("api-versions")
	for _, v := range []string{"v1", "serving.knative.dev/v1", "eventing.knative.dev/v1", "sources.knative.dev/v1alpha1", "rbac.authorization.k8s.io/v1"} {
		if !slices.Contains(strings.Fields(vers), v) {
			t.Errorf("api-versions has no %s:\n%s", v, vers)
		}
	}
	// The legacy documents (what clients without aggregated discovery read).
	var list struct {
		GroupVersion string `json:"groupVersion"`
		Resources    []struct {
			Name       string   `json:"name"`
			ShortNames []string `json:"shortNames"`
		} `json:"resources"`
	}
	if err := json.Unmarshal([]byte(k.ok("get", "--raw", "/apis/serving.knative.dev/v1")), &list); err != nil {
		t.Fatal(err)
	}
	if list.GroupVersion != "serving.knative.dev/v1" || !slices.ContainsFunc(list.Resources, func(r struct {
		Name       string   `json:"name"`
		ShortNames []string `json:"shortNames"`
	}) bool {
		return r.Name == "services" && slices.Contains(r.ShortNames, "ksvc")
	}) {
		t.Errorf("/apis/serving.knative.dev/v1: %+v", list)
	}
	for _, p := range []string{"/api", "/api/v1", "/apis", "/apis/eventing.knative.dev"} {
		if out := k.ok("get", "--raw", p); !strings.HasPrefix(out, "{") {
			t.Errorf("%s: %s", p, out)
		}
	}
	k.fails("", "get", "--raw", "/apis/nope.example.com/v1")
}
