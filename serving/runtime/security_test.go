package runtime_test

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/tide-run/tide/server"
)

// TestKoBuildWithRelativeDataDir is issue 17's bug end to end: tide runs with a relative --data-dir and the
// Service's ko:// image is resolved in another folder. The build must land in the data dir (not a stray .tide in
// the source folder), and a Service first applied from a folder where it cannot build recovers when applied again
// from the right one, without a new revision.
func TestKoBuildWithRelativeDataDir(t *testing.T) {
	work := t.TempDir()
	t.Chdir(work)
	p := startWith(t, server.Options{Host: "127.0.0.1", DataDir: ".tide-rel", Serving: server.ServingOptions{AutoscalerTick: time.Second}})
	if got := p.srv.Options().DataDir; got != filepath.Join(work, ".tide-rel") {
		t.Fatalf("data dir %q, want it resolved against the working directory", got)
	}
	wrong := t.TempDir() // no go.mod: the import path cannot be resolved here
	svc := func(dir string) string {
		return fmt.Sprintf(`
apiVersion: serving.knative.dev/v1
kind: Service
metadata:
  name: rel
  annotations: {tide.dev/source-dir: %q}
spec:
  template:
    spec:
      containers:
        - image: %s
`, dir, conformanceImage)
	}
	p.apply(svc(wrong))
	p.eventually("BuildFailed", 60*time.Second, func() string {
		o, err := p.tryGet("rev", "rel-00001")
		if err != nil {
			return err.Error()
		}
		if s, r, _ := cond(o, "ContainerHealthy"); s != "False" || r != "BuildFailed" {
			return s + " " + r
		}
		return ""
	})
	p.apply(svc(repoRoot))
	p.waitReady("ksvc", "rel")
	if _, err := p.tryGet("rev", "rel-00002"); err == nil {
		t.Fatal("re-applying created a new revision; the failed one should have been rebuilt")
	}
	if _, err := os.Stat(filepath.Join(repoRoot, ".tide-rel")); !os.IsNotExist(err) {
		t.Fatalf("a stray .tide-rel appeared in the source folder (%v)", err)
	}
	bins, _ := filepath.Glob(filepath.Join(work, ".tide-rel", "build", "*", "conformance"))
	if len(bins) != 1 {
		t.Fatalf("built binary not in the data dir's build cache: %v", bins)
	}
	if body := p.mustGet("rel.default.localhost", "/"); body == "" {
		t.Fatal("empty answer")
	}
}

// TestClusterLocalService: a Service labelled networking.knative.dev/visibility: cluster-local reports Knative's
// cluster-local URL and still answers a caller on this machine.
func TestClusterLocalService(t *testing.T) {
	p := start(t)
	p.apply(`
apiVersion: serving.knative.dev/v1
kind: Service
metadata:
  name: inner
  labels: {networking.knative.dev/visibility: cluster-local}
spec:
  template:
    spec:
      containers:
        - image: ` + conformanceImage)
	o := p.waitReady("ksvc", "inner")
	url, _, _ := unstructured.NestedString(o.Object, "status", "url")
	if url != "http://inner.default.svc.cluster.local" {
		t.Fatalf("status.url = %q, want Knative's cluster-local URL", url)
	}
	if !strings.Contains(p.mustGet("inner.default.svc.cluster.local", "/"), "inner") {
		t.Fatal("a loopback caller did not reach the cluster-local Service")
	}
}

// TestInstancesRunAsInstanceUser runs the platform as `tide up` does as root with --instance-user nobody: the
// instance's process has uid 65534, its environment has no trace of tide's, and the data dir stays closed.
func TestInstancesRunAsInstanceUser(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("switching users needs root")
	}
	t.Setenv("TIDE_TOKEN", "do-not-leak")
	dataDir := t.TempDir()
	p := startWith(t, server.Options{Host: "127.0.0.1", DataDir: dataDir,
		Serving: server.ServingOptions{BuildCacheDir: buildCache, SourceDir: repoRoot, InstanceUser: "nobody"}})
	srv := p.srv
	p.apply(`
apiVersion: serving.knative.dev/v1
kind: Service
metadata: {name: least}
spec:
  template:
    spec:
      containers:
        - image: ` + conformanceImage)
	p.waitReady("ksvc", "least")
	envJSON := p.mustGet("least.default.localhost", "/env")
	if strings.Contains(envJSON, "do-not-leak") || !strings.Contains(envJSON, `"USER":"nobody"`) {
		t.Fatalf("instance environment: %s", envJSON)
	}
	insts := srv.Serving().Instances("default", "least-00001")
	if len(insts) == 0 {
		t.Fatal("no instance listed")
	}
	status, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", insts[0].PID))
	if err != nil {
		t.Fatal(err)
	}
	for line := range strings.Lines(string(status)) {
		if rest, ok := strings.CutPrefix(line, "Uid:"); ok && strings.Join(strings.Fields(rest), " ") != "65534 65534 65534 65534" {
			t.Fatalf("instance uids: %s", rest)
		}
	}
	if st, err := os.Stat(dataDir); err != nil || st.Mode().Perm()&0o007 != 0 {
		t.Fatalf("data dir open to other users: %v %v", st.Mode(), err)
	}
}

// TestHostileNamespaceThroughRuntime writes a Revision in namespace ".." straight into the store (the API refuses
// such namespaces; this is the serving side's own defence): the runtime reports it as an invalid spec and writes
// nothing outside <data-dir>/logs.
func TestHostileNamespaceThroughRuntime(t *testing.T) {
	dataDir := t.TempDir()
	p := startIn(t, dataDir)
	rev := &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "serving.knative.dev/v1", "kind": "Revision",
		"metadata": map[string]any{"name": "evil-00001", "namespace": ".."},
		"spec":     map[string]any{"containers": []any{map[string]any{"image": conformanceImage}}},
	}}
	if _, err := p.srv.Store().Create(rev); err != nil {
		t.Skipf("the store refuses namespace \"..\" itself (%v); nothing reaches the runtime", err)
	}
	p.eventually("InvalidSpec", 30*time.Second, func() string {
		o, err := p.srv.Store().Get("Revision.serving.knative.dev", "..", "evil-00001")
		if err != nil {
			return err.Error()
		}
		if s, r, m := cond(o, "ContainerHealthy"); s != "False" || r != "InvalidSpec" || !strings.Contains(m, "metadata.namespace") {
			return s + " " + r + " " + m
		}
		return ""
	})
	for _, p := range []string{filepath.Join(dataDir, "evil-00001"), filepath.Join(filepath.Dir(dataDir), "evil-00001")} {
		if _, err := os.Stat(p); !os.IsNotExist(err) {
			t.Errorf("%s exists: a name left its directory", p)
		}
	}
}
