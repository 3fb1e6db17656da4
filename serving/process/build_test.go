package process

import (
	"bytes"
	"context"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
)

func TestBuildCachedByContentAndDeduplicated(t *testing.T) {
	mod := t.TempDir()
	write := func(name, body string) {
		if err := os.WriteFile(filepath.Join(mod, name), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("go.mod", "module example.com/hello\n\ngo 1.22\n")
	write("main.go", "package main\n\nfunc main() { println(\"one\") }\n")
	var logs syncBuffer
	b, err := NewBuilder(BuilderOptions{CacheDir: t.TempDir(), ProgressInterval: time.Millisecond,
		Logger: slog.New(slog.NewTextHandler(&logs, nil))})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()

	// Concurrent builds of one image run go build once and agree on the binary.
	var wg sync.WaitGroup
	bins := make([]string, 4)
	errs := make([]error, 4)
	for i := range bins {
		wg.Add(1)
		go func() {
			defer wg.Done()
			bins[i], errs[i] = b.Build(ctx, mod, "ko://example.com/hello")
		}()
	}
	wg.Wait()
	for i := range bins {
		if errs[i] != nil || bins[i] != bins[0] {
			t.Fatalf("build %d: %q, %v (first %q)", i, bins[i], errs[i], bins[0])
		}
	}
	out, err := exec.Command(bins[0]).CombinedOutput()
	if err != nil || string(out) != "one\n" {
		t.Fatalf("run: %q %v", out, err)
	}
	// The build said it started, that it was still running (go build takes longer than the 1 ms interval), and
	// that it was done, once each for the four callers.
	l := logs.String()
	if strings.Count(l, `msg="building image"`) != 1 || strings.Count(l, `msg="built image"`) != 1 ||
		!strings.Contains(l, `msg="still building image"`) || !strings.Contains(l, "duration=") {
		t.Fatalf("build log lines:\n%s", l)
	}
	st1, _ := os.Stat(bins[0])

	// Unchanged sources: same binary, not rebuilt.
	again, err := b.Build(ctx, mod, "example.com/hello")
	if err != nil || again != bins[0] {
		t.Fatalf("rebuild: %q %v", again, err)
	}
	st2, _ := os.Stat(again)
	if !st1.ModTime().Equal(st2.ModTime()) {
		t.Fatal("binary was rebuilt for unchanged sources")
	}

	// A source change makes a new binary.
	write("main.go", "package main\n\nfunc main() { println(\"two\") }\n")
	changed, err := b.Build(ctx, mod, "example.com/hello")
	if err != nil || changed == bins[0] {
		t.Fatalf("changed: %q %v", changed, err)
	}
	if out, _ := exec.Command(changed).CombinedOutput(); string(out) != "two\n" {
		t.Fatalf("changed binary prints %q", out)
	}

	// An embedded asset next to the main package is part of the key.
	write("main.go", "package main\n\nimport _ \"embed\"\n\n//go:embed msg.txt\nvar msg string\n\nfunc main() { print(msg) }\n")
	write("msg.txt", "three")
	embedded, err := b.Build(ctx, mod, "example.com/hello")
	if err != nil {
		t.Fatal(err)
	}
	write("msg.txt", "four")
	reembedded, err := b.Build(ctx, mod, "example.com/hello")
	if err != nil || reembedded == embedded {
		t.Fatalf("asset change not rebuilt: %q %v", reembedded, err)
	}
	if out, _ := exec.Command(reembedded).CombinedOutput(); string(out) != "four" {
		t.Fatalf("rebuilt binary prints %q", out)
	}

	// A compile error is reported with the compiler's words.
	write("main.go", "package main\n\nfunc main() { nope() }\n")
	if _, err := b.Build(ctx, mod, "example.com/hello"); err == nil || !strings.Contains(err.Error(), "undefined: nope") {
		t.Fatalf("err = %v", err)
	}
}

func TestModulePath(t *testing.T) {
	for in, want := range map[string]string{
		"module example.com/x\n\ngo 1.22\n":     "example.com/x",
		"// c\nmodule \"example.com/y\" // z\n": "example.com/y",
		"go 1.22\n":                             "",
		"modulex foo\n":                         "",
	} {
		if got := modulePath([]byte(in)); got != want {
			t.Errorf("modulePath(%q) = %q, want %q", in, got, want)
		}
	}
}

// TestBuildWithRelativeCacheDir is issue 17's ko:// bug: tide runs with a relative data dir (so a relative cache
// dir) while go build runs in the source folder. The binary must land in the cache as tide sees it, and nothing
// may appear in the source folder.
func TestBuildWithRelativeCacheDir(t *testing.T) {
	work := t.TempDir()
	mod := t.TempDir()
	if err := os.WriteFile(filepath.Join(mod, "go.mod"), []byte("module example.com/rel\n\ngo 1.22\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(mod, "main.go"), []byte("package main\n\nfunc main() { println(\"rel\") }\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	t.Chdir(work)
	b, err := NewBuilder(BuilderOptions{CacheDir: ".tide/build"})
	if err != nil {
		t.Fatal(err)
	}
	bin, err := b.Build(context.Background(), mod, "ko://example.com/rel")
	if err != nil {
		t.Fatalf("build with a relative cache dir: %v", err)
	}
	if !filepath.IsAbs(bin) || !strings.HasPrefix(bin, filepath.Join(work, ".tide", "build")) {
		t.Fatalf("binary at %s, want under %s", bin, filepath.Join(work, ".tide", "build"))
	}
	if out, err := exec.Command(bin).CombinedOutput(); err != nil || string(out) != "rel\n" {
		t.Fatalf("run: %q %v", out, err)
	}
	if _, err := os.Stat(filepath.Join(mod, ".tide")); !os.IsNotExist(err) {
		t.Fatalf("a stray .tide appeared in the source folder (%v)", err)
	}
}

// TestFailedBuildIsRetried: a revision whose build fails keeps retrying on the restart back-off, so fixing the
// cause (here the source) brings it up without a new revision.
func TestFailedBuildIsRetried(t *testing.T) {
	mod := t.TempDir()
	write := func(name, body string) {
		if err := os.WriteFile(filepath.Join(mod, name), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("go.mod", "module example.com/retry\n\ngo 1.22\n")
	write("main.go", "package main\n\nfunc main() { nope() }\n")
	spec := testSpec(corev1.Container{Image: "ko://example.com/retry"})
	spec.Dir = mod
	p := newTestPool(t, Options{Spec: spec, BackoffInitial: 50 * time.Millisecond, BackoffMax: 200 * time.Millisecond})
	p.SetScale(1)
	eventually(t, 60*time.Second, "BuildFailed", func() bool { return p.Status().Reason == "BuildFailed" })
	write("main.go", `package main

import (
	"net/http"
	"os"
)

func main() { _ = http.ListenAndServe("127.0.0.1:"+os.Getenv("PORT"), nil) }
`)
	eventually(t, 60*time.Second, "ready after the source was fixed", func() bool { return p.ReadyCount() == 1 })
	if st := p.Status(); st.Failed {
		t.Fatalf("status %+v", st)
	}
}

// syncBuffer is a bytes.Buffer safe for a logger's concurrent writes.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}
