package bench

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"time"

	"github.com/tide-run/tide/internal/apachetest"
	"github.com/tide-run/tide/internal/tailbuf"
)

// Peers driven by Apache's official Java client (rocketmq-client 5.5.0, the remoting API most Java applications
// use) through the load program java/Load.java, which runs the same phases as the Go driver inside one JVM.
const (
	// PeerRocketMQJava is tide's embedded broker (as PeerRocketMQ) with the Java client.
	PeerRocketMQJava = "rocketmq-java"
	// PeerApacheJava is Apache RocketMQ (as PeerApache) with the Java client.
	PeerApacheJava = "apache-java"
)

// javaPeer is a broker (tide's, or Apache's) driven by the Java load program. prepare and the Apache peer's warm-up
// use the Go peer it wraps; sends and consumption are the JVM's.
type javaPeer struct {
	broker interface {
		prepare(topic string) error
		close()
	}
	cmd  *exec.Cmd
	in   io.WriteCloser
	out  *bufio.Reader
	errs *tailbuf.Buffer // the JVM's stderr, for errors
	n    int
}

// loadProgram returns the path of java/Load.java in this checkout, like apachetest.Script: the Java peers run from a
// source tree (they need its Java file and Apache's jars resolved by test/apache/rocketmq).
func loadProgram() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Join(filepath.Dir(file), "java", "Load.java")
}

func newJavaPeer(name, dir string, opts Options) (*javaPeer, error) {
	if ok, why := apachetest.Available(); !ok {
		return nil, fmt.Errorf("the Java client needs a JDK 17 and Maven: %s", why)
	}
	cpOut, err := exec.Command(apachetest.Script(), "classpath").Output()
	if err != nil {
		return nil, fmt.Errorf("classpath of Apache's jars (%s classpath): %w", apachetest.Script(), err)
	}
	cp := strings.TrimSpace(string(cpOut))
	classes := filepath.Join(dir, "java-classes")
	if b, err := exec.Command("javac", "-nowarn", "-d", classes, "-cp", cp, loadProgram()).CombinedOutput(); err != nil {
		return nil, fmt.Errorf("javac %s: %w\n%s", loadProgram(), err, b)
	}
	j := &javaPeer{}
	var ns string
	switch name {
	case PeerApacheJava:
		a, err := newApachePeer(dir, opts.Sync, 1, opts.IdleWait)
		if err != nil {
			return nil, err
		}
		j.broker, ns = a, a.ns
	default:
		r, err := newRocketPeer(dir, opts.Sync, 1)
		if err != nil {
			return nil, err
		}
		j.broker, ns = r, r.ns
	}
	// The same 1 GiB heap as Apache's JVM; the client's default collector and full JIT.
	j.cmd = exec.Command("java", "-Xms1g", "-Xmx1g", "-Duser.home="+dir, "-cp", cp+string(filepath.ListSeparator)+classes,
		"Load", ns, strconv.Itoa(opts.Connections), strconv.Itoa(opts.Senders), strconv.Itoa(opts.BodySize),
		strconv.FormatInt(time.Now().UnixNano()%1e9, 10))
	j.errs = &tailbuf.Buffer{Max: 8 << 10}
	j.cmd.Stderr = j.errs
	apachetest.KillWithParent(j.cmd)
	if j.in, err = j.cmd.StdinPipe(); err != nil {
		j.broker.close()
		return nil, err
	}
	stdout, err := j.cmd.StdoutPipe()
	if err != nil {
		j.broker.close()
		return nil, err
	}
	j.out = bufio.NewReaderSize(stdout, 1<<20)
	if err := j.cmd.Start(); err != nil {
		j.broker.close()
		return nil, fmt.Errorf("java: %w", err)
	}
	if l, err := j.line(); err != nil || l != "READY" {
		j.close()
		return nil, fmt.Errorf("the Java load program did not start (%q, %v): %s", l, err, j.errs)
	}
	if err := j.prepare("bench-java-warmup"); err != nil {
		j.close()
		return nil, err
	}
	// The client's JIT compiles its send path under this load (the broker's warm-up is the peer's own: the Apache
	// peer warms Apache with the Go client first).
	if ph := j.phase("bench-java-warmup", 0, opts.JavaWarmUp, 0); len(ph.lat) == 0 {
		j.close()
		return nil, fmt.Errorf("Java client warm-up: every send failed: %w", ph.firstErr)
	}
	return j, nil
}

