package metrics

import (
	"io/fs"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/tide-run/tide/internal/promtest"
)

func TestHandlerServesRuntimeAndProcess(t *testing.T) {
	reg := NewRegistry()
	srv := httptest.NewServer(Handler(reg, nil))
	defer srv.Close()
	f := promtest.MustScrape(t, srv.URL, nil)
	for _, n := range []string{"go_goroutines", "go_memstats_heap_inuse_bytes", "process_cpu_seconds_total", "process_resident_memory_bytes"} {
		if !f.Has(n, nil) {
			t.Errorf("no %s: %v", n, f.Names())
		}
	}
}

// TestNoGlobalRegistry: no tide source registers on, or serves, client_golang's process-global default registry
// (each server has its own; global state would make two servers in one process share or collide on metrics).
func TestNoGlobalRegistry(t *testing.T) {
	root, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	bad := regexp.MustCompile(`\bprometheus\.(MustRegister|Register|Unregister|DefaultRegisterer|DefaultGatherer)\b|\bpromauto\.New|\bpromhttp\.Handler\(\)`)
	checked := 0
	err = filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && (strings.HasPrefix(d.Name(), ".") || d.Name() == "testdata" || d.Name() == "node_modules") && path != root {
			return filepath.SkipDir
		}
		if d.IsDir() || !strings.HasSuffix(path, ".go") {
			return nil
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		checked++
		if m := bad.Find(b); m != nil {
			rel, _ := filepath.Rel(root, path)
			t.Errorf("%s uses the global registry (%s): take a prometheus.Registerer instead", rel, m)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if checked < 100 {
		t.Fatalf("only %d Go files checked under %s", checked, root)
	}
}
