package cli

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/tide-run/tide/controlplane/client"
	"github.com/tide-run/tide/internal/promtest"
	"github.com/tide-run/tide/server"
)

// freePorts are the `tide up` flags that put every listener on a free port, so tests never depend on (or collide
// over) the default ports 8090, 8080, 9876 and 10911 when test binaries run in parallel.
var freePorts = []string{"--api-port", "0", "--gateway-port", "0", "--namesrv-port", "0", "--broker-port", "0", "--grpc-port", "0"}

func TestUpPortInUse(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	port := l.Addr().(*net.TCPAddr).Port
	var out, errOut bytes.Buffer
	args := append([]string{"up", "--data-dir", t.TempDir()}, freePorts...)
	code := Main(append(args, "--api-port", fmt.Sprint(port)), strings.NewReader(""), &out, &errOut)
	want := fmt.Sprintf("error: --api-port %d: address already in use\n", port)
	if code != 1 || errOut.String() != want {
		t.Fatalf("exit %d, stderr %q, want %q", code, errOut.String(), want)
	}
}

// buildTide compiles the real binary once per test that needs it.
func buildTide(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "tide")
	cmd := exec.Command("go", "build", "-o", bin, "github.com/tide-run/tide/cmd/tide")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

type upProcess struct {
	cmd    *exec.Cmd
	url    string
	stderr *syncBuffer
}

// startUp runs `tide up` as a child process and waits for its endpoint lines. Not servertest: the tests that use it
// are about the process (kill -9, SIGTERM, exit status, what `tide up` prints).
func startUp(t *testing.T, bin, dataDir string) *upProcess {
	t.Helper()
	cmd := exec.Command(bin, append([]string{"up", "--data-dir", dataDir}, freePorts...)...)
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	p := &upProcess{cmd: cmd, stderr: &syncBuffer{}}
	cmd.Stderr = p.stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if cmd.ProcessState == nil {
			_ = cmd.Process.Kill()
			_ = cmd.Wait()
		}
	})
	lines := make(chan string)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			lines <- sc.Text()
		}
		close(lines)
		_, _ = io.Copy(io.Discard, stdout)
	}()
	deadline := time.After(30 * time.Second)
	var metricsURL string
	for {
		select {
		case line, ok := <-lines:
			if !ok {
				t.Fatalf("tide up exited before ready; stderr:\n%s", p.stderr.String())
			}
			if u, found := strings.CutPrefix(line, "api: "); found {
				p.url = u
			}
			if u, found := strings.CutPrefix(line, "metrics: "); found {
				metricsURL = u
			}
			if line == "ready" {
				if p.url == "" {
					t.Fatal("no api line before ready")
				}
				// The printed metrics URL serves Prometheus' format from the real binary.
				if metricsURL != p.url+"/metrics" {
					t.Errorf("metrics line %q, want %s/metrics", metricsURL, p.url)
				} else if f := promtest.MustScrape(t, metricsURL, nil); !f.Has("process_resident_memory_bytes", nil) || !f.Has("rocketmq_storage_size", nil) {
					t.Errorf("tide up's /metrics lacks process or broker metrics: %v", f.Names())
				}
				go func() {
					for range lines {
					}
				}()
				return p
			}
		case <-deadline:
			t.Fatalf("tide up not ready in 30s; stderr:\n%s", p.stderr.String())
		}
	}
}

func burstObject(name string) *unstructured.Unstructured {
	return &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "v1", "kind": "ConfigMap",
		"metadata": map[string]any{"name": name, "namespace": "default"},
		"data":     map[string]any{"name": name, "payload": strings.Repeat(name, 200)},
	}}
}

