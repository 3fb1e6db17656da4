package process

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"
)

// KoPrefix marks an image that tide builds from Go source, the same convention `ko apply` resolves.
const KoPrefix = "ko://"

// ErrBuild is wrapped by every failure to build a ko:// image.
var ErrBuild = errors.New("build failed")

// BuilderOptions configures a Builder.
type BuilderOptions struct {
	// CacheDir holds built binaries, one directory per content key. Required.
	CacheDir string
	// GoCommand is the go tool to run. Default "go" from PATH.
	GoCommand string
	// Env is added to the environment of `go build` (after os.Environ()). CGO_ENABLED=0 is set by default, as ko does.
	Env []string
	// Logger receives a line when a build starts, one every ProgressInterval while it runs, and one when it is
	// done. Default slog.Default().
	Logger *slog.Logger
	// ProgressInterval is how often a running build logs that it still runs. Default 10 s.
	ProgressInterval time.Duration
}

// Builder builds ko:// images with `go build`. Results are cached on disk by content: the key hashes the import
// path and every Go source, assembly, cgo and go.mod/go.sum/go.work file of the main module, so an edit to any of
// them makes a new binary while unchanged sources reuse the old one without running the go tool. Concurrent builds
// of the same key run once.
type Builder struct {
	opts BuilderOptions
	log  *slog.Logger

	mu    sync.Mutex            // guards calls
	calls map[string]*buildCall // in-progress builds by content key
}

type buildCall struct {
	done chan struct{}
	bin  string
	err  error
}

// NewBuilder returns a Builder writing into opts.CacheDir.
func NewBuilder(opts BuilderOptions) (*Builder, error) {
	if opts.CacheDir == "" {
		return nil, fmt.Errorf("process: BuilderOptions.CacheDir is required")
	}
	// `go build -o` runs in the source directory, so a relative cache path would land there (a stray .tide/ in
	// the example folder) while tide looks for the binary relative to its own working directory.
	abs, err := filepath.Abs(opts.CacheDir)
	if err != nil {
		return nil, fmt.Errorf("process: BuilderOptions.CacheDir: %w", err)
	}
	opts.CacheDir = abs
	if opts.GoCommand == "" {
		opts.GoCommand = "go"
	}
	if opts.ProgressInterval <= 0 {
		opts.ProgressInterval = 10 * time.Second
	}
	lg := opts.Logger
	if lg == nil {
		lg = slog.Default()
	}
	return &Builder{opts: opts, log: lg.With("component", "serving/build"), calls: map[string]*buildCall{}}, nil
}

// Build returns the path of a binary built from importPath (with or without the ko:// prefix), resolving it in dir
// the way `go build` run in dir would.
func (b *Builder) Build(ctx context.Context, dir, importPath string) (string, error) {
	importPath = strings.TrimPrefix(importPath, KoPrefix)
	if importPath == "" {
		return "", fmt.Errorf("%w: empty import path", ErrBuild)
	}
	absDir, err := filepath.Abs(dir)
	if err != nil {
		return "", fmt.Errorf("%w: %w", ErrBuild, err)
	}
	root, err := moduleRoot(absDir)
	if err != nil {
		return "", fmt.Errorf("%w: %s: %w", ErrBuild, importPath, err)
	}
	key, err := contentKey(root, importPath)
	if err != nil {
		return "", fmt.Errorf("%w: %s: hashing sources: %w", ErrBuild, importPath, err)
	}
	// The binary is named after the last element of the import path, as go build names it; an import path whose
	// last element is not a plain name ("..", "x/.") must not place it outside its key's directory.
	bin, err := joinName(b.opts.CacheDir, key, path.Base(importPath))
	if err != nil {
		return "", fmt.Errorf("%w: %s: %w", ErrBuild, importPath, err)
	}
	if _, err := os.Stat(bin); err == nil {
		return bin, nil
	}

	b.mu.Lock()
	if c, ok := b.calls[key]; ok {
		b.mu.Unlock()
		select {
		case <-c.done:
			return c.bin, c.err
		case <-ctx.Done():
			return "", ctx.Err()
		}
	}
	c := &buildCall{done: make(chan struct{})}
	b.calls[key] = c
	b.mu.Unlock()

	// The build itself is not tied to the first caller's context: others may be waiting for it.
	c.bin, c.err = b.run(absDir, importPath, bin)
	close(c.done)
	b.mu.Lock()
	delete(b.calls, key)
	b.mu.Unlock()
	return c.bin, c.err
}

func (b *Builder) run(dir, importPath, bin string) (string, error) {
	if err := os.MkdirAll(filepath.Dir(bin), 0o700); err != nil {
		return "", fmt.Errorf("%w: %w", ErrBuild, err)
	}
	tmp := bin + ".tmp"
	cmd := exec.Command(b.opts.GoCommand, "build", "-o", tmp, importPath)
	cmd.Dir = dir
	cmd.Env = append(append(os.Environ(), "CGO_ENABLED=0"), b.opts.Env...)
	var out bytes.Buffer
	cmd.Stdout = &out
	cmd.Stderr = &out
	image := KoPrefix + importPath
	start := time.Now()
	b.log.Info("building image", "image", image, "dir", dir)
	stop := make(chan struct{})
	ticking := make(chan struct{})
	go func() { // a first build of a big program (or a cold module cache) takes a while: say it is moving
		defer close(ticking)
		t := time.NewTicker(b.opts.ProgressInterval)
		defer t.Stop()
		for {
			select {
			case <-stop:
				return
			case <-t.C:
				b.log.Info("still building image", "image", image, "elapsed", time.Since(start).Round(time.Second).String())
			}
		}
	}()
	err := cmd.Run()
	close(stop)
	<-ticking
	if err != nil {
		_ = os.Remove(tmp)
		return "", fmt.Errorf("%w: go build %s (in %s): %w: %s", ErrBuild, importPath, dir, err, strings.TrimSpace(out.String()))
	}
	if err := os.Rename(tmp, bin); err != nil {
		return "", fmt.Errorf("%w: %w", ErrBuild, err)
	}
	b.log.Info("built image", "image", image, "binary", bin, "duration", time.Since(start).Round(time.Millisecond).String())
	return bin, nil
}

