package kubectl_test

import (
	"strings"
	"testing"

	"github.com/tide-run/tide/server"
)

// TestServerSideApply: `kubectl apply --server-side` creates and updates through structured-merge-diff, records
// the field manager in managedFields, refuses to take a field another manager set (conflict), and takes it with
// --force-conflicts; the seed's bundle applies server-side too.
func TestServerSideApply(t *testing.T) {
	t.Parallel()
	k := startTide(t, server.Options{})
	doc := func(retry int) string {
		return "apiVersion: eventing.knative.dev/v1\nkind: Broker\nmetadata:\n  name: ssa\nspec:\n  delivery:\n    retry: " +
			string(rune('0'+retry)) + "\n"
	}
	if out := k.okIn(doc(3), "apply", "--server-side", "-f", "-"); !strings.Contains(out, "broker.eventing.knative.dev/ssa serverside-applied") {
		t.Errorf("apply --server-side: %s", out)
	}
	mf := k.ok("get", "--raw", "/apis/eventing.knative.dev/v1/namespaces/default/brokers/ssa")
	if !strings.Contains(mf, `"manager":"kubectl"`) || !strings.Contains(mf, `"operation":"Apply"`) {
		t.Errorf("managedFields managers: %q", mf)
	}
	if out := k.okIn(doc(3), "apply", "--server-side", "-f", "-"); !strings.Contains(out, "serverside-applied") {
		t.Errorf("re-apply: %s", out)
	}
	errOut := k.fails(doc(5), "apply", "--server-side", "--field-manager=other", "-f", "-")
	if !strings.Contains(errOut, "conflict") || !strings.Contains(errOut, ".spec.delivery.retry") {
		t.Errorf("apply by another manager: want a conflict on .spec.delivery.retry, got:\n%s", errOut)
	}
	if out := k.ok("get", "broker", "ssa", "-o", "jsonpath={.spec.delivery.retry}"); out != "3" {
		t.Errorf("after the refused apply: retry %q", out)
	}
	k.okIn(doc(5), "apply", "--server-side", "--field-manager=other", "--force-conflicts", "-f", "-")
	if out := k.ok("get", "broker", "ssa", "-o", "jsonpath={.spec.delivery.retry}"); out != "5" {
		t.Errorf("after --force-conflicts: retry %q", out)
	}
	if errOut := k.fails("apiVersion: eventing.knative.dev/v1\nkind: Broker\nmetadata:\n  name: ssa\nspec:\n  bogus: 1\n",
		"apply", "--server-side", "--validate=false", "-f", "-"); !strings.Contains(errOut, "bogus") {
		t.Errorf("server-side apply of an unknown field: %s", errOut)
	}
	// A built-in kind, and the seed's bundle.
	k.okIn("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: ssa\ndata:\n  a: \"1\"\n", "apply", "--server-side", "-f", "-")
	k.okIn("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: ssa\ndata:\n  b: \"2\"\n", "apply", "--server-side", "--field-manager=second", "-f", "-")
	if out := k.ok("get", "cm", "ssa", "-o", "jsonpath={.data.a}/{.data.b}"); out != "1/2" {
		t.Errorf("two managers' fields merged: %q", out)
	}
	k.dir = repoRoot(t)
	args := oneClickArgs("examples/food-delivery")
	args = append(args, "--server-side")
	if out := k.ok(args...); strings.Count(out, "serverside-applied") != len(oneClick) {
		t.Errorf("the bundle server-side:\n%s", out)
	}
}
