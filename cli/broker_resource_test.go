//go:build !windows

package cli

import (
	"bufio"
	"context"
	"encoding/binary"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/apache/rocketmq-client-go/v2"
	"github.com/apache/rocketmq-client-go/v2/primitive"
	"github.com/apache/rocketmq-client-go/v2/producer"
	"github.com/apache/rocketmq-client-go/v2/rlog"

	"github.com/tide-run/tide/internal/promtest"
)

// resourceConns is how many connections each phase of TestBrokerBoundedUnderHostilePeers holds.
const resourceConns = 2000

// TestBrokerBoundedUnderHostilePeers is issue 11's resource test (findings 3 and 5) against a real `tide broker`
// child process: 2,000 connections that each send a 4-byte length announcing a 16 MiB frame and nothing more,
// then (while those stay open) 2,000 that send garbage. Throughout, the broker's resident set stays under 100 MB
// above its idle size (it used to allocate each announced length: 300 such connections took it past 3 GB), an
// official-client producer keeps sending successfully, and the broker's log grows by a bounded number of lines
// (it used to write one per bad connection).
func TestBrokerBoundedUnderHostilePeers(t *testing.T) {
	if testing.Short() {
		t.Skip("builds tide and opens 4,000 connections")
	}
	needFiles(t, 2*resourceConns+512)
	rlog.SetLogLevel("error")
	bin := buildTide(t)
	cmd := exec.Command(bin, "broker", "--namesrv-port", "0", "--broker-port", "0", "--grpc-port", "0", "--data-dir", t.TempDir(),
		"--health-addr", "127.0.0.1:0")
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	logs := &syncBuffer{}
	cmd.Stderr = logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { cmd.Process.Kill(); cmd.Wait() }()
	var nsAddr, brAddr, health string
	sc := bufio.NewScanner(stdout)
	for (nsAddr == "" || brAddr == "" || health == "") && sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "name server "); ok {
			nsAddr = v
		}
		if v, ok := strings.CutPrefix(sc.Text(), "broker "); ok {
			brAddr = v
		}
		if v, ok := strings.CutPrefix(sc.Text(), "health "); ok {
			health = v
		}
	}
	if health == "" {
		t.Fatalf("tide broker printed no addresses; stderr:\n%s", logs.String())
	}
	readyz := func(when string) {
		t.Helper()
		code, body := httpGet(t, health+"/readyz")
		if code != 200 || !strings.Contains(body, "[+]rocketmq-broker-accepting ok") || !strings.Contains(body, "[+]rocketmq-store-writable ok") {
			t.Errorf("/readyz %s: %d\n%s", when, code, body)
		}
		if code, _ := httpGet(t, health+"/livez"); code != 200 {
			t.Errorf("/livez %s: %d", when, code)
		}
	}
	readyz("at start")

	p, err := rocketmq.NewProducer(producer.WithNameServer([]string{nsAddr}), producer.WithRetry(0),
		producer.WithGroupName("resource-pg"), producer.WithSendMsgTimeout(5*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	if err := p.Start(); err != nil {
		t.Fatal(err)
	}
	defer p.Shutdown()
	for i := range 20 { // warm up: the send path's pages are part of "idle"
		if _, err := p.SendSync(context.Background(), primitive.NewMessage("resource", []byte(strconv.Itoa(i)))); err != nil {
			t.Fatalf("warm-up send: %v", err)
		}
	}
	// /metrics on --health-addr counts the warm-up exactly (Prometheus' own parser reads it).
	promtest.WaitValue(t, health+"/metrics", nil, "rocketmq_messages_in_total", map[string]string{"topic": "resource"}, 20, 5*time.Second)
	pid := cmd.Process.Pid
	idle := rss(t, pid)
	linesBefore := strings.Count(logs.String(), "\n")
	t.Logf("idle broker: RSS %d MiB", idle>>20)

	// Sends and RSS samples run through both phases.
	var (
		sent, failed atomic.Int64
		firstErr     atomic.Value
		peak         atomic.Int64
		stop         = make(chan struct{})
		bg           sync.WaitGroup
	)
	peak.Store(idle)
	bg.Add(2)
	go func() {
		defer bg.Done()
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			default:
			}
			_, err := p.SendSync(context.Background(), primitive.NewMessage("resource", []byte(strconv.Itoa(i))))
			if err != nil {
				failed.Add(1)
				firstErr.CompareAndSwap(nil, err.Error())
			} else {
				sent.Add(1)
			}
			time.Sleep(5 * time.Millisecond)
		}
	}()
	go func() {
		defer bg.Done()
		for {
			select {
			case <-stop:
				return
			case <-time.After(50 * time.Millisecond):
			}
			if v, err := readRSS(pid); err == nil && v > peak.Load() {
				peak.Store(v)
			}
		}
	}()
	phase := func(name string, payload func(i int) []byte) []net.Conn {
		t.Helper()
		before := sent.Load()
		conns := dialAll(t, brAddr, resourceConns, payload)
		time.Sleep(time.Second) // the broker reads what they sent (and closes the garbage ones)
		if got := sent.Load() - before; got < 5 {
			t.Errorf("%s: %d successful sends while the connections were held, want sends to keep working", name, got)
		}
		t.Logf("%s: RSS %d MiB (peak %d MiB), %d sends so far", name, rss(t, pid)>>20, peak.Load()>>20, sent.Load())
		return conns
	}
	lengthOnly := binary.BigEndian.AppendUint32(nil, 16<<20)
	held := phase("2000 x 4-byte frames", func(int) []byte { return lengthOnly })
	defer closeAll(held)
	rng := rand.New(rand.NewPCG(1, 2))
	var rmu sync.Mutex
	garbage := phase("2000 x garbage", func(i int) []byte {
		switch i % 3 {
		case 0:
			return []byte("GET / HTTP/1.1\r\nHost: localhost:10911\r\n\r\n")
		case 1: // a plausible length, then a header that is not JSON
			b := binary.BigEndian.AppendUint32(nil, 60)
			b = binary.BigEndian.AppendUint32(b, 56)
			return append(b, []byte(strings.Repeat("\xff{garbage", 7))[:56]...)
		default:
			rmu.Lock()
			defer rmu.Unlock()
			b := make([]byte, 64)
			for j := range b {
				b[j] = byte(rng.UintN(256))
			}
			return b
		}
	})
	defer closeAll(garbage)
	readyz("with 4,000 hostile connections") // under the connection limit, and the broker accepts: ready
	close(stop)
	bg.Wait()

	if n := failed.Load(); n > 0 {
		t.Errorf("%d of %d official-client sends failed while hostile peers were connected; first: %v", n, n+sent.Load(), firstErr.Load())
	}
	if grew := peak.Load() - idle; grew > 100<<20 {
		t.Errorf("RSS grew by %d MiB (idle %d MiB, peak %d MiB), want under 100 MB", grew>>20, idle>>20, peak.Load()>>20)
	}
	lines := strings.Count(logs.String(), "\n") - linesBefore
	if lines > 20 {
		t.Errorf("the broker's log grew by %d lines for %d hostile connections, want a bounded few:\n%s", lines, 2*resourceConns, tail(logs.String(), 30))
	}
	t.Logf("log grew by %d lines; %d sends succeeded; peak RSS %d MiB above idle", lines, sent.Load(), (peak.Load()-idle)>>20)
}

