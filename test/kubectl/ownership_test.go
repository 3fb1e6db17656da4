package kubectl_test

import (
	"encoding/json"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/tide-run/tide/server"
)

func ownedBroker(retry int, backoff string) string {
	return "apiVersion: eventing.knative.dev/v1\nkind: Broker\nmetadata:\n  name: owned\n  labels: {app: shop}\nspec:\n  delivery:\n    retry: " +
		string(rune('0'+retry)) + "\n    backoffDelay: " + backoff + "\n"
}

// managers returns "manager/operation" -> the entry's fieldsV1 as JSON, from kubectl get -o json.
func (k *kube) managers(args ...string) map[string]string {
	k.t.Helper()
	var obj struct {
		Metadata struct {
			ManagedFields []struct {
				Manager   string          `json:"manager"`
				Operation string          `json:"operation"`
				FieldsV1  json.RawMessage `json:"fieldsV1"`
			} `json:"managedFields"`
		} `json:"metadata"`
	}
	out := k.ok(append(append([]string{"get"}, args...), "-o", "json", "--show-managed-fields")...)
	if err := json.Unmarshal([]byte(out), &obj); err != nil {
		k.t.Fatalf("get %v: %v", args, err)
	}
	m := map[string]string{}
	for _, e := range obj.Metadata.ManagedFields {
		m[e.Manager+"/"+e.Operation] = string(e.FieldsV1)
	}
	return m
}

func keys(m map[string]string) string {
	var ks []string
	for k := range m {
		ks = append(ks, k)
	}
	sort.Strings(ks)
	return strings.Join(ks, " ")
}

