package apachetest

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
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tide-run/tide/mq/admin"
)

// Cluster is one running Apache RocketMQ: a name server and a proxy in local mode (the broker runs in the proxy's JVM).
type Cluster struct {
	// Version is the Apache RocketMQ release running (pinned in the script).
	Version string
	// NameServer is the name server's address (host:port) for 4.x remoting clients.
	NameServer string
	// Broker is the broker's remoting address.
	Broker string
	// GRPC is the proxy's 5.x gRPC endpoint (TLS or plaintext, Apache's proxy serves both on one port).
	GRPC string
	// ProxyRemoting is the proxy's remoting endpoint (4.x clients through the proxy).
	ProxyRemoting string
	// Dir holds the cluster's configuration, store and logs (home/logs/rocketmqlogs).
	Dir string

	// ports, opts and timeout are what the cluster was started with; Restart starts it again on them.
	ports   portSet
	opts    Options
	timeout time.Duration

	cmd    *exec.Cmd
	stdin  io.WriteCloser
	stderr *lockedBuffer
	done   chan error
}

// Available reports whether this machine can run Apache RocketMQ (java and mvn on PATH), and if not, why.
func Available() (bool, string) {
	for _, tool := range []string{"java", "mvn"} {
		if _, err := exec.LookPath(tool); err != nil {
			return false, tool + " not on PATH"
		}
	}
	return true, ""
}

// Require skips the test (or fails it under CI=true) when Apache RocketMQ cannot run here.
func Require(t testing.TB) {
	t.Helper()
	if ok, why := Available(); !ok {
		if os.Getenv("CI") == "true" {
			t.Fatalf("Apache RocketMQ interop tests need a JDK 17 and Maven, and CI=true: %s (.ci/run installs them)", why)
		}
		t.Skipf("skipping Apache RocketMQ interop test: %s (needs a JDK 17 and Maven; .ci/run installs them)", why)
	}
}

// Script returns the path of test/apache/rocketmq in this checkout.
func Script() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Join(filepath.Dir(file), "..", "..", "test", "apache", "rocketmq")
}

// Start runs Apache RocketMQ on free loopback ports for the rest of the test (or of the parent test, if t is the
// top-level test of a group of subtests) and returns its addresses. It fails the test with the cluster's output if it
// is not serving within the timeout.
func Start(t testing.TB) *Cluster { return StartWith(t, Options{}) }

// Options tune a cluster for a test.
type Options struct {
	// BrokerConf holds broker.conf lines (key=value) added to the script's defaults, e.g. a shorter
	// transactionCheckInterval.
	BrokerConf []string
	// JavaOpts, when set, replace the script's small-heap, C1-only JVM tuning (benchmarks give Apache a real heap
	// and the full JIT).
	JavaOpts []string
}

// Launch runs Apache RocketMQ in dir outside a test (the benchmark's apache peer): like Start, but the caller
// stops it with Stop. timeout bounds the start.
func Launch(dir string, timeout time.Duration, opts Options) (*Cluster, error) {
	if ok, why := Available(); !ok {
		return nil, fmt.Errorf("Apache RocketMQ needs a JDK 17 and Maven: %s", why)
	}
	return start(dir, timeout, opts)
}

// StartWith is Start with options.
func StartWith(t testing.TB, opts Options) *Cluster {
	t.Helper()
	Require(t)
	c, err := start(t.TempDir(), 4*time.Minute, opts)
	if err != nil {
		t.Fatalf("starting Apache RocketMQ: %v", err)
	}
	t.Cleanup(func() {
		if err := c.Stop(); err != nil {
			t.Errorf("stopping Apache RocketMQ: %v", err)
		}
		if t.Failed() {
			t.Logf("Apache RocketMQ logs are in %s/home/logs/rocketmqlogs (removed with the test's temp dir); script output:\n%s",
				c.Dir, c.stderr.String())
		}
	})
	return c
}

func start(dir string, timeout time.Duration, opts Options) (*Cluster, error) {
	var lastErr error
	// A port picked free can still be taken before the JVM binds it (by another test's server): try again on
	// other ports, in a fresh directory.
	for attempt := range 3 {
		ports, err := freePorts()
		if err != nil {
			return nil, err
		}
		c, err := startOn(filepath.Join(dir, fmt.Sprint(attempt)), timeout, opts, ports)
		if err == nil {
			return c, nil
		}
		lastErr = err
		if !strings.Contains(err.Error(), "Address already in use") && !strings.Contains(err.Error(), "is in use") {
			break
		}
	}
	return nil, lastErr
}

