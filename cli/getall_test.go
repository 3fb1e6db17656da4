package cli

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestApplyRecursiveGetKindsGetAll: `tide apply -R` reads the directories below, `tide get` without a kind lists
// the kinds, and `tide get all` (a category) lists the objects of every kind in it with kubectl's qualified names.
func TestApplyRecursiveGetKindsGetAll(t *testing.T) {
	e := startTide(t, t.TempDir())
	dir := t.TempDir()
	write := func(rel, doc string) {
		p := filepath.Join(dir, rel)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(doc), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("broker.yaml", "apiVersion: eventing.knative.dev/v1\nkind: Broker\nmetadata:\n  name: top\n")
	write("sub/deeper/cm.yaml", "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: deep\n")
	write("sub/trigger.yaml", "apiVersion: eventing.knative.dev/v1\nkind: Trigger\nmetadata:\n  name: t\nspec:\n  broker: top\n  subscriber:\n    uri: http://127.0.0.1:1/\n")

	out := e.mustRun("apply", "-f", dir)
	if !strings.Contains(out, "broker.eventing.knative.dev/top created") || strings.Contains(out, "deep") || strings.Contains(out, "trigger") {
		t.Errorf("apply without -R must read only the top directory:\n%s", out)
	}
	out = e.mustRun("apply", "-R", "-f", dir)
	for _, want := range []string{"broker.eventing.knative.dev/top unchanged", "configmap/deep created", "trigger.eventing.knative.dev/t created"} {
		if !strings.Contains(out, want) {
			t.Errorf("apply -R: no %q in:\n%s", want, out)
		}
	}

	out = e.mustRun("get")
	for _, want := range []string{"NAME", "SHORTNAMES", "services", "kservice,ksvc", "serving.knative.dev/v1", "rocketmqsources", "all,knative,eventing,sources"} {
		if !strings.Contains(out, want) {
			t.Errorf("get without a kind: no %q in:\n%s", want, out)
		}
	}

	out = e.mustRun("get", "all")
	for _, want := range []string{"broker.eventing.knative.dev/top", "trigger.eventing.knative.dev/t", "SUBSCRIBER_URI"} {
		if !strings.Contains(out, want) {
			t.Errorf("get all: no %q in:\n%s", want, out)
		}
	}
	if strings.Contains(out, "configmap") {
		t.Errorf("get all lists a ConfigMap (not in the category):\n%s", out)
	}
	if out := e.mustRun("get", "eventing", "-o", "name"); strings.TrimSpace(out) != "broker.eventing.knative.dev/top\ntrigger.eventing.knative.dev/t" {
		t.Errorf("get eventing -o name:\n%s", out)
	}
	if _, errOut, _ := e.run("", "get", "serving"); !strings.Contains(errOut, "No resources found in default namespace.") {
		t.Errorf("get serving with nothing: %q", errOut)
	}
}