// TestFieldOwnershipOfEditsAndPatches: create, edit, patch, label and client-side apply record "Update" entries
// under kubectl's own manager names, so `kubectl apply --server-side` of a field an edit or a patch set
// conflicts with that manager, exactly as on a cluster, and --force-conflicts takes the field over; the upgrade
// from client-side to server-side apply does not conflict (last-applied-configuration), another manager does.
func TestFieldOwnershipOfEditsAndPatches(t *testing.T) {
	t.Parallel()
	k := startTide(t, server.Options{})
	k.okIn(ownedBroker(3, "PT1S"), "create", "-f", "-")
	if m := k.managers("broker", "owned"); keys(m) != "kubectl-create/Update" || !strings.Contains(m["kubectl-create/Update"], `"f:retry"`) {
		t.Fatalf("after create: %v", m)
	}

	editor := filepath.Join(t.TempDir(), "editor.sh")
	if err := os.WriteFile(editor, []byte("#!/bin/sh\nsed -i 's/retry: 3/retry: 7/' \"$1\"\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	k.env = []string{"KUBE_EDITOR=" + editor}
	k.ok("edit", "broker", "owned")
	k.env = nil
	k.ok("patch", "broker", "owned", "--type=merge", "-p", `{"spec":{"delivery":{"backoffDelay":"PT2S"}}}`)
	k.ok("label", "broker", "owned", "tier=gold")
	m := k.managers("broker", "owned")
	if keys(m) != "kubectl-create/Update kubectl-edit/Update kubectl-label/Update kubectl-patch/Update" ||
		!strings.Contains(m["kubectl-edit/Update"], `"f:retry"`) || strings.Contains(m["kubectl-create/Update"], `"f:retry"`) ||
		!strings.Contains(m["kubectl-patch/Update"], `"f:backoffDelay"`) || !strings.Contains(m["kubectl-label/Update"], `"f:tier"`) {
		t.Fatalf("after edit, patch and label: %v", m)
	}

	// Server-side apply of the same document with other values: one conflict per field, with the editor and the
	// patcher, worded as kube-apiserver words them; nothing changes.
	errOut := k.fails(ownedBroker(5, "PT9S"), "apply", "--server-side", "-f", "-")
	for _, want := range []string{"Apply failed with 2 conflicts", `conflicts with "kubectl-edit"`, ".spec.delivery.retry",
		`conflicts with "kubectl-patch"`, ".spec.delivery.backoffDelay", "--force-conflicts"} {
		if !strings.Contains(errOut, want) {
			t.Errorf("apply --server-side over an edit and a patch: no %q in:\n%s", want, errOut)
		}
	}
	if out := k.ok("get", "broker", "owned", "-o", "jsonpath={.spec.delivery.retry}/{.spec.delivery.backoffDelay}"); out != "7/PT2S" {
		t.Errorf("after the refused apply: %s", out)
	}
	// The same values as live: shared ownership, no conflict.
	k.okIn(ownedBroker(7, "PT2S"), "apply", "--server-side", "--field-manager=same", "-f", "-")
	k.okIn(ownedBroker(5, "PT9S"), "apply", "--server-side", "--force-conflicts", "-f", "-")
	m = k.managers("broker", "owned")
	if out := k.ok("get", "broker", "owned", "-o", "jsonpath={.spec.delivery.retry}/{.spec.delivery.backoffDelay}"); out != "5/PT9S" ||
		!strings.Contains(m["kubectl/Apply"], `"f:retry"`) || strings.Contains(m["kubectl-edit/Update"], `"f:retry"`) ||
		strings.Contains(m["kubectl-patch/Update"], `"f:backoffDelay"`) || strings.Contains(m["same/Apply"], `"f:retry"`) {
		t.Errorf("after --force-conflicts: %s %v", out, m)
	}

	// Client-side apply records kubectl-client-side-apply; kubectl's own server-side apply takes its fields over
	// without a conflict (the upgrade path), another manager conflicts.
	cm := func(v string) string {
		return "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: csa\ndata:\n  a: \"" + v + "\"\n"
	}
	k.okIn(cm("1"), "apply", "-f", "-")
	k.okIn(cm("2"), "apply", "-f", "-")
	if m := k.managers("cm", "csa"); keys(m) != "kubectl-client-side-apply/Update" {
		t.Errorf("client-side apply: %v", m)
	}
	if errOut := k.fails(cm("3"), "apply", "--server-side", "--field-manager=other", "-f", "-"); !strings.Contains(errOut, `conflict with "kubectl-client-side-apply"`) {
		t.Errorf("another manager over client-side apply: %s", errOut)
	}
	k.okIn(cm("3"), "apply", "--server-side", "-f", "-")
	if out := k.ok("get", "cm", "csa", "-o", "jsonpath={.data.a}"); out != "3" {
		t.Errorf("upgrade to server-side apply: %q", out)
	}
}

const typoService = `apiVersion: serving.knative.dev/v1
kind: Service
metadata:
  name: typo
spec:
  template:
    spec:
      containers:
      - image: ko://example.com/hello
        bogus: 1
`

// TestFieldValidation: kubectl sends fieldValidation (its --validate), and tide answers as kube-apiserver: Strict
// (kubectl's default) refuses an unknown field with the server's words, warn applies it without the field and
// kubectl prints the server's warning, false (Ignore) applies it silently.
func TestFieldValidation(t *testing.T) {
	t.Parallel()
	k := startTide(t, server.Options{})
	errOut := k.fails(typoService, "apply", "-f", "-")
	want := `Error from server (BadRequest): error when creating "STDIN": Service in version "v1" cannot be handled as a Service: ` +
		`strict decoding error: unknown field "spec.template.spec.containers[0].bogus"`
	if !strings.Contains(errOut, want) {
		t.Errorf("apply (--validate=strict): want\n%s\ngot:\n%s", want, errOut)
	}
	if errOut := k.fails(typoService, "create", "--validate=strict", "-f", "-"); !strings.Contains(errOut, `unknown field "spec.template.spec.containers[0].bogus"`) {
		t.Errorf("create --validate=strict: %s", errOut)
	}
	if errOut := k.fails("", "patch", "ksvc", "typo", "--type=merge", "-p", "{}"); !strings.Contains(errOut, "NotFound") {
		t.Errorf("the refused Service exists: %s", errOut)
	}
	out, errOut, err := k.run(typoService, "apply", "--validate=warn", "-f", "-")
	if err != nil || !strings.Contains(out, "service.serving.knative.dev/typo created") ||
		!strings.Contains(errOut, `Warning: unknown field "spec.template.spec.containers[0].bogus"`) {
		t.Errorf("apply --validate=warn: %v\n%s\n%s", err, out, errOut)
	}
	if got := k.ok("get", "ksvc", "typo", "-o", "jsonpath={.spec.template.spec.containers[0]}"); strings.Contains(got, "bogus") {
		t.Errorf("the unknown field was stored: %s", got)
	}
	// kubectl patch sends no fieldValidation: the server's default (Warn) drops the field with a warning.
	out, errOut, err = k.run("", "patch", "ksvc", "typo", "--type=merge", "-p", `{"spec":{"nope":1}}`)
	if err != nil || !strings.Contains(out, "patched (no change)") || !strings.Contains(errOut, `Warning: unknown field "spec.nope"`) {
		t.Errorf("patch with an unknown field: %v\n%s\n%s", err, out, errOut)
	}
	k.ok("delete", "ksvc", "typo")
	out, errOut, err = k.run(typoService, "apply", "--validate=false", "-f", "-")
	if err != nil || !strings.Contains(out, "created") || strings.Contains(errOut, "Warning") {
		t.Errorf("apply --validate=false: %v\n%s\n%s", err, out, errOut)
	}
}

func cascadeService(name string) string {
	return strings.Replace(shopService, "name: hello", "name: "+name, 1)
}

// children waits for the Service's Configuration, Revision and Route and puts a finalizer on the Route, so a
// delete has to wait for it.
func (k *kube) childrenWithHeldRoute(name string) {
	k.t.Helper()
	eventually(k.t, name+"'s Configuration, Revision and Route", func() bool {
		out, _, _ := k.run("", "get", "configuration,revision,route", "-o", "name")
		return strings.Contains(out, "configuration.serving.knative.dev/"+name) && strings.Contains(out, "route.serving.knative.dev/"+name) &&
			strings.Contains(out, "revision.serving.knative.dev/"+name+"-00001")
	})
	k.ok("patch", "route", name, "--type=merge", "-p", `{"metadata":{"finalizers":["example.com/hold"]}}`)
}

// TestDeleteCascades: kubectl delete --cascade=foreground|background|orphan on a Knative Service with its
// Configuration, Revision and Route, as a cluster's garbage collector carries them out.
func TestDeleteCascades(t *testing.T) {
	t.Parallel()
	k := startTide(t, server.Options{})

	// Foreground: the Service stays, marked with foregroundDeletion, while its held Route is there; the rest goes.
	k.okIn(cascadeService("fg"), "apply", "-f", "-")
	k.childrenWithHeldRoute("fg")
	k.ok("delete", "ksvc", "fg", "--cascade=foreground", "--wait=false")
	if out := k.ok("get", "ksvc", "fg", "-o", "jsonpath={.metadata.finalizers}|{.metadata.deletionTimestamp}"); !strings.HasPrefix(out, `["foregroundDeletion"]|20`) {
		t.Errorf("foreground: the Service should wait, marked with foregroundDeletion: %q", out)
	}
	if out := k.ok("get", "configuration,revision", "-o", "name"); out != "" {
		t.Errorf("foreground: the Configuration and Revision should be gone:\n%s", out)
	}
	if ts := k.ok("get", "route", "fg", "-o", "jsonpath={.metadata.deletionTimestamp}"); ts == "" {
		t.Error("foreground: the held Route should be marked")
	}
	k.ok("patch", "route", "fg", "--type=merge", "-p", `{"metadata":{"finalizers":null}}`)
	k.ok("wait", "--for=delete", "ksvc/fg", "route/fg", "--timeout=10s")

	// Background (kubectl's default): the Service goes at once, the held Route waits marked.
	k.okIn(cascadeService("bg"), "apply", "-f", "-")
	k.childrenWithHeldRoute("bg")
	if out := k.ok("delete", "ksvc", "bg", "--cascade=background"); !strings.Contains(out, `service.serving.knative.dev "bg" deleted`) {
		t.Errorf("background: %s", out)
	}
	if errOut := k.fails("", "get", "ksvc", "bg"); !strings.Contains(errOut, "NotFound") {
		t.Errorf("background: the Service is still there: %s", errOut)
	}
	if ts := k.ok("get", "route", "bg", "-o", "jsonpath={.metadata.deletionTimestamp}"); ts == "" {
		t.Error("background: the held Route should be marked")
	}
	k.ok("patch", "route", "bg", "--type=merge", "-p", `{"metadata":{"finalizers":null}}`)
	k.ok("wait", "--for=delete", "route/bg", "--timeout=10s")

	// Foreground with nothing held: kubectl waits until all of it is gone.
	k.okIn(cascadeService("fg2"), "apply", "-f", "-")
	eventually(t, "fg2's Revision", func() bool {
		out, _, _ := k.run("", "get", "revision", "fg2-00001", "-o", "name")
		return out != ""
	})
	k.ok("delete", "ksvc", "fg2", "--cascade=foreground")
	if out := k.ok("get", "ksvc,configuration,revision,route", "-o", "name"); out != "" {
		t.Errorf("after a foreground delete:\n%s", out)
	}

	// Orphan: the Configuration (with its Revision) and the Route stay, without their owner reference.
	k.okIn(cascadeService("or"), "apply", "-f", "-")
	eventually(t, "or's Revision", func() bool {
		out, _, _ := k.run("", "get", "revision", "or-00001", "-o", "name")
		return out != ""
	})
	k.ok("delete", "ksvc", "or", "--cascade=orphan")
	if refs := k.ok("get", "configuration", "or", "-o", "jsonpath={.metadata.ownerReferences}"); refs != "" {
		t.Errorf("orphan: the Configuration keeps an owner reference: %s", refs)
	}
	k.ok("get", "route", "or")
	k.ok("get", "revision", "or-00001")
}
