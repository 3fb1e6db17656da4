package kubectl_test

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/tide-run/tide/server"
)

const cmDoc = `apiVersion: v1
kind: ConfigMap
metadata:
  name: settings
  labels: {app: shop}
data:
  mode: fast
`

const brokerDoc = `apiVersion: eventing.knative.dev/v1
kind: Broker
metadata:
  name: orders
  labels: {app: shop}
`

// TestVerbs drives the verbs people type through the real kubectl: create, get in every output, label, annotate,
// patch (merge, json, strategic), replace, edit, describe, --dry-run=server, wait, delete.
func TestVerbs(t *testing.T) {
	t.Parallel()
	k := startTide(t, server.Options{})

	// create, and --dry-run=server which stores nothing.
	if out := k.okIn(brokerDoc, "create", "--dry-run=server", "-f", "-"); !strings.Contains(out, "broker.eventing.knative.dev/orders created (server dry run)") {
		t.Errorf("create --dry-run=server: %s", out)
	}
	if out, _, _ := k.run("", "get", "broker", "orders", "-o", "name"); out != "" {
		t.Fatalf("--dry-run=server stored the Broker: %s", out)
	}
	if out := k.okIn(brokerDoc, "create", "-f", "-"); !strings.Contains(out, "broker.eventing.knative.dev/orders created") {
		t.Errorf("create: %s", out)
	}
	if errOut := k.fails(brokerDoc, "create", "-f", "-"); !strings.Contains(errOut, "AlreadyExists") {
		t.Errorf("create twice: %s", errOut)
	}
	k.okIn(cmDoc, "create", "-f", "-")
	k.ok("wait", "--for=condition=Ready", "broker/orders", "--timeout=30s")

	// get: -o name, json, yaml, wide, jsonpath, custom-columns, -l, -A.
	if out := k.ok("get", "brokers", "-o", "name"); strings.TrimSpace(out) != "broker.eventing.knative.dev/orders" {
		t.Errorf("get -o name: %q", out)
	}
	var obj struct {
		Kind   string `json:"kind"`
		Status struct {
			Address struct {
				URL string `json:"url"`
			} `json:"address"`
		} `json:"status"`
	}
	if err := json.Unmarshal([]byte(k.ok("get", "broker", "orders", "-o", "json")), &obj); err != nil || obj.Kind != "Broker" || obj.Status.Address.URL == "" {
		t.Errorf("get -o json: %+v %v", obj, err)
	}
	if out := k.ok("get", "broker", "orders", "-o", "yaml"); !strings.Contains(out, "kind: Broker") || !strings.Contains(out, "eventing.knative.dev/broker.class") {
		t.Errorf("get -o yaml:\n%s", out)
	}
	if out := k.ok("get", "broker", "orders", "-o", "jsonpath={.status.conditions[?(@.type=='Ready')].status}"); out != "True" {
		t.Errorf("get -o jsonpath: %q", out)
	}
	if rows := fields(k.ok("get", "broker", "-o", "wide")); strings.Join(rows[0], " ") != "NAME URL AGE READY REASON" {
		t.Errorf("get -o wide: %v", rows)
	}
	if rows := fields(k.ok("get", "cm", "-l", "app=shop")); len(rows) != 2 || rows[1][0] != "settings" {
		t.Errorf("get -l app=shop: %v", rows)
	}
	if out := k.ok("get", "cm", "-l", "app=other"); out != "" {
		t.Errorf("get -l app=other: %q", out)
	}
	if rows := fields(k.ok("get", "brokers", "-A")); rows[0][0] != "NAMESPACE" || rows[1][0] != "default" || rows[1][1] != "orders" {
		t.Errorf("get -A: %v", rows)
	}
	if rows := fields(k.ok("get", "cm", "-o", "custom-columns=N:.metadata.name,MODE:.data.mode")); len(rows) != 2 || rows[1][1] != "fast" {
		t.Errorf("get -o custom-columns: %v", rows)
	}
	if out := k.ok("get", "all"); !strings.Contains(out, "broker.eventing.knative.dev/orders") {
		t.Errorf("get all:\n%s", out)
	}
	if out := k.ok("get", "knative"); !strings.Contains(out, "broker.eventing.knative.dev/orders") {
		t.Errorf("get knative:\n%s", out)
	}
	if out := k.ok("get", "broker", "--show-labels"); !strings.Contains(out, "app=shop") {
		t.Errorf("get --show-labels:\n%s", out)
	}

	// label, annotate.
	if out := k.ok("label", "broker", "orders", "tier=gold"); !strings.Contains(out, "labeled") {
		t.Errorf("label: %s", out)
	}
	if out := k.ok("annotate", "broker", "orders", "note=hi"); !strings.Contains(out, "annotated") {
		t.Errorf("annotate: %s", out)
	}
	if out := k.ok("get", "broker", "orders", "-o", "jsonpath={.metadata.labels.tier}/{.metadata.annotations.note}"); out != "gold/hi" {
		t.Errorf("after label and annotate: %q", out)
	}
	k.ok("label", "broker", "orders", "tier-")
	if out := k.ok("get", "broker", "-l", "tier=gold", "-o", "name"); out != "" {
		t.Errorf("label tier-: still labeled: %q", out)
	}

	// patch: merge (custom kinds), json, strategic (built-in kinds).
	k.ok("patch", "broker", "orders", "--type=merge", "-p", `{"spec":{"delivery":{"retry":3}}}`)
	k.ok("patch", "broker", "orders", "--type=json", "-p", `[{"op":"replace","path":"/spec/delivery/retry","value":4}]`)
	if out := k.ok("get", "broker", "orders", "-o", "jsonpath={.spec.delivery.retry}"); out != "4" {
		t.Errorf("after patches: retry %q", out)
	}
	k.ok("patch", "cm", "settings", "-p", `{"data":{"size":"xl"}}`) // kubectl's default for built-in kinds: strategic
	if out := k.ok("get", "cm", "settings", "-o", "jsonpath={.data.mode}/{.data.size}"); out != "fast/xl" {
		t.Errorf("strategic patch: %q", out)
	}
	if errOut := k.fails("", "patch", "broker", "orders", "--type=strategic", "-p", `{"spec":{}}`); !strings.Contains(errOut, "not supported") {
		t.Errorf("strategic patch of a custom kind: %s", errOut)
	}
	if errOut := k.fails("", "patch", "broker", "orders", "--type=merge", "-p", `{"spec":{"delivery":{"retry":-1}}}`); !strings.Contains(errOut, "retry") {
		t.Errorf("invalid patch: %s", errOut)
	}
	if out := k.ok("patch", "broker", "orders", "--type=merge", "--dry-run=server", "-p", `{"spec":{"delivery":{"retry":9}}}`); !strings.Contains(out, "orders patched") {
		t.Errorf("patch --dry-run=server: %s", out)
	}
	if out := k.ok("get", "broker", "orders", "-o", "jsonpath={.spec.delivery.retry}"); out != "4" {
		t.Errorf("patch --dry-run=server changed retry to %q", out)
	}

	// replace: a whole new document.
	repl := strings.Replace(cmDoc, "mode: fast", "mode: slow", 1)
	if out := k.okIn(repl, "replace", "-f", "-"); !strings.Contains(out, "configmap/settings replaced") {
		t.Errorf("replace: %s", out)
	}
	if out := k.ok("get", "cm", "settings", "-o", "jsonpath={.data.mode}"); out != "slow" {
		t.Errorf("after replace: %q", out)
	}

	// edit with KUBE_EDITOR: a script that changes the document kubectl hands it.
	editor := filepath.Join(t.TempDir(), "editor.sh")
	if err := os.WriteFile(editor, []byte("#!/bin/sh\nsed -i 's/mode: slow/mode: edited/' \"$1\"\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	k.env = []string{"KUBE_EDITOR=" + editor}
	if out := k.ok("edit", "cm", "settings"); !strings.Contains(out, "configmap/settings edited") {
		t.Errorf("edit: %s", out)
	}
	k.env = nil
	if out := k.ok("get", "cm", "settings", "-o", "jsonpath={.data.mode}"); out != "edited" {
		t.Errorf("after edit: %q", out)
	}

	// describe: metadata, spec, status and the events recorded for the object.
	out := k.ok("describe", "broker", "orders")
	for _, want := range []string{"Name:         orders", "Namespace:    default", "API Version:  eventing.knative.dev/v1", "Kind:         Broker", "Ready"} {
		if !strings.Contains(out, want) {
			t.Errorf("describe: no %q:\n%s", want, out)
		}
	}

	// delete.
	if out := k.ok("delete", "broker", "orders"); !strings.Contains(out, `broker.eventing.knative.dev "orders" deleted`) {
		t.Errorf("delete: %s", out)
	}
	if errOut := k.fails("", "get", "broker", "orders"); !strings.Contains(errOut, "NotFound") {
		t.Errorf("get after delete: %s", errOut)
	}
	k.ok("delete", "cm", "settings", "--dry-run=server")
	k.ok("get", "cm", "settings")
}
