package archtest

import (
	"os/exec"
	"slices"
	"strings"
	"testing"
)

// benchOnly are packages the shipping binary must not link: the benchmark harness and its peers live in
// cmd/tide-bench (docs/BENCHMARKS.md), so that tide carries only what it runs. Likewise the tools and test
// harnesses of the cluster controller: the CRD generator, and kube-apiserver, etcd and kube-controller-manager's
// garbage collector, which only internal/kubetest's tests run; and kubectl's code (k8s.io/kubectl,
// k8s.io/cli-runtime, kustomize), linked only into test/kubectl's kubectl.
var benchOnly = []string{"github.com/nats-io/", module + "/mq/bench",
	module + "/internal/crdgen", module + "/internal/kubetest", module + "/internal/kafkatest", "k8s.io/kubernetes/", "go.etcd.io/etcd/server/",
	"k8s.io/apiserver/", "k8s.io/apiextensions-apiserver/pkg/apiserver",
	"k8s.io/kubectl/", "k8s.io/cli-runtime/", "sigs.k8s.io/kustomize/", module + "/test/"}

// TestShippingBinaryCarriesNoBenchPeers asks the go command for everything ./cmd/tide links.
func TestShippingBinaryCarriesNoBenchPeers(t *testing.T) {
	goTool, err := exec.LookPath("go")
	if err != nil {
		t.Skip("the go command is not on PATH:", err)
	}
	cmd := exec.Command(goTool, "list", "-deps", "./cmd/tide")
	cmd.Dir = "../.."
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("go list -deps ./cmd/tide: %v", err)
	}
	deps := strings.Fields(string(out))
	if len(deps) < 50 || !slices.Contains(deps, module+"/cli") {
		t.Fatalf("go list -deps ./cmd/tide listed %d packages without %s/cli: the query is broken", len(deps), module)
	}
	for _, d := range deps {
		for _, p := range benchOnly {
			if d == p || strings.HasPrefix(d, p) && (strings.HasSuffix(p, "/") || strings.HasPrefix(d, p+"/")) {
				t.Errorf("tide links %s: benchmark harnesses, generators, kubectl and test-only servers stay out of the shipping binary", d)
			}
		}
	}
}
