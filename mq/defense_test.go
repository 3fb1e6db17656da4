//go:build !windows

package mq_test

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/apache/rocketmq-client-go/v2"
	"github.com/apache/rocketmq-client-go/v2/primitive"
	"github.com/apache/rocketmq-client-go/v2/producer"

	"github.com/tide-run/tide/mq"
	"github.com/tide-run/tide/mq/internal/commitlog"
	"github.com/tide-run/tide/mq/remoting"
)

// emfileLimit is the child's soft open-file limit: a few dozen connections exhaust it.
const emfileLimit = 64

// TestAcceptRecoversFromEMFILE reproduces finding 2 and shows it fixed. A broker runs in a child process (this
// test binary re-executed: the open-file limit is per process, and the test process's must stay as other tests
// need it) with a soft RLIMIT_NOFILE of 64 and no connection cap. Idle connections from this process exhaust
// its descriptors, so accepts fail with EMFILE: readiness must say the broker listener is not accepting (naming the
// check and the cause). Once the connections close, the broker must accept again by itself (back-off and retry
// instead of a dead accept loop), readiness must recover, an official-client send must succeed, and the burst must
// be logged once (start) plus once (end) instead of not at all.
func TestAcceptRecoversFromEMFILE(t *testing.T) {
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), "TIDE_MQ_EMFILE_CHILD_DIR="+t.TempDir())
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { stdin.Close(); cmd.Process.Kill(); cmd.Wait() }()
	out := bufio.NewReader(stdout)
	ask := func(q string) string { // one request line, one answer line
		t.Helper()
		if _, err := fmt.Fprintln(stdin, q); err != nil {
			t.Fatalf("child: %v", err)
		}
		line, err := out.ReadString('\n')
		if err != nil {
			t.Fatalf("child answer to %q: %v", q, err)
		}
		return strings.TrimSpace(line)
	}
	line, err := out.ReadString('\n')
	if err != nil || !strings.HasPrefix(line, "ready ") {
		t.Fatalf("child broker: %q %v", line, err)
	}
	f := strings.Fields(line)
	nsAddr, brAddr := f[1], f[2]
	if h := ask("health"); h != "ok" {
		t.Fatalf("health before the flood: %s", h)
	}

	// Hold idle connections until the child's accepts fail (the kernel completes the handshakes regardless).
	var conns []net.Conn
	defer func() {
		for _, c := range conns {
			c.Close()
		}
	}()
	var health string
	for i := 0; i < 4*emfileLimit; i++ {
		c, err := net.Dial("tcp", brAddr)
		if err != nil {
			t.Fatalf("dial %d: %v", i, err)
		}
		conns = append(conns, c)
		if i >= emfileLimit/2 && i%8 == 0 {
			if health = ask("health"); health != "ok" {
				break
			}
		}
	}
	deadline := time.Now().Add(10 * time.Second)
	for health == "ok" && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
		health = ask("health")
	}
	if !strings.Contains(health, "rocketmq-broker-accepting") || !strings.Contains(health, "not accepting connections") ||
		!strings.Contains(health, "too many open files") {
		t.Fatalf("readiness while accepts fail with EMFILE: %q, want the broker listener named as not accepting", health)
	}
	t.Logf("after %d idle connections, readiness: %s", len(conns), health)
	// The state is recorded just before the line is written: poll for the line.
	deadline = time.Now().Add(5 * time.Second)
	n := ask("count accept failed")
	for ; n == "0" && time.Now().Before(deadline); n = ask("count accept failed") {
		time.Sleep(10 * time.Millisecond)
	}
	if n != "1" {
		t.Fatalf("%s 'accept failed' lines during the burst, want 1", n)
	}

	for _, c := range conns {
		c.Close()
	}
	conns = nil
	deadline = time.Now().Add(15 * time.Second)
	for health = ask("health"); health != "ok"; health = ask("health") {
		if time.Now().After(deadline) {
			t.Fatalf("readiness did not recover after the connections closed: %s", health)
		}
		time.Sleep(50 * time.Millisecond)
	}
	// The broker serves again: an official-client send.
	p := newProducerFor(t, nsAddr)
	if _, err := p.SendSync(context.Background(), primitive.NewMessage("after-emfile", []byte("hello"))); err != nil {
		t.Fatalf("send after the burst: %v", err)
	}
	if n := ask("count accept failed"); n != "1" {
		t.Fatalf("%s 'accept failed' lines, want 1 for the whole burst", n)
	}
	if n := ask("count accepting connections again"); n != "1" {
		t.Fatalf("%s recovery lines, want 1", n)
	}
	again := ask("grep accepting connections again")
	if m := regexp.MustCompile(`failedAccepts=(\d+)`).FindStringSubmatch(again); m == nil || m[1] == "0" {
		t.Fatalf("recovery line %q, want the count of failed accepts", again)
	}
}