// TestKill9DuringApplyBurst kills `tide up` with SIGKILL while several clients create objects, restarts it on the
// same data dir and checks that every acknowledged object is there, whole, and that nothing is half-written.
func TestKill9DuringApplyBurst(t *testing.T) {
	bin := buildTide(t)
	dataDir := t.TempDir()
	p := startUp(t, bin, dataDir)
	c, err := client.New(p.url, nil)
	if err != nil {
		t.Fatal(err)
	}
	k := client.Kind{Version: "v1", Kind: "ConfigMap", Plural: "configmaps", Singular: "configmap", Namespaced: true}

	const writers = 4
	var mu sync.Mutex
	acked := map[string]bool{}
	enough := make(chan struct{})
	var once sync.Once
	var wg sync.WaitGroup
	for w := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; ; i++ {
				name := fmt.Sprintf("burst-%d-%d", w, i)
				ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
				_, _, err := c.Create(ctx, k, burstObject(name))
				cancel()
				if err != nil {
					return // the server is gone
				}
				mu.Lock()
				acked[name] = true
				if len(acked) >= 150 {
					once.Do(func() { close(enough) })
				}
				mu.Unlock()
			}
		}()
	}
	select {
	case <-enough:
	case <-time.After(60 * time.Second):
		t.Fatal("burst too slow")
	}
	if err := p.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	_ = p.cmd.Wait()
	wg.Wait()
	mu.Lock()
	n := len(acked)
	mu.Unlock()

	p2 := startUp(t, bin, dataDir)
	c2, _ := client.New(p2.url, nil)
	objs, _, err := c2.List(context.Background(), k, "default", client.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	present := map[string]bool{}
	var maxRV uint64
	for _, o := range objs {
		if rv, _ := strconv.ParseUint(o.GetResourceVersion(), 10, 64); rv > maxRV {
			maxRV = rv
		}
		name := o.GetName()
		data, _, _ := unstructured.NestedStringMap(o.Object, "data")
		if data["name"] != name || data["payload"] != strings.Repeat(name, 200) || o.GetUID() == "" {
			t.Errorf("object %s is not whole: %v", name, o.Object)
		}
		present[name] = true
	}
	for name := range acked {
		if !present[name] {
			t.Errorf("acknowledged %s lost", name)
		}
	}
	t.Logf("%d acknowledged before kill -9, %d present after restart", n, len(objs))

	// The restarted platform still takes writes, and SIGTERM stops it cleanly (exit 0).
	after, _, err := c2.Create(context.Background(), k, burstObject("after-restart"))
	if err != nil {
		t.Fatal(err)
	}
	if rv, _ := strconv.ParseUint(after.GetResourceVersion(), 10, 64); rv <= maxRV {
		t.Fatalf("resourceVersion went backwards after the crash: %d <= %d", rv, maxRV)
	}
	if err := p2.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if err := p2.cmd.Wait(); err != nil {
		t.Fatalf("graceful shutdown: %v; stderr:\n%s", err, p2.stderr.String())
	}
	if !strings.Contains(p2.stderr.String(), "msg=stopped") {
		t.Errorf("no stop log line:\n%s", p2.stderr.String())
	}
	_ = os.Remove(bin)
}

func TestUpDataDirInUse(t *testing.T) {
	e := startTide(t, t.TempDir())
	var out, errOut bytes.Buffer
	code := Main(append([]string{"up", "--data-dir", e.dir}, freePorts...), strings.NewReader(""), &out, &errOut)
	if code != 1 || !strings.Contains(errOut.String(), "is another tide using this data dir?") {
		t.Fatalf("exit %d, stderr %q", code, errOut.String())
	}
}

// blockingSub is a subsystem whose Shutdown waits until released, to exercise the second-signal path.
type blockingSub struct{ release chan struct{} }

func (b *blockingSub) Name() string                   { return "slow" }
func (b *blockingSub) Start(context.Context) error    { return nil }
func (b *blockingSub) Ready() error                   { return nil }
func (b *blockingSub) Shutdown(context.Context) error { <-b.release; return nil }

func TestUpSignals(t *testing.T) {
	run := func(t *testing.T, second bool) (exitCode int, out string, err error) {
		sigs := make(chan os.Signal, 2)
		sub := &blockingSub{release: make(chan struct{})}
		exited := make(chan int, 1)
		var stdout syncBuffer
		cmd := newUpCommand(nil)
		cmd.SetOut(&stdout)
		cmd.SetErr(io.Discard)
		cmd.SetContext(context.Background())
		// Not t.TempDir: after a second signal the graceful shutdown (embedded RocketMQ persisting its state) may
		// still be writing to the data dir when the test ends, so removal retries until it succeeds.
		dir, err := os.MkdirTemp("", "tide-up-signals-")
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() {
			eventually(t, 10*time.Second, func() error { return os.RemoveAll(dir) })
		})
		// The platform is started by runUp itself, not servertest: runUp's signal handling is what is tested.
		opts := server.Options{APIPort: 0, DataDir: dir, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))}
		done := make(chan error, 1)
		go func() {
			done <- runUp(cmd, opts, upHooks{signals: sigs, exit: func(c int) { exited <- c },
				build: func(o server.Options) (*server.Server, error) {
					s, err := server.New(o)
					if err == nil {
						s.AddSubsystem(sub)
					}
					return s, err
				}})
		}()
		eventually(t, 10*time.Second, func() error {
			if !strings.Contains(stdout.String(), "ready\n") {
				return fmt.Errorf("output %q", stdout.String())
			}
			return nil
		})
		sigs <- syscall.SIGTERM
		if second {
			sigs <- syscall.SIGINT
			select {
			case exitCode = <-exited:
			case <-time.After(10 * time.Second):
				t.Fatal("second signal did not exit")
			}
		}
		close(sub.release)
		select {
		case err = <-done:
		case <-time.After(10 * time.Second):
			t.Fatal("tide up did not return")
		}
		return exitCode, stdout.String(), err
	}
	t.Run("graceful", func(t *testing.T) {
		code, out, err := run(t, false)
		if err != nil || code != 0 || !strings.HasPrefix(out, "api: http://127.0.0.1:") {
			t.Fatalf("err %v code %d out %q", err, code, out)
		}
	})
	t.Run("second signal exits at once", func(t *testing.T) {
		if code, _, _ := run(t, true); code != 130 {
			t.Fatalf("exit code %d", code)
		}
	})
}
