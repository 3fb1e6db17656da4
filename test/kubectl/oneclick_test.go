package kubectl_test

import (
	"path/filepath"
	"strings"
	"testing"

	"github.com/tide-run/tide/server"
)

// oneClick is the seed's deployment command, file for file.
var oneClick = []string{"200-serviceaccount.yaml", "202-clusterrolebinding.yaml", "203-secret.yaml",
	"alirocketmqsource.yaml", "broker.yaml", "ksvc-order-service.yaml", "trigger.yaml"}

func oneClickArgs(dir string) []string {
	args := []string{"apply"}
	for _, f := range oneClick {
		args = append(args, "-f", filepath.Join(dir, f))
	}
	return args
}

// TestSeedOneClickApply runs the seed's one-click `kubectl apply -f ... -f trigger.yaml` from inside
// examples/food-delivery/ (relative file names, as the seed writes it), then again from the repository root: the
// first creates every object, the second finds them all unchanged. `kubectl get ksvc,broker,trigger,rocketmqsource`
// then prints the tables a cluster prints (Knative's printer columns).
func TestSeedOneClickApply(t *testing.T) {
	t.Parallel()
	k := startTide(t, server.Options{})
	root := repoRoot(t)
	k.dir = filepath.Join(root, "examples", "food-delivery")
	out := k.ok(oneClickArgs(".")...)
	for _, want := range []string{
		"serviceaccount/rocketmq-source created",
		"clusterrolebinding.rbac.authorization.k8s.io/rocketmq-source-addressable-resolver created",
		"secret/rocketmq-credentials created",
		"rocketmqsource.sources.knative.dev/orders created",
		"broker.eventing.knative.dev/default created",
		"service.serving.knative.dev/order-service created",
		"trigger.eventing.knative.dev/order-service created",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("one-click apply: no %q in:\n%s", want, out)
		}
	}
	k.dir = root
	out = k.ok(oneClickArgs("examples/food-delivery")...)
	// The Secret and the Service are "configured" as on a cluster, without changing: the Secret's stringData is
	// folded into data and never stored, and the Service's containers list carries Knative's defaults, so kubectl's
	// three-way patch sends both again (a strategic merge patch, a JSON merge patch); the stored objects stay as
	// they were (no new generation, no new Revision).
	if strings.Count(out, " unchanged") != len(oneClick)-2 || !strings.Contains(out, "secret/rocketmq-credentials configured") {
		t.Errorf("the second one-click apply (from the repository root) changed something:\n%s", out)
	}
	if g := k.ok("get", "ksvc", "order-service", "-o", "jsonpath={.metadata.generation}"); g != "1" {
		t.Errorf("re-applying the unchanged Service made generation %s", g)
	}

	k.ok("wait", "--for=condition=Ready", "broker/default", "--timeout=30s")
	out = k.ok("get", "ksvc,broker,trigger,rocketmqsource")
	t.Logf("kubectl get ksvc,broker,trigger,rocketmqsource:\n%s", out)
	for _, header := range []string{
		"NAME                                        URL", // ksvc's header begins its block
		"LATESTCREATED", "LATESTREADY", "READY", "REASON",
		"SUBSCRIBER_URI", "BROKER", "SINK", "AGE",
	} {
		if !strings.Contains(out, strings.Fields(header)[len(strings.Fields(header))-1]) {
			t.Errorf("kubectl get: no column %s:\n%s", header, out)
		}
	}
	for _, name := range []string{"service.serving.knative.dev/order-service", "broker.eventing.knative.dev/default",
		"trigger.eventing.knative.dev/order-service", "rocketmqsource.sources.knative.dev/orders"} {
		if !strings.Contains(out, name) {
			t.Errorf("kubectl get: no row %s:\n%s", name, out)
		}
	}
	// Each kind's own table, as a cluster prints it.
	rows := fields(k.ok("get", "broker"))
	if strings.Join(rows[0], " ") != "NAME URL AGE READY REASON" || rows[1][0] != "default" || rows[1][3] != "True" {
		t.Errorf("kubectl get broker:\n%v", rows)
	}
	if !strings.HasPrefix(rows[1][1], "http://") {
		t.Errorf("kubectl get broker: URL %q", rows[1][1])
	}
	rows = fields(k.ok("get", "trigger"))
	if strings.Join(rows[0], " ") != "NAME BROKER SUBSCRIBER_URI AGE READY REASON" || rows[1][1] != "default" {
		t.Errorf("kubectl get trigger:\n%v", rows)
	}
	rows = fields(k.ok("get", "ksvc"))
	if strings.Join(rows[0], " ") != "NAME URL LATESTCREATED LATESTREADY READY REASON" || rows[1][0] != "order-service" {
		t.Errorf("kubectl get ksvc:\n%v", rows)
	}
	rows = fields(k.ok("get", "rocketmqsource"))
	if strings.Join(rows[0], " ") != "NAME SINK AGE READY REASON" || rows[1][0] != "orders" {
		t.Errorf("kubectl get rocketmqsource:\n%v", rows)
	}
	rows = fields(k.ok("get", "secret,sa"))
	if strings.Join(rows[0], " ") != "NAME TYPE DATA AGE" || rows[1][1] != "Opaque" || rows[1][2] != "2" {
		t.Errorf("kubectl get secret:\n%v", rows)
	}
}
