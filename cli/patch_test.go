package cli

import (
	"strings"
	"testing"
)

// TestPatchCommand: merge and JSON patches (JSON or YAML on the command line), the status subresource, and refused
// input that changes nothing.
func TestPatchCommand(t *testing.T) {
	e := startTide(t, t.TempDir())
	if _, errOut, code := e.run(`apiVersion: v1
kind: ConfigMap
metadata: {name: settings}
data: {debug: "true", level: info}
---
apiVersion: eventing.knative.dev/v1
kind: Broker
metadata: {name: default}
`, "apply", "-f", "-"); code != 0 {
		t.Fatalf("apply: %s", errOut)
	}
	if out := e.mustRun("patch", "configmap", "settings", "-p", `{"data":{"level":"warn"}}`); out != "configmap/settings patched\n" {
		t.Fatalf("merge: %q", out)
	}
	e.mustRun("patch", "configmap/settings", "--type", "json", "-p", `[{"op":"remove","path":"/data/debug"}]`)
	e.mustRun("patch", "broker", "default", "-p", "metadata: {labels: {team: checkout}}") // YAML
	cm := getJSON(t, e, "configmap", "settings")
	if data := cm["data"].(map[string]any); len(data) != 1 || data["level"] != "warn" {
		t.Fatalf("data after patches: %v", data)
	}
	br := getJSON(t, e, "broker", "default")
	if br["metadata"].(map[string]any)["labels"].(map[string]any)["team"] != "checkout" {
		t.Fatalf("broker labels: %v", br["metadata"])
	}
	if out := e.mustRun("patch", "configmap", "settings", "-p", `{"data":{"x":"1"}}`, "-o", "name"); out != "configmap/settings\n" {
		t.Fatalf("-o name: %q", out)
	}
	if out := e.mustRun("patch", "configmap", "settings", "--type", "strategic", "-p", `{"data":{"s":"1"}}`, "-o", "json"); !strings.Contains(out, `"s": "1"`) || !strings.Contains(out, `"x": "1"`) {
		t.Fatalf("--type strategic: %s", out)
	}

	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"patch", "configmap", "settings", "--type", "bogus", "-p", "{}"}, "expected merge, json or strategic"},
		{[]string{"patch", "configmap", "settings", "-p", "{"}, "-p: not JSON or YAML"},
		{[]string{"patch", "configmap", "settings"}, "a patch is required"},
		{[]string{"patch", "configmap", "nope", "-p", "{}"}, `"nope" not found`},
		{[]string{"patch", "configmap", "settings", "--type", "json", "-p", `[{"op":"test","path":"/data/x","value":"2"}]`}, "cannot be applied"},
		{[]string{"patch", "configmap", "settings", "--subresource", "scale", "-p", "{}"}, "the only subresource is status"},
	} {
		_, errOut, code := e.run("", c.args...)
		if code == 0 || !strings.Contains(errOut, c.want) {
			t.Errorf("tide %s: exit %d, stderr %q, want %q", strings.Join(c.args, " "), code, errOut, c.want)
		}
	}
	if data := getJSON(t, e, "configmap", "settings")["data"].(map[string]any); len(data) != 3 || data["x"] != "1" {
		t.Fatalf("a refused patch changed the object: %v", data)
	}
}
