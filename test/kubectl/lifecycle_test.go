package kubectl_test

import (
	"strings"
	"testing"

	"github.com/tide-run/tide/server"
)

const shopService = `apiVersion: serving.knative.dev/v1
kind: Service
metadata:
  name: hello
spec:
  template:
    spec:
      containers:
      - image: ko://example.com/hello # not in this module: never built, never started
`

// TestNamespacesCascadeFinalizersEventsWatch: namespaces are objects (create, list, delete empties them), a
// Service's children go with it unless --cascade=orphan, finalizers hold a delete until they are removed, the
// reconcilers' events list with `kubectl get events`, and `kubectl get -w` streams changes.
func TestNamespacesCascadeFinalizersEventsWatch(t *testing.T) {
	t.Parallel()
	k := startTide(t, server.Options{})

	if out := k.ok("create", "namespace", "shop"); !strings.Contains(out, "namespace/shop created") {
		t.Errorf("create namespace: %s", out)
	}
	if rows := fields(k.ok("get", "ns", "shop")); strings.Join(rows[0], " ") != "NAME STATUS AGE" || rows[1][1] != "Active" {
		t.Errorf("get ns: %v", rows)
	}

	watch := k.start("get", "ksvc", "-n", "shop", "-w")
	k.okIn(shopService, "apply", "-n", "shop", "-f", "-")
	eventually(t, "get -w shows the new Service", func() bool { return strings.Contains(watch.String(), "hello") })

	// The Service's children appear (the serving reconcilers), and the reconcilers' events list.
	eventually(t, "get all -n shop lists the Configuration, Route and Revision", func() bool {
		out, _, _ := k.run("", "get", "all", "-n", "shop", "-o", "name")
		return strings.Contains(out, "configuration.serving.knative.dev/hello") && strings.Contains(out, "route.serving.knative.dev/hello") &&
			strings.Contains(out, "revision.serving.knative.dev/hello-00001")
	})
	out := k.ok("get", "rev", "-n", "shop")
	if lines := strings.Split(out, "\n"); !strings.HasPrefix(lines[0], "NAME") || !strings.Contains(lines[0], "CONFIG NAME") ||
		!strings.Contains(lines[0], "ACTUAL REPLICAS") || len(fields(out)) < 2 || fields(out)[1][1] != "hello" || fields(out)[1][2] != "1" {
		t.Errorf("kubectl get rev (Knative's revision columns, CONFIG NAME and GENERATION from labels):\n%s", out)
	}
	eventually(t, "kubectl get events shows the reconcilers' events", func() bool {
		out, _, _ := k.run("", "get", "events", "-n", "shop")
		return strings.Contains(out, "LAST SEEN") && strings.Contains(out, "Created")
	})
	if out := k.ok("describe", "ksvc", "hello", "-n", "shop"); !strings.Contains(out, "Events:") || !strings.Contains(out, "Created") {
		t.Errorf("describe ksvc shows no events:\n%s", out)
	}

	// --cascade=orphan: the Configuration and Route stay, without their owner.
	k.ok("delete", "ksvc", "hello", "-n", "shop", "--cascade=orphan")
	out = k.ok("get", "configuration,route", "-n", "shop", "-o", "name")
	if !strings.Contains(out, "configuration.serving.knative.dev/hello") || !strings.Contains(out, "route.serving.knative.dev/hello") {
		t.Errorf("after delete --cascade=orphan the children are gone:\n%s", out)
	}
	if refs := k.ok("get", "configuration", "hello", "-n", "shop", "-o", "jsonpath={.metadata.ownerReferences}"); refs != "" {
		t.Errorf("orphaned Configuration still has owner references: %s", refs)
	}

	// Finalizers hold a delete until removed.
	k.okIn("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: held\n  finalizers: [example.com/hold]\n", "apply", "-n", "shop", "-f", "-")
	k.ok("delete", "cm", "held", "-n", "shop", "--wait=false")
	if ts := k.ok("get", "cm", "held", "-n", "shop", "-o", "jsonpath={.metadata.deletionTimestamp}"); ts == "" {
		t.Errorf("a ConfigMap with a finalizer was not marked for deletion")
	}
	k.ok("patch", "cm", "held", "-n", "shop", "--type=merge", "-p", `{"metadata":{"finalizers":null}}`)
	if errOut := k.fails("", "get", "cm", "held", "-n", "shop"); !strings.Contains(errOut, "NotFound") {
		t.Errorf("removing the last finalizer did not delete: %s", errOut)
	}

	// Deleting the namespace deletes what is in it.
	k.okIn("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: left\n", "apply", "-n", "shop", "-f", "-")
	if out := k.ok("delete", "namespace", "shop"); !strings.Contains(out, `namespace "shop" deleted`) {
		t.Errorf("delete namespace: %s", out)
	}
	if out := k.ok("get", "all,cm", "-n", "shop", "-o", "name"); out != "" {
		t.Errorf("objects left in the deleted namespace:\n%s", out)
	}
	if errOut := k.fails("", "get", "ns", "shop"); !strings.Contains(errOut, "NotFound") {
		t.Errorf("get ns after delete: %s", errOut)
	}
}