// needFiles raises this process's soft open-file limit to its hard limit (safe: it only lets this process open
// more) and skips when even that is below need.
func needFiles(t *testing.T, need uint64) {
	t.Helper()
	var rl syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &rl); err != nil {
		t.Skipf("getrlimit: %v", err)
	}
	if rl.Cur < rl.Max {
		rl.Cur = rl.Max
		if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &rl); err != nil {
			t.Skipf("raise the open-file limit: %v", err)
		}
	}
	if rl.Cur < need {
		t.Skipf("open-file limit %d, need %d", rl.Cur, need)
	}
}

// dialAll opens n connections to addr (32 at a time) and writes payload(i) on each.
func dialAll(t *testing.T, addr string, n int, payload func(int) []byte) []net.Conn {
	t.Helper()
	conns := make([]net.Conn, n)
	var (
		wg   sync.WaitGroup
		next atomic.Int64
		errs = make(chan error, 32)
	)
	for range 32 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1)) - 1
				if i >= n {
					return
				}
				c, err := net.DialTimeout("tcp", addr, 10*time.Second)
				if err != nil {
					errs <- fmt.Errorf("dial %d: %w", i, err)
					return
				}
				conns[i] = c
				_, _ = c.Write(payload(i)) // a garbage peer may already be closed
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		closeAll(conns)
		t.Fatal(err)
	}
	return conns
}

func closeAll(conns []net.Conn) {
	for _, c := range conns {
		if c != nil {
			c.Close()
		}
	}
}

func rss(t *testing.T, pid int) int64 {
	t.Helper()
	v, err := readRSS(pid)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// readRSS is VmRSS from /proc/<pid>/status, in bytes.
func readRSS(pid int) (int64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, err
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			return kb << 10, err
		}
	}
	return 0, fmt.Errorf("no VmRSS in /proc/%d/status", pid)
}

func httpGet(t *testing.T, url string) (int, string) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func tail(s string, n int) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	return strings.Join(lines[max(0, len(lines)-n):], "\n")
}
