package process

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
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
	b, err := NewBuilder(BuilderOptions{CacheDir: t.TempDir()})
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
