package cli

import (
	"strings"
	"testing"
)

// TestDeleteWithFinalizers: `tide delete --wait=false` of an object with a finalizer answers at once and leaves it marked
// (`get -o json` shows deletionTimestamp, also after a restart); patching the finalizer away removes it.
func TestDeleteWithFinalizers(t *testing.T) {
	dir := t.TempDir()
	e := startTide(t, dir)
	cm := "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: held, finalizers: [example.com/hold]}\ndata: {a: b}\n"
	if out, errOut, code := e.run(cm, "apply", "-f", "-"); code != 0 {
		t.Fatalf("apply: %s %s", out, errOut)
	}
	// Re-applying a document without finalizers leaves the stored ones (controllers add theirs, as on a cluster).
	bare := "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: held}\ndata: {a: b}\n"
	if out, errOut, code := e.run(bare, "apply", "-f", "-"); code != 0 || out != "configmap/held unchanged\n" {
		t.Fatalf("re-apply without finalizers: %q %s", out, errOut)
	}
	if out := e.mustRun("delete", "cm", "held", "--wait=false"); !strings.Contains(out, `"held" deleted`) {
		t.Fatalf("delete printed %q", out)
	}
	md := getJSON(t, e, "cm", "held")["metadata"].(map[string]any)
	if md["deletionTimestamp"] == nil || md["deletionGracePeriodSeconds"] != float64(0) {
		t.Fatalf("metadata after delete: %v", md)
	}
	// A later write, so that after the restart "held"'s resourceVersion predates the server's watch history.
	if out, errOut, code := e.run("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: later}\n", "apply", "-f", "-"); code != 0 {
		t.Fatalf("apply later: %s %s", out, errOut)
	}
	e.stop()

	e = startTide(t, dir)
	after := getJSON(t, e, "cm", "held")["metadata"].(map[string]any)
	if after["deletionTimestamp"] != md["deletionTimestamp"] {
		t.Fatalf("deletionTimestamp %v after restart, %v before", after["deletionTimestamp"], md["deletionTimestamp"])
	}
	// Waiting on it watches from before the history: the wait falls back to a fresh watch and times out normally.
	if _, errOut, code := e.run("", "wait", "cm", "held", "--for=delete", "--timeout=200ms"); code != 1 || strings.Contains(errOut, "Expired") {
		t.Fatalf("wait on an object last written before the restart: exit %d %s", code, errOut)
	}
	// tide delete waits for finalizers, as kubectl does; this one is nobody's, so the wait times out and says why.
	if _, errOut, code := e.run("", "delete", "cm", "held", "--timeout=200ms"); code != 1 || !strings.Contains(errOut, "still being deleted") ||
		!strings.Contains(errOut, "example.com/hold") {
		t.Fatalf("delete waiting on a finalizer nobody removes: exit %d %s", code, errOut)
	}
	if _, errOut, code := e.run("", "patch", "cm", "held", "--type", "json", "-p", `[{"op":"add","path":"/metadata/finalizers/-","value":"example.com/more"}]`); code != 1 ||
		!strings.Contains(errOut, "no new finalizers can be added if the object is being deleted") {
		t.Fatalf("adding a finalizer: exit %d %s", code, errOut)
	}
	e.mustRun("patch", "cm", "held", "-p", `{"metadata":{"finalizers":null}}`)
	e.mustRun("wait", "cm", "held", "--for=delete", "--timeout=5s")
	if _, errOut, code := e.run("", "get", "cm", "held"); code != 1 || !strings.Contains(errOut, "NotFound") {
		t.Fatalf("get after the last finalizer went: exit %d %s", code, errOut)
	}
}
