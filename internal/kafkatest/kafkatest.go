package kafkatest

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

// Kafka is one running Apache Kafka node (broker and KRaft controller in one JVM).
type Kafka struct {
	// Version is the Apache Kafka release running (pinned in the script).
	Version string
	// Bootstrap is the PLAINTEXT listener's address (host:port).
	Bootstrap string
	// Dir holds the configuration, the log directory (data) and the server log (logs/server.log).
	Dir string

	cmd    *exec.Cmd
	stdin  io.WriteCloser
	stderr *lockedBuffer
	done   chan error
}

// Available reports whether this machine can run Apache Kafka (java and mvn on PATH), and if not, why.
func Available() (bool, string) {
	for _, tool := range []string{"java", "mvn"} {
		if _, err := exec.LookPath(tool); err != nil {
			return false, tool + " not on PATH"
		}
	}
	return true, ""
}

// Require skips the test (or fails it under CI=true) when Apache Kafka cannot run here.
func Require(t testing.TB) {
	t.Helper()
	if ok, why := Available(); !ok {
		if os.Getenv("CI") == "true" {
			t.Fatalf("Apache Kafka tests need a JDK 17 and Maven, and CI=true: %s (.ci/run installs them)", why)
		}
		t.Skipf("skipping Apache Kafka test: %s (needs a JDK 17 and Maven; .ci/run installs them)", why)
	}
}

// Script returns the path of test/apache/kafka in this checkout.
func Script() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Join(filepath.Dir(file), "..", "..", "test", "apache", "kafka")
}

// Start runs Apache Kafka on free loopback ports for the rest of the test and returns it. It fails the test with
// the script's output if Kafka is not serving within four minutes.
func Start(t testing.TB) *Kafka {
	t.Helper()
	Require(t)
	dir := t.TempDir()
	var k *Kafka
	var err error
	// A port picked free can still be taken before the JVM binds it: try again on other ports.
	for attempt := range 3 {
		port, cport := freePort(), freePort()
		k, err = startOn(filepath.Join(dir, fmt.Sprint(attempt)), port, cport, 4*time.Minute)
		if err == nil || !strings.Contains(err.Error(), "in use") {
			break
		}
	}
	if err != nil {
		t.Fatalf("starting Apache Kafka: %v", err)
	}
	t.Cleanup(func() {
		if err := k.Stop(); err != nil {
			t.Errorf("stopping Apache Kafka: %v", err)
		}
		if t.Failed() {
			t.Logf("Apache Kafka's log is %s/logs/server.log (removed with the test's temp dir); script output:\n%s", k.Dir, k.stderr.String())
		}
	})
	return k
}

func startOn(dir string, port, cport int, timeout time.Duration) (*Kafka, error) {
	cmd := exec.Command(Script(), "run", dir)
	cmd.Env = append(os.Environ(), fmt.Sprintf("KAFKA_PORT=%d", port), fmt.Sprintf("KAFKA_CONTROLLER_PORT=%d", cport),
		fmt.Sprintf("READY_TIMEOUT=%d", int(timeout.Seconds())))
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
		return nil, fmt.Errorf("run %s: %w", Script(), err)
	}
	k := &Kafka{Dir: dir, cmd: cmd, stdin: stdin, stderr: stderr, done: make(chan error, 1)}
	ready := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			if line := sc.Text(); strings.HasPrefix(line, "ready ") {
				ready <- line
			}
		}
	}()
	go func() { k.done <- cmd.Wait() }()
	select {
	case line := <-ready:
		for _, f := range strings.Fields(line)[1:] {
			key, v, _ := strings.Cut(f, "=")
			switch key {
			case "version":
				k.Version = v
			case "bootstrap":
				k.Bootstrap = v
			}
		}
		return k, nil
	case err := <-k.done:
		return nil, fmt.Errorf("the script exited before Apache Kafka was ready (%v):\n%s", err, stderr.String())
	case <-time.After(timeout + 30*time.Second):
		killGroup(cmd)
		<-k.done
		return nil, fmt.Errorf("not ready after %s:\n%s", timeout, stderr.String())
	}
}

// Stop stops the JVM (SIGTERM, up to 15 s for its shutdown, then SIGKILL) and waits for it to be gone.
func (k *Kafka) Stop() error {
	_ = k.stdin.Close()
	select {
	case err := <-k.done:
		k.done <- err // a second Stop returns at once
		return nil
	case <-time.After(40 * time.Second):
		killGroup(k.cmd)
		err := <-k.done
		k.done <- err
		return errors.New("the script did not stop the JVM within 40 s; killed its process group")
	}
}

// Client returns a franz-go client (no group) on the node, closed with the test.
func (k *Kafka) Client(t testing.TB, opts ...kgo.Opt) *kgo.Client {
	t.Helper()
	cl, err := kgo.NewClient(append([]kgo.Opt{kgo.SeedBrokers(k.Bootstrap)}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cl.Close)
	return cl
}

// CreateTopic creates topic with the given number of partitions.
func (k *Kafka) CreateTopic(t testing.TB, topic string, partitions int32) {
	t.Helper()
	adm := kadm.NewClient(k.Client(t))
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	resp, err := adm.CreateTopic(ctx, partitions, 1, nil, topic)
	if err == nil {
		err = resp.Err
	}
	if err != nil {
		t.Fatalf("create topic %s: %v", topic, err)
	}
}

// freePort picks a free loopback port below the ephemeral range, so a server another test starts on port 0
// cannot take it between the pick and the JVM's bind.
func freePort() int {
	for range 200 {
		p := 20000 + rand.IntN(12000)
		l, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", p))
		if err != nil {
			continue
		}
		l.Close()
		return p
	}
	return 0
}

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