// runEMFILEChild is the child of TestAcceptRecoversFromEMFILE: a broker with no connection cap under a low soft
// open-file limit, answering the parent's questions on stdin/stdout ("health", "count TEXT", "grep TEXT").
func runEMFILEChild(dir string) {
	logs := &lineLog{}
	srv, err := mq.New(mq.Options{DataDir: dir, MaxConnections: -1, Logger: slog.New(slog.NewTextHandler(logs, nil))})
	if err == nil {
		err = srv.Start(context.Background())
	}
	var rl syscall.Rlimit
	if err == nil {
		err = syscall.Getrlimit(syscall.RLIMIT_NOFILE, &rl)
	}
	if err == nil {
		// After Start: the store's files are open. Only the soft limit; this process alone.
		err = syscall.Setrlimit(syscall.RLIMIT_NOFILE, &syscall.Rlimit{Cur: emfileLimit, Max: rl.Max})
	}
	if err != nil {
		fmt.Println("error", err)
		os.Exit(1)
	}
	fmt.Printf("ready %s %s\n", srv.NameServerAddr(), srv.BrokerAddr())
	sc := bufio.NewScanner(os.Stdin)
	for sc.Scan() {
		q := sc.Text()
		switch {
		case q == "health":
			if err := srv.Health(); err != nil {
				fmt.Println(strings.ReplaceAll(err.Error(), "\n", "; "))
			} else {
				fmt.Println("ok")
			}
		case strings.HasPrefix(q, "count "):
			fmt.Println(len(logs.matching(strings.TrimPrefix(q, "count "))))
		case strings.HasPrefix(q, "grep "):
			fmt.Println(strings.Join(logs.matching(strings.TrimPrefix(q, "grep ")), " | "))
		default:
			fmt.Println("unknown question")
		}
	}
	os.Exit(0)
}

// lineLog keeps log lines.
type lineLog struct {
	mu    sync.Mutex
	lines []string
}

func (l *lineLog) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, line := range strings.Split(strings.TrimSpace(string(p)), "\n") {
		l.lines = append(l.lines, line)
	}
	return len(p), nil
}

func (l *lineLog) matching(sub string) []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []string
	for _, line := range l.lines {
		if strings.Contains(line, sub) {
			out = append(out, line)
		}
	}
	return out
}

func (l *lineLog) count() int { l.mu.Lock(); defer l.mu.Unlock(); return len(l.lines) }

// represented is how many records the lines matching sub stand for: 1 each, or their "repeated" count (a summary
// of records held back by the rate limiter).
func (l *lineLog) represented(sub string) int {
	n := 0
	for _, line := range l.matching(sub) {
		if m := regexp.MustCompile(`repeated=(\d+)`).FindStringSubmatch(line); m != nil {
			k, _ := strconv.Atoi(m[1])
			n += k
		} else {
			n++
		}
	}
	return n
}

