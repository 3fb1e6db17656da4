package hello_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// TestReadmeUsingIt runs every command of the README's "Using it" block, as written, against a real `tide up`
// (the binary the block's own `go build` line produces, every listener on a free port, a temporary data dir). The
// only rewrites are the ones a second terminal would not need: `./tide` becomes the built binary with `--server`
// pointed at this `tide up`, and the default gateway port 8080 becomes the one it bound. Each command must exit 0;
// the applies must print what their comments promise, and the hello Service must end Ready and answer through the
// gateway. A README that names files examples/hello/ lacks, or an example that stops working, fails here.
func TestReadmeUsingIt(t *testing.T) {
	if _, err := exec.LookPath("curl"); err != nil {
		t.Fatalf("the README's block uses curl: %v", err)
	}
	root, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	readme, err := os.ReadFile(filepath.Join(root, "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	lines := usingItCommands(t, string(readme))

	// The block's promises this test checks beyond exit codes; if the README stops saying them, this test must be
	// rewritten with it rather than silently check less.
	need := map[string]bool{
		"go build -o tide ./cmd/tide":                    false,
		"./tide apply -f examples/hello/service.yaml ":   false,
		"./tide apply -f examples/hello/ ":               false,
		"./tide wait ksvc hello --for=condition=Ready":   false,
		"curl -sf http://hello.default.localhost:8080/ ": false,
		"./tide delete ksvc hello":                       false,
	}
	for _, l := range lines {
		for prefix := range need {
			if strings.HasPrefix(l+" ", prefix) {
				need[prefix] = true
			}
		}
	}
	for prefix, found := range need {
		if !found {
			t.Errorf("README's Using it block has no command starting %q", prefix)
		}
	}
	if t.Failed() {
		t.FailNow()
	}

	dir := t.TempDir()
	bin := filepath.Join(dir, "tide")
	if !strings.HasPrefix(lines[0], "go build -o tide ") {
		t.Fatalf("the block must start by building tide; first line %q", lines[0])
	}
	run(t, root, strings.Replace(lines[0], "-o tide", "-o "+shellQuote(bin), 1), 5*time.Minute)
	up := startUp(t, bin, filepath.Join(dir, "data"))
	gw, err := url.Parse(up.gateway)
	if err != nil {
		t.Fatal(err)
	}

	for _, line := range lines[1:] {
		cmd := strings.ReplaceAll(line, "./tide ", shellQuote(bin)+" --server "+shellQuote(up.api)+" ")
		cmd = strings.ReplaceAll(cmd, ":8080", ":"+gw.Port())
		out := run(t, root, cmd, 4*time.Minute)
		switch {
		case strings.HasPrefix(line, "./tide apply -f examples/hello/service.yaml "):
			for _, want := range []string{"service.serving.knative.dev/hello created", "broker.eventing.knative.dev/default created",
				"trigger.eventing.knative.dev/hello created"} {
				if !strings.Contains(out, want) {
					t.Errorf("%s: no %q in\n%s", line, want, out)
				}
			}
		case strings.HasPrefix(line, "./tide apply -f examples/hello/ "):
			if strings.Count(out, " unchanged") != 3 {
				t.Errorf("%s: want the same three objects unchanged:\n%s", line, out)
			}
		case strings.HasPrefix(line, "./tide wait ksvc hello "):
			checkServiceAnswers(t, up, gw.Host)
		case strings.HasPrefix(line, "curl -sf http://hello.default.localhost:8080/"):
			if out != "Hello World!\n" {
				t.Errorf("%s: answered %q", line, out)
			}
		case strings.HasPrefix(line, "curl -sf http://127.0.0.1:8080/default/default "):
			waitDelivered(t, up, "hello", 1)
		case strings.HasPrefix(line, "./tide logs hello"):
			// The instance's output reaches tide through a pipe, a moment after the delivery was counted: run the
			// same command again until the line is there (with a deadline).
			const want = `event 1 of type com.example.greeting from /readme: {"name":"tide"}`
			for deadline := time.Now().Add(15 * time.Second); !strings.Contains(out, want) && time.Now().Before(deadline); {
				time.Sleep(200 * time.Millisecond)
				out = run(t, root, cmd, time.Minute)
			}
			if !strings.Contains(out, want) {
				t.Errorf("%s: the delivered event is not in\n%s", line, out)
			}
		}
	}
	if t.Failed() {
		t.Logf("tide up stderr:\n%s", up.stderr.String())
	}
}

// usingItCommands returns the command lines of the first sh block under "## Using it", in order.
func usingItCommands(t *testing.T, readme string) []string {
	t.Helper()
	_, section, ok := strings.Cut(readme, "\n## Using it\n")
	if !ok {
		t.Fatal(`README has no "## Using it" section`)
	}
	section, _, _ = strings.Cut(section, "\n## ")
	_, block, ok := strings.Cut(section, "```sh\n")
	if !ok {
		t.Fatal(`README's "Using it" section has no sh block`)
	}
	block, _, ok = strings.Cut(block, "```")
	if !ok {
		t.Fatal("unterminated sh block")
	}
	var lines []string
	for _, l := range strings.Split(block, "\n") {
		if l = strings.TrimSpace(l); l != "" && !strings.HasPrefix(l, "#") {
			lines = append(lines, l)
		}
	}
	if len(lines) < 2 {
		t.Fatalf("the block has %d commands", len(lines))
	}
	return lines
}

// run runs one line with sh in dir (the README's commands are run from the repository root) and fails the test
// unless it exits 0 within timeout.
func run(t *testing.T, dir, line string, timeout time.Duration) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, "sh", "-c", line)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "TIDE_SERVER=") // only --server points the CLI
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	start := time.Now()
	err := cmd.Run()
	t.Logf("$ %s  (%v)\n%s%s", line, time.Since(start).Round(time.Millisecond), stdout.String(), stderr.String())
	if err != nil {
		t.Fatalf("%s: %v\nstdout:\n%s\nstderr:\n%s", line, err, stdout.String(), stderr.String())
	}
	return stdout.String()
}

