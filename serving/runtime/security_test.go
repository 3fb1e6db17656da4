package runtime_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/tide-run/tide/controlplane/client"
	"github.com/tide-run/tide/server"
)

// TestKoBuildWithRelativeDataDir is issue 17's bug end to end: tide runs with a relative --data-dir and the
// Service's ko:// image is resolved in another folder. The build must land in the data dir (not a stray .tide in
// the source folder), and a Service first applied from a folder where it cannot build recovers when applied again
// from the right one, without a new revision.
func TestKoBuildWithRelativeDataDir(t *testing.T) {
	work := t.TempDir()
	t.Chdir(work)
	lg := slog.New(slog.NewTextHandler(io.Discard, nil))
	srv, err := server.New(server.Options{Host: "127.0.0.1", DataDir: ".tide-rel", Logger: lg,
		Serving: server.ServingOptions{AutoscalerTick: time.Second}})
	if err != nil {
		t.Fatal(err)
	}
	if got := srv.Options().DataDir; got != filepath.Join(work, ".tide-rel") {
		t.Fatalf("data dir %q, want it resolved against the working directory", got)
	}
	if err := srv.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	p := &platform{t: t, srv: srv, hc: &http.Client{Timeout: 30 * time.Second}}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		_ = srv.Shutdown(ctx)
	})
	if p.c, err = client.New(srv.APIURL(), nil); err != nil {
		t.Fatal(err)
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