// TestLogFloodIsBounded reproduces finding 5's log floods and shows them bounded: 300 peers sending garbage, 300
// sends refused on a full disk and the checkpoint failing every flush interval produce a line or two per kind
// (plus a summary with the count when the server stops), not a line per event; and no event goes uncounted.
func TestLogFloodIsBounded(t *testing.T) {
	logs := &lineLog{}
	ffs := commitlog.NewFaultFS(commitlog.OS{})
	srv, err := mq.New(mq.Options{DataDir: t.TempDir(), FS: ffs, FlushInterval: 50 * time.Millisecond,
		Logger: slog.New(slog.NewTextHandler(logs, nil))})
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	stopped := false
	defer func() {
		if !stopped {
			srv.Shutdown(context.Background())
		}
	}()
	start := time.Now()
	before := logs.count()
	createTopic(t, srv, "flood", 1)

	const peers = 300
	var wg sync.WaitGroup
	for i := range peers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c, err := net.Dial("tcp", srv.BrokerAddr())
			if err != nil {
				t.Error(err)
				return
			}
			defer c.Close()
			fmt.Fprintf(c, "GET /%d HTTP/1.1\r\nHost: x\r\n\r\n", i) // a length word of ~1.2 GB
			c.SetReadDeadline(time.Now().Add(10 * time.Second))
			io.Copy(io.Discard, c) // until the broker closes it
		}()
	}
	wg.Wait()
	waitFor(t, 10*time.Second, "the bad peers counted", func() bool { return srv.BrokerStats().BadFrames == peers })

	ffs.SetSpaceLeft(0)
	c := dial(t, srv.BrokerAddr())
	const refused = 300
	for i := range refused {
		r := invoke(t, c, remoting.NewRequest(remoting.SendMessage, map[string]string{"producerGroup": "pg", "topic": "flood",
			"defaultTopic": "TBW102", "defaultTopicQueueNums": "4", "queueId": "0", "sysFlag": "0", "bornTimestamp": "0",
			"flag": "0", "properties": ""}, []byte(fmt.Sprint("m", i))))
		if r.Code != remoting.ServiceNotAvailable {
			t.Fatalf("send %d on a full disk: %d %s", i, r.Code, r.Remark)
		}
	}
	// Let the checkpoint fail for a while: at 50 ms, many times.
	time.Sleep(time.Second)
	during := logs.count() - before
	elapsed := time.Since(start)
	if err := srv.Shutdown(context.Background()); err != nil {
		t.Logf("shutdown: %v", err) // the full disk may fail the last checkpoint
	}
	stopped = true

	t.Logf("%d lines:\n%s", during, strings.Join(logs.lines, "\n"))
	// Per kind, one line at once and a summary per 10 s interval at most; three kinds (bad peers, refused sends,
	// failed checkpoints) and the odd one-off line.
	intervals := int(elapsed/(10*time.Second)) + 1
	if limit := 3*(1+intervals) + 10; during > limit {
		t.Fatalf("%d log lines for %d bad peers, %d refused sends and a failing checkpoint, want at most %d:\n%s",
			during, peers, refused, limit, strings.Join(logs.lines, "\n"))
	}
	// Nothing went uncounted: the lines of each kind stand for every event.
	if n := logs.represented("unreadable frame"); n != peers {
		t.Errorf("bad-peer lines stand for %d connections, want %d", n, peers)
	}
	if n := logs.represented("send refused: disk full"); n != refused {
		t.Errorf("refused-send lines stand for %d sends, want %d", n, refused)
	}
	if n := logs.represented("checkpoint failed"); n < 5 {
		t.Errorf("checkpoint lines stand for %d failures, want the failures of a second at 50 ms", n)
	}
}

// TestReadyChecksNameAFullDisk: while writes fail for lack of space, the store check fails (and says why); once
// space is back it recovers without a send (the store probes), and sends work again.
func TestReadyChecksNameAFullDisk(t *testing.T) {
	ffs := commitlog.NewFaultFS(commitlog.OS{})
	srv := start(t, mq.Options{FS: ffs, FlushInterval: 50 * time.Millisecond})
	createTopic(t, srv, "disk", 1)
	p := newProducer(t, srv)
	sendN(t, p, "disk", 1, "")
	if err := srv.Health(); err != nil {
		t.Fatalf("health: %v", err)
	}
	ffs.SetSpaceLeft(0)
	if _, err := p.SendSync(context.Background(), primitive.NewMessage("disk", []byte("no room"))); err == nil {
		t.Fatal("send on a full disk succeeded")
	}
	err := srv.Health()
	if err == nil || !strings.Contains(err.Error(), "rocketmq-store-writable") || !strings.Contains(err.Error(), "disk full") {
		t.Fatalf("health on a full disk: %v", err)
	}
	time.Sleep(200 * time.Millisecond) // background rounds on the full disk keep it failing
	if srv.Health() == nil {
		t.Fatal("health recovered while the disk is still full")
	}
	ffs.SetSpaceLeft(-1)
	waitFor(t, 10*time.Second, "health to recover once space is back", func() bool { return srv.Health() == nil })
	sendN(t, p, "disk", 1, "")
}

// newProducerFor starts an official-client producer for a name server this process does not embed.
func newProducerFor(t *testing.T, nsAddr string) rocketmq.Producer {
	t.Helper()
	p, err := rocketmq.NewProducer(producer.WithNameServer([]string{nsAddr}), producer.WithRetry(2),
		producer.WithInstanceName(uniq("p")), producer.WithGroupName(uniq("pg")))
	if err != nil {
		t.Fatal(err)
	}
	if err := p.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Shutdown() })
	return p
}