func (j *javaPeer) prepare(topic string) error { return j.broker.prepare(topic) }

// startup is the Apache cluster's, when the broker is Apache.
func (j *javaPeer) startup() (time.Duration, rss, rss) {
	if a, ok := j.broker.(*apachePeer); ok {
		return a.startup()
	}
	return 0, rss{}, rss{}
}

// do sends one command and returns its answer line.
func (j *javaPeer) do(cmd string) (string, error) {
	if _, err := fmt.Fprintln(j.in, cmd); err != nil {
		return "", fmt.Errorf("the Java load program is gone (%w): %s", err, j.errs)
	}
	l, err := j.line()
	if err != nil {
		return "", fmt.Errorf("the Java load program is gone (%w): %s", err, j.errs)
	}
	if why, ok := strings.CutPrefix(l, "ERR "); ok {
		return "", errors.New(why)
	}
	return l, nil
}

func (j *javaPeer) line() (string, error) {
	l, err := j.out.ReadString('\n')
	return strings.TrimRight(l, "\r\n"), err
}

// send sends one unmeasured message (warm-ups only: the phases run inside the JVM).
func (j *javaPeer) send(_ context.Context, _ int, topic string, _ []byte) error {
	_, err := j.do("one " + topic)
	return err
}

// subscribe starts the JVM's consumer; it records latencies itself, so fn is not called (see collect).
func (j *javaPeer) subscribe(topic string, _ func([]byte)) (func(), error) {
	j.n++
	_, err := j.do(fmt.Sprintf("subscribe %s bench-java-%s-%d-%d", topic, topic, j.n, time.Now().UnixNano()%1e9))
	return func() {}, err
}

// phase runs the senders in the JVM, as runSenders does in Go.
func (j *javaPeer) phase(topic string, count int, d time.Duration, rate float64) phase {
	l, err := j.do(fmt.Sprintf("phase %s %d %d %g", topic, count, d.Milliseconds(), rate))
	if err != nil {
		return phase{errors: 1, firstErr: err}
	}
	f := strings.SplitN(l, " ", 6) // PHASE acked errors seconds lat,... first-error
	if len(f) < 6 || f[0] != "PHASE" {
		return phase{errors: 1, firstErr: fmt.Errorf("Java load program: unexpected answer %.200q", l)}
	}
	var out phase
	out.errors, _ = strconv.Atoi(f[2])
	secs, _ := strconv.ParseFloat(f[3], 64)
	out.lat = micros(f[4])
	if f[5] != "-" {
		out.firstErr = errors.New(f[5])
	}
	if secs > 0 {
		out.rate = float64(len(out.lat)) / secs
	}
	// acked stays empty: the JVM keeps the acknowledged sequence numbers for collect.
	return out
}

// warm sends unmeasured messages until the JVM's consumer has received one.
func (j *javaPeer) warm(topic string) error {
	_, err := j.do("warm " + topic)
	return err
}

// collect waits up to limit for the last phase's acknowledged messages and returns how many were not consumed and
// the produce-to-consume latencies of those that were.
func (j *javaPeer) collect(limit time.Duration) (int, []time.Duration, error) {
	l, err := j.do(fmt.Sprintf("collect %d", limit.Milliseconds()))
	if err != nil {
		return 0, nil, err
	}
	f := strings.SplitN(l, " ", 3)
	if len(f) < 3 || f[0] != "COLLECT" {
		return 0, nil, fmt.Errorf("Java load program: unexpected answer %.200q", l)
	}
	missing, _ := strconv.Atoi(f[1])
	return missing, micros(f[2]), nil
}

func micros(s string) []time.Duration {
	if s == "-" {
		return nil
	}
	parts := strings.Split(s, ",")
	out := make([]time.Duration, 0, len(parts))
	for _, p := range parts {
		if v, err := strconv.ParseInt(p, 10, 64); err == nil {
			out = append(out, time.Duration(v)*time.Microsecond)
		}
	}
	return out
}

func (j *javaPeer) close() {
	if j.cmd != nil && j.cmd.Process != nil {
		_, _ = fmt.Fprintln(j.in, "quit")
		_ = j.in.Close()
		done := make(chan struct{})
		go func() { _ = j.cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(15 * time.Second):
			_ = j.cmd.Process.Kill()
			<-done
		}
	}
	j.broker.close()
}
