package process

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
)

// hostileNames are names that must never become a path outside the directory they are joined to, or must be
// refused.
var hostileNames = []string{"..", ".", "", "/", "../x", "a/../../b", "/etc", "x\x00y", `..\..\x`, strings.Repeat("a", 256)}

func TestJoinNameStaysInside(t *testing.T) {
	base := t.TempDir()
	for _, n := range hostileNames {
		if p, err := joinName(base, n); err == nil {
			t.Errorf("joinName(%q) = %q, want an error", n, p)
		} else if !errors.Is(err, ErrBadName) {
			t.Errorf("joinName(%q): %v does not wrap ErrBadName", n, err)
		}
		if p, err := joinName(base, "ok", n); err == nil {
			t.Errorf("joinName(ok, %q) = %q, want an error", n, p)
		}
	}
	// Percent-encoding is not decoded: "%2F" and "..%2F.." are plain file names inside base.
	for _, n := range []string{"%2F", "..%2F..", "%2e%2e", "a..b", "...", strings.Repeat("a", 255)} {
		p, err := joinName(base, n)
		if err != nil {
			t.Errorf("joinName(%q): %v", n, err)
			continue
		}
		if filepath.Dir(p) != base {
			t.Errorf("joinName(%q) = %q, not directly inside %s", n, p, base)
		}
	}
}

// TestHostileNamesRefusedByPool goes through the Pool: a namespace or revision that could leave logs/ or the
// instance root is an invalid spec, and nothing is created outside the data dir.
func TestHostileNamesRefusedByPool(t *testing.T) {
	outer := t.TempDir()
	dataDir := filepath.Join(outer, "data")
	for _, n := range hostileNames {
		for _, field := range []string{"metadata.namespace", "metadata.name"} {
			spec := testSpec(corev1.Container{Image: conformanceImage})
			if field == "metadata.namespace" {
				spec.Namespace = n
			} else {
				spec.Revision = n
			}
			p, err := New(Options{Spec: spec, DataDir: dataDir, Builder: testBuilder})
			if err == nil {
				p.Close(context.Background())
				t.Errorf("%s %q accepted", field, n)
				continue
			}
			if !errors.Is(err, ErrInvalidSpec) || !strings.Contains(err.Error(), field) {
				t.Errorf("%s %q: err = %v, want ErrInvalidSpec naming the field", field, n, err)
			}
		}
	}
	entries, _ := os.ReadDir(outer)
	for _, e := range entries {
		if e.Name() != "data" {
			t.Errorf("%s created outside the data dir", e.Name())
		}
	}
	// A name with "%2F" is just a name: its log dir is inside logs/.
	spec := testSpec(corev1.Container{Image: conformanceImage})
	spec.Namespace = "a%2F..%2F.."
	p, err := New(Options{Spec: spec, DataDir: dataDir, Builder: testBuilder})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close(context.Background())
	if rel, err := filepath.Rel(filepath.Join(dataDir, "logs"), p.LogDir()); err != nil || !filepath.IsLocal(rel) {
		t.Fatalf("log dir %s escapes %s", p.LogDir(), filepath.Join(dataDir, "logs"))
	}
}

// TestBuildNameStaysInCache: an import path whose last element is ".." would name the binary <cache>/<key>/..,
// that is the cache dir itself, and `go build -o` would write next to it. It is refused before go build runs.
func TestBuildNameStaysInCache(t *testing.T) {
	mod := t.TempDir()
	if err := os.WriteFile(filepath.Join(mod, "go.mod"), []byte("module example.com/m\n\ngo 1.22\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	cache := filepath.Join(t.TempDir(), "cache")
	b, err := NewBuilder(BuilderOptions{CacheDir: cache})
	if err != nil {
		t.Fatal(err)
	}
	for _, ip := range []string{"ko://example.com/m/..", "example.com/m/.", "ko://.."} {
		if _, err := b.Build(context.Background(), mod, ip); err == nil || !errors.Is(err, ErrBuild) || !errors.Is(err, ErrBadName) {
			t.Errorf("Build(%q): err = %v, want ErrBuild wrapping ErrBadName", ip, err)
		}
	}
	if entries, _ := os.ReadDir(filepath.Dir(cache)); len(entries) > 1 {
		t.Errorf("something was written next to the cache: %v", entries)
	}
}