func startOn(dir string, timeout time.Duration, opts Options, ports portSet) (*Cluster, error) {
	cmd := exec.Command(Script(), "run", dir)
	cmd.Env = append(os.Environ(),
		fmt.Sprintf("NAMESRV_PORT=%d", ports.namesrv),
		fmt.Sprintf("BROKER_PORT=%d", ports.broker),
		fmt.Sprintf("PROXY_GRPC_PORT=%d", ports.grpc),
		fmt.Sprintf("PROXY_REMOTING_PORT=%d", ports.remoting),
		fmt.Sprintf("READY_TIMEOUT=%d", int(timeout.Seconds())),
		"EXTRA_BROKER_CONF="+strings.Join(opts.BrokerConf, "\n"),
		"JAVA_OPTS="+strings.Join(opts.JavaOpts, " "),
	)
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
	c := &Cluster{Dir: dir, ports: ports, opts: opts, timeout: timeout, cmd: cmd, stdin: stdin, stderr: stderr, done: make(chan error, 1)}
	ready := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			if line := sc.Text(); strings.HasPrefix(line, "ready ") {
				ready <- line
			}
		}
	}()
	go func() { c.done <- cmd.Wait() }()
	select {
	case line := <-ready:
		for _, f := range strings.Fields(line)[1:] {
			k, v, _ := strings.Cut(f, "=")
			switch k {
			case "version":
				c.Version = v
			case "namesrv":
				c.NameServer = v
			case "broker":
				c.Broker = v
			case "grpc":
				c.GRPC = v
			case "proxy-remoting":
				c.ProxyRemoting = v
			}
		}
		// The broker registers with the name server in the background: until it has, clients find no route and
		// admin tools no broker. Serving means listed.
		if err := waitRegistered(c.NameServer, c.Broker, time.Minute); err != nil {
			_ = c.Stop()
			return nil, fmt.Errorf("%w:\n%s", err, stderr.String())
		}
		return c, nil
	case err := <-c.done:
		return nil, fmt.Errorf("the script exited before Apache RocketMQ was ready (%v):\n%s", err, stderr.String())
	case <-time.After(timeout + 30*time.Second):
		killGroup(cmd)
		<-c.done
		return nil, fmt.Errorf("not ready after %s:\n%s", timeout, stderr.String())
	}
}

// Stop stops the JVMs (the script sends SIGTERM, waits up to 15 s for their shutdown hooks, then kills) and waits
// for them to be gone.
func (c *Cluster) Stop() error {
	_ = c.stdin.Close()
	select {
	case err := <-c.done:
		c.done <- err // a second Stop returns at once
		return nil
	case <-time.After(40 * time.Second):
		killGroup(c.cmd)
		err := <-c.done
		c.done <- err
		return errors.New("the script did not stop the JVMs within 40 s; killed its process group")
	}
}

// Restart stops the JVMs (as Stop does) and starts them again on the same ports and the same directory, so the
// store (topics, messages, consumer offsets, under Dir/store) survives, and returns once the broker is registered
// with the name server again: what a client sees when the whole cluster restarts. The addresses do not change. A
// port taken meanwhile by someone else is an error (Restart does not move to other ports: clients would not find
// it). Not safe to call concurrently with Stop or another Restart.
func (c *Cluster) Restart() error {
	if err := c.Stop(); err != nil {
		return fmt.Errorf("restart: %w", err)
	}
	n, err := startOn(c.Dir, c.timeout, c.opts, c.ports)
	if err != nil {
		return fmt.Errorf("restart on the same ports: %w", err)
	}
	// The previous script's output stays in front of the new one's for a failing test's log.
	prev := c.stderr.String()
	n.stderr.mu.Lock()
	cur := n.stderr.b.String()
	n.stderr.b.Reset()
	n.stderr.b.WriteString(prev + "--- restart ---\n" + cur)
	n.stderr.mu.Unlock()
	c.cmd, c.stdin, c.stderr, c.done = n.cmd, n.stdin, n.stderr, n.done
	return nil
}

// waitRegistered polls the name server's cluster info until it lists broker as a master.
func waitRegistered(nameServer, broker string, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		masters, err := admin.MasterBrokers(ctx, []string{nameServer})
		cancel()
		if err == nil && slices.Contains(masters, broker) {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("the broker %s did not register with the name server %s within %s (last: %v %v)", broker, nameServer, timeout, masters, err)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

type portSet struct{ namesrv, broker, grpc, remoting int }

// freePorts picks free loopback ports below the kernel's ephemeral range (32768 and up on Linux by default), so a
// server that other tests start on port 0 cannot take one between the pick and the JVM's bind. The broker needs
// three: its port, port-2 (Apache's "fast" channel) and port+1 (HA).
func freePorts() (portSet, error) {
	taken := map[int]bool{}
	// pick returns a port p such that p+lo .. p+hi are all free.
	pick := func(lo, hi int) (int, error) {
		for range 200 {
			p := 20000 + rand.IntN(12000)
			ok := true
			for q := p + lo; q <= p+hi; q++ {
				if taken[q] || !portFree(q) {
					ok = false
					break
				}
			}
			if ok {
				for q := p + lo; q <= p+hi; q++ {
					taken[q] = true
				}
				return p, nil
			}
		}
		return 0, errors.New("no free ports between 20000 and 32000 after 200 tries")
	}
	var ps portSet
	var err error
	if ps.broker, err = pick(-2, 1); err != nil {
		return ps, err
	}
	for _, p := range []*int{&ps.namesrv, &ps.grpc, &ps.remoting} {
		if *p, err = pick(0, 0); err != nil {
			return ps, err
		}
	}
	return ps, nil
}

func portFree(p int) bool {
	l, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", p))
	if err != nil {
		return false
	}
	l.Close()
	// The JVM binds the wildcard address: check it too.
	l, err = net.Listen("tcp", fmt.Sprintf(":%d", p))
	if err != nil {
		return false
	}
	l.Close()
	return true
}

// lockedBuffer collects the script's stderr while the test may read it.
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

// PIDs returns the process ids of the cluster's JVMs (the name server, and the proxy with the broker in it), from
// the pid files the script writes; the benchmark reads their memory.
func (c *Cluster) PIDs() ([]int, error) {
	var pids []int
	for _, f := range []string{"namesrv.pid", "proxy.pid"} {
		b, err := os.ReadFile(filepath.Join(c.Dir, f))
		if err != nil {
			return nil, fmt.Errorf("Apache RocketMQ pid file: %w", err)
		}
		pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
		if err != nil {
			return nil, fmt.Errorf("Apache RocketMQ pid file %s: %w", f, err)
		}
		pids = append(pids, pid)
	}
	return pids, nil
}