// Bounds on the non-Go files hashed into a build key.
const (
	maxEmbedKeyFile  = 8 << 20
	maxEmbedKeyFiles = 10000
)

// packageDir maps an import path inside the module rooted at root to its directory.
func packageDir(root, importPath string) (string, bool) {
	gomod, err := os.ReadFile(filepath.Join(root, "go.mod"))
	if err != nil {
		return "", false
	}
	mod := modulePath(gomod)
	switch {
	case mod == "":
		return "", false
	case importPath == mod:
		return root, true
	case strings.HasPrefix(importPath, mod+"/"):
		return filepath.Join(root, filepath.FromSlash(strings.TrimPrefix(importPath, mod+"/"))), true
	case strings.HasPrefix(importPath, "./") || strings.HasPrefix(importPath, "../"):
		return "", false // relative paths are resolved against the build directory, not known here
	}
	return "", false
}

// modulePath reads the module directive of a go.mod file ("" if absent).
func modulePath(gomod []byte) string {
	for line := range strings.Lines(string(gomod)) {
		line = strings.TrimSpace(line)
		rest, ok := strings.CutPrefix(line, "module")
		if !ok || (rest != "" && rest[0] != ' ' && rest[0] != '\t' && rest[0] != '"') {
			continue
		}
		if i := strings.Index(rest, "//"); i >= 0 {
			rest = rest[:i]
		}
		return strings.Trim(strings.TrimSpace(rest), `"`)
	}
	return ""
}

// moduleRoot walks up from dir to the directory holding go.mod.
func moduleRoot(dir string) (string, error) {
	for d := dir; ; {
		if _, err := os.Stat(filepath.Join(d, "go.mod")); err == nil {
			return d, nil
		}
		parent := filepath.Dir(d)
		if parent == d {
			return "", fmt.Errorf("no go.mod in %s or any parent (ko:// images are built inside a Go module)", dir)
		}
		d = parent
	}
}

// sourceFile reports whether a file is Go build input anywhere in the module. Other files count only inside the
// main package's directory (where //go:embed usually points); see contentKey.
func sourceFile(name string) bool {
	switch name {
	case "go.mod", "go.sum", "go.work", "go.work.sum":
		return true
	}
	switch filepath.Ext(name) {
	case ".go", ".s", ".c", ".h", ".cc", ".cpp", ".hh", ".syso":
		return true
	}
	return false
}

// contentKey hashes the import path and the module's build inputs. Directories the go tool ignores (hidden, "_"
// prefixed, testdata) and nested modules are skipped.
func contentKey(root, importPath string) (string, error) {
	var files []string
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			if p == root {
				return nil
			}
			n := d.Name()
			if strings.HasPrefix(n, ".") || strings.HasPrefix(n, "_") || n == "testdata" {
				return filepath.SkipDir
			}
			if _, err := os.Stat(filepath.Join(p, "go.mod")); err == nil {
				return filepath.SkipDir
			}
			return nil
		}
		if d.Type().IsRegular() && sourceFile(d.Name()) {
			files = append(files, p)
		}
		return nil
	})
	if err != nil {
		return "", err
	}
	// Files the main package may //go:embed (any file in its directory tree) are part of the key too. Large files
	// and very many files are left out, so a data directory that happens to sit there (a broker's commit log)
	// cannot make every build hash gigabytes.
	if dir, ok := packageDir(root, importPath); ok {
		n := 0
		_ = filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
			if err != nil {
				return nil // the go tool reports a missing package better than we can
			}
			if d.IsDir() {
				if p != dir && (strings.HasPrefix(d.Name(), ".") || strings.HasPrefix(d.Name(), "_")) {
					return filepath.SkipDir
				}
				return nil
			}
			if !d.Type().IsRegular() || sourceFile(d.Name()) {
				return nil
			}
			if info, err := d.Info(); err != nil || info.Size() > maxEmbedKeyFile {
				return nil
			}
			if n++; n > maxEmbedKeyFiles {
				return filepath.SkipAll
			}
			files = append(files, p)
			return nil
		})
	}
	sort.Strings(files)
	files = slices.Compact(files)
	h := sha256.New()
	fmt.Fprintf(h, "import %s\n", importPath)
	for _, f := range files {
		rel, _ := filepath.Rel(root, f)
		fh, err := os.Open(f)
		if err != nil {
			return "", err
		}
		st, err := fh.Stat()
		if err != nil {
			fh.Close()
			return "", err
		}
		// The length prefix keeps file boundaries unambiguous.
		fmt.Fprintf(h, "file %s %d\n", rel, st.Size())
		_, err = io.Copy(h, fh)
		fh.Close()
		if err != nil {
			return "", err
		}
	}
	return hex.EncodeToString(h.Sum(nil))[:32], nil
}