// checkServiceAnswers asserts what `tide wait` promised: the Service is Ready with a URL, and the gateway routes its
// host to an instance that answers.
func checkServiceAnswers(t *testing.T, up *upProcess, gatewayHost string) {
	t.Helper()
	resp, err := http.Get(up.api + "/apis/serving.knative.dev/v1/namespaces/default/services/hello")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var ksvc struct {
		Status struct {
			URL        string `json:"url"`
			Conditions []struct{ Type, Status string }
		} `json:"status"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&ksvc); err != nil {
		t.Fatal(err)
	}
	ready := false
	for _, c := range ksvc.Status.Conditions {
		ready = ready || (c.Type == "Ready" && c.Status == "True")
	}
	u, err := url.Parse(ksvc.Status.URL)
	if !ready || err != nil || u.Hostname() != "hello.default.localhost" {
		t.Fatalf("after wait: status %+v", ksvc.Status)
	}
	req, _ := http.NewRequest("GET", "http://"+gatewayHost+"/", nil)
	req.Host = u.Hostname()
	r, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(r.Body)
	r.Body.Close()
	if r.StatusCode != 200 || string(body) != "Hello World!\n" {
		t.Fatalf("GET %s via the gateway: %d %q", u.Hostname(), r.StatusCode, body)
	}
}

// waitDelivered polls the Trigger's status until it counts n events delivered to its subscriber (the event the
// README's curl sent went Broker -> Trigger -> hello), or fails after 30 s.
func waitDelivered(t *testing.T, up *upProcess, trigger string, n int64) {
	t.Helper()
	var last string
	for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
		resp, err := http.Get(up.api + "/apis/eventing.knative.dev/v1/namespaces/default/triggers/" + trigger)
		if err != nil {
			t.Fatal(err)
		}
		var tr struct {
			Status struct {
				DeliveryStats struct {
					Delivered int64 `json:"delivered"`
				} `json:"deliveryStats"`
			} `json:"status"`
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		last = string(b)
		if json.Unmarshal(b, &tr) == nil && tr.Status.DeliveryStats.Delivered >= n {
			return
		}
	}
	t.Fatalf("trigger %s: not %d delivered within 30s: %s", trigger, n, last)
}

func shellQuote(s string) string { return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'" }

type upProcess struct {
	api, gateway string
	stderr       *syncBuffer
}

// startUp runs `tide up` on free ports and returns once it printed "ready"; cleanup stops it with SIGINT, as Ctrl-C
// in the first terminal would.
func startUp(t *testing.T, bin, dataDir string) *upProcess {
	t.Helper()
	cmd := exec.Command(bin, "up", "--data-dir", dataDir,
		"--api-port", "0", "--gateway-port", "0", "--namesrv-port", "0", "--broker-port", "0", "--grpc-port", "0")
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	p := &upProcess{stderr: &syncBuffer{}}
	cmd.Stderr = p.stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Signal(os.Interrupt)
		done := make(chan struct{})
		go func() { _ = cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(30 * time.Second):
			_ = cmd.Process.Kill()
			<-done
			t.Errorf("tide up did not stop within 30s of SIGINT")
		}
	})
	lines := make(chan string)
	go func() {
		defer close(lines)
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			lines <- sc.Text()
		}
	}()
	deadline := time.After(60 * time.Second)
	for {
		select {
		case line, ok := <-lines:
			if !ok {
				t.Fatalf("tide up exited before ready; stderr:\n%s", p.stderr.String())
			}
			if u, found := strings.CutPrefix(line, "api: "); found {
				p.api = u
			}
			if u, found := strings.CutPrefix(line, "gateway: "); found {
				p.gateway = u
			}
			if line == "ready" {
				if p.api == "" || p.gateway == "" {
					t.Fatalf("no api or gateway line before ready")
				}
				if _, _, err := net.SplitHostPort(strings.TrimPrefix(p.gateway, "http://")); err != nil {
					t.Fatalf("gateway %q: %v", p.gateway, err)
				}
				go func() {
					for range lines {
					}
				}()
				return p
			}
		case <-deadline:
			t.Fatalf("tide up not ready in 60s; stderr:\n%s", p.stderr.String())
		}
	}
}

// syncBuffer is a bytes.Buffer safe for the process's stderr writer and the test reading it.
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
