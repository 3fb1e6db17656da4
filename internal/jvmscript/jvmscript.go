package jvmscript

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"
)

// Available reports whether this machine can run the scripts (java and mvn on PATH), and if not, why.
func Available() (bool, string) {
	for _, tool := range []string{"java", "mvn"} {
		if _, err := exec.LookPath(tool); err != nil {
			return false, tool + " not on PATH"
		}
	}
	return true, ""
}

// Require skips the test (or fails it under CI=true, where .ci/run installs a JDK and Maven) when the scripts
// cannot run here. what names the tests in the message ("Apache Kafka tests").
func Require(t testing.TB, what string) {
	t.Helper()
	if ok, why := Available(); !ok {
		if os.Getenv("CI") == "true" {
			t.Fatalf("%s need a JDK 17 and Maven, and CI=true: %s (.ci/run installs them)", what, why)
		}
		t.Skipf("skipping %s: %s (they need a JDK 17 and Maven; .ci/run installs them)", what, why)
	}
}

// Script is the path of test/apache/<name> in this checkout.
func Script(name string) string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Join(filepath.Dir(file), "..", "..", "test", "apache", name)
}

// Process is one running `SCRIPT run DIR`.
type Process struct {
	// Ready holds the fields of the script's ready line.
	Ready map[string]string

	cmd    *exec.Cmd
	stdin  io.WriteCloser
	stderr *lockedBuffer
	done   chan error
}

// Start runs `script run dir` with env added to this process's environment and READY_TIMEOUT set, and returns once
// the script printed its ready line. It fails with the script's stderr when the script exits first or is not ready
// within timeout (plus 30 s for the script's own start).
func Start(script, dir string, env []string, timeout time.Duration) (*Process, error) {
	cmd := exec.Command(script, "run", dir)
	cmd.Env = append(append(os.Environ(), env...), fmt.Sprintf("READY_TIMEOUT=%d", int(timeout.Seconds())))
	setParentDeathSignal(cmd)
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return nil, fmt.Errorf("stdin pipe: %w", err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, fmt.Errorf("stdout pipe: %w", err)
	}
	stderr := &lockedBuffer{}
	cmd.Stderr = stderr
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("run %s: %w", script, err)
	}
	p := &Process{Ready: map[string]string{}, cmd: cmd, stdin: stdin, stderr: stderr, done: make(chan error, 1)}
	ready := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			if line := sc.Text(); strings.HasPrefix(line, "ready ") {
				ready <- line
			}
		}
	}()
	go func() { p.done <- cmd.Wait() }()
	select {
	case line := <-ready:
		for _, f := range strings.Fields(line)[1:] {
			k, v, _ := strings.Cut(f, "=")
			p.Ready[k] = v
		}
		return p, nil
	case err := <-p.done:
		return nil, fmt.Errorf("%s exited before it was ready (%v):\n%s", filepath.Base(script), err, stderr.String())
	case <-time.After(timeout + 30*time.Second):
		killGroup(cmd)
		<-p.done
		return nil, fmt.Errorf("not ready after %s:\n%s", timeout, stderr.String())
	}
}

// Stop closes the script's stdin (it stops its JVMs: SIGTERM, up to 15 s for their shutdown hooks, then a kill)
// and waits for it to exit; after 40 s it kills the script's process group. A second Stop returns at once.
func (p *Process) Stop() error {
	_ = p.stdin.Close()
	select {
	case err := <-p.done:
		p.done <- err
		return nil
	case <-time.After(40 * time.Second):
		killGroup(p.cmd)
		err := <-p.done
		p.done <- err
		return errors.New("the script did not stop its JVMs within 40 s; killed its process group")
	}
}

// Output is what the script wrote on stderr so far.
func (p *Process) Output() string { return p.stderr.String() }

// Continue puts prev (an earlier run's output) in front of this run's, separated by a marker: a restarted server
// keeps its whole story for a failing test's log.
func (p *Process) Continue(prev string) {
	p.stderr.mu.Lock()
	defer p.stderr.mu.Unlock()
	cur := p.stderr.b.String()
	p.stderr.b.Reset()
	p.stderr.b.WriteString(prev + "--- restart ---\n" + cur)
}

// lockedBuffer collects the script's stderr while a test may read it.
type lockedBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}
