package gateway

// Benchmarks for docs/BENCHMARKS.md ("Serving"). Each compares tide with a direct peer in the same run:
//
//	go test -run '^$' -bench 'ColdStart' -benchtime 100x ./serving/gateway
//	go test -run '^$' -bench 'Latency|Throughput' -benchtime 3s ./serving/gateway

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"k8s.io/apimachinery/pkg/types"

	"github.com/tide-run/tide/internal/gcfloor"
	"github.com/tide-run/tide/serving/autoscaler/metrics"
	"github.com/tide-run/tide/serving/process"
)

func reportPercentiles(b *testing.B, lat []time.Duration, unit string, scale time.Duration) {
	if len(lat) == 0 {
		return
	}
	slices.Sort(lat)
	p := func(q float64) float64 {
		i := int(q * float64(len(lat)-1))
		return float64(lat[i]) / float64(scale)
	}
	b.ReportMetric(p(0.50), "p50-"+unit)
	b.ReportMetric(p(0.99), "p99-"+unit)
}

func benchClient() *http.Client {
	return &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 256, DisableCompression: true}}
}

func doGet(b *testing.B, c *http.Client, url, host string) {
	req, _ := http.NewRequest(http.MethodGet, url, nil)
	req.Host = host
	resp, err := c.Do(req)
	if err != nil {
		b.Fatal(err)
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 {
		b.Fatalf("status %d", resp.StatusCode)
	}
}

// BenchmarkColdStart measures zero to first byte for the ko:// hello program (built once in TestMain, so the build
// is excluded): "tide" goes through the gateway while the revision is at zero, so the activator holds the request,
// pokes (here: a stand-in autoscaler that scales to 1, as the KPA does at zero), the Pool starts the process and
// probes it every 10 ms until ready, then the request is released. "direct-exec" is the peer: exec the
// same binary and poll it with GET every millisecond until it answers.
func BenchmarkColdStart(b *testing.B) {
	gcfloor.InstallForBenchmark(b) // as the tide binary runs the gateway
	b.Run("tide", func(b *testing.B) {
		autoscaler := &scaleOnPoke{pools: map[types.NamespacedName]*process.Pool{}}
		gw := New(Options{Poker: autoscaler})
		srv := serve(b, gw)
		p, key := deploy(b, gw, revSpec{name: "hello-00001", image: helloImage})
		autoscaler.pools[key] = p
		if err := gw.SetRoute("default", "hello", []Target{{Revision: "hello-00001", Percent: 100}}); err != nil {
			b.Fatal(err)
		}
		c := benchClient()
		lat := make([]time.Duration, 0, b.N)
		b.ResetTimer()
		for range b.N {
			start := time.Now()
			doGet(b, c, srv.URL+"/", "hello.default.localhost")
			lat = append(lat, time.Since(start))
			b.StopTimer()
			p.SetScale(0)
			for len(p.Instances()) > 0 {
				time.Sleep(time.Millisecond)
			}
			b.StartTimer()
		}
		reportPercentiles(b, lat, "ms", time.Millisecond)
	})
	b.Run("direct-exec", func(b *testing.B) {
		bin, err := builder.Build(context.Background(), ".", helloImage)
		if err != nil {
			b.Fatal(err)
		}
		c := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}}
		lat := make([]time.Duration, 0, b.N)
		b.ResetTimer()
		for range b.N {
			b.StopTimer()
			l, err := freeLoopbackPort()
			if err != nil {
				b.Fatal(err)
			}
			b.StartTimer()
			start := time.Now()
			cmd := exec.Command(bin)
			cmd.Env = []string{"PORT=" + l, "PATH=" + os.Getenv("PATH")}
			if err := cmd.Start(); err != nil {
				b.Fatal(err)
			}
			for {
				resp, err := c.Get("http://127.0.0.1:" + l + "/")
				if err == nil {
					_, _ = io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
					break
				}
				time.Sleep(time.Millisecond)
			}
			lat = append(lat, time.Since(start))
			b.StopTimer()
			_ = cmd.Process.Kill()
			_ = cmd.Wait()
			b.StartTimer()
		}
		reportPercentiles(b, lat, "ms", time.Millisecond)
	})
}

// freeLoopbackPort binds :0, reads the port and releases it, as the process package does for instances.
func freeLoopbackPort() (string, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer l.Close()
	return fmt.Sprint(l.Addr().(*net.TCPAddr).Port), nil
}

// cpuTime is the CPU time used so far by this process (benchmark client and gateway) plus the instance process:
// per request it is the cost the machine pays, which unlike req/s does not depend on what else the machine runs.
func cpuTime(b *testing.B, pids ...int) time.Duration {
	total, err := selfCPU()
	if err != nil {
		b.Fatal(err)
	}
	for _, pid := range pids {
		d, err := procCPU(pid)
		if err != nil {
			b.Fatal(err)
		}
		total += d
	}
	return total
}

// procCPU is the user+system CPU time process pid has used, from /proc/PID/stat.
func procCPU(pid int) (time.Duration, error) {
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, fmt.Errorf("cpu time of pid %d: %w", pid, err)
	}
	// Fields after the parenthesised command: state is field 3, utime 14, stime 15 (clock ticks, 100 Hz).
	fields := strings.Fields(string(stat[strings.LastIndexByte(string(stat), ')')+2:]))
	if len(fields) < 13 {
		return 0, fmt.Errorf("cpu time of pid %d: short /proc stat %q", pid, stat)
	}
	ut, err1 := strconv.ParseInt(fields[11], 10, 64)
	st, err2 := strconv.ParseInt(fields[12], 10, 64)
	if err := errors.Join(err1, err2); err != nil {
		return 0, fmt.Errorf("cpu time of pid %d: %w", pid, err)
	}
	return time.Duration(ut+st) * 10 * time.Millisecond, nil
}

// peerCPU sums the CPU time of the processes pids lists now, per pid, so a window's cost can count processes that
// appeared during it (from zero) as well as those present at its start.
func peerCPU(pids func() ([]int, error)) (map[int]time.Duration, error) {
	if pids == nil {
		return nil, nil
	}
	list, err := pids()
	if err != nil {
		return nil, err
	}
	out := map[int]time.Duration{}
	for _, pid := range list {
		d, err := procCPU(pid)
		if err != nil {
			return nil, err
		}
		out[pid] = d
	}
	return out, nil
}

// helloBackend starts one hello instance behind a gateway and returns the gateway URL, the instance address and
// its pid. The gateway is set up as `tide up` runs it: per-request stats for the autoscaler (a StatReporter; the
// runtime's sink does the same work) and the Prometheus metrics, tracing off (the tracing benchmarks are issue 15's).
// gwHTTP is the same gateway behind net/http's server alone (no lean path), the code path before issue 18.
func helloBackend(b *testing.B) (gwURL, gwHTTP, direct string, pid int) {
	stats := NewStatReporter(StatReporterOptions{Recorder: discardStats{}})
	gw := New(Options{Stats: stats})
	m, err := NewMetrics(prometheus.NewRegistry())
	if err != nil {
		b.Fatal(err)
	}
	gw.SetMetrics(m)
	ctx, cancel := context.WithCancel(context.Background())
	b.Cleanup(cancel)
	go stats.Run(ctx)
	srv := serve(b, gw)
	plain := httptest.NewServer(gw)
	b.Cleanup(plain.Close)
	p, _ := deploy(b, gw, revSpec{name: "hello-00001", image: helloImage})
	if err := gw.SetRoute("default", "hello", []Target{{Revision: "hello-00001", Percent: 100}}); err != nil {
		b.Fatal(err)
	}
	p.SetScale(1)
	waitReady(b, p, 1)
	return srv.URL, plain.URL, "http://" + p.Instances()[0].Addr, p.Instances()[0].PID
}

// discardStats is the autoscaler's end of the stats stream in the benchmarks.
type discardStats struct{}

func (discardStats) Record(string, time.Time, metrics.Stat) {}

// BenchmarkLatency measures sequential request latency for the same hello process, direct and through the gateway,
// over keep-alive connections. The difference of the p50s is the gateway's added latency.
func BenchmarkLatency(b *testing.B) {
	gcfloor.InstallForBenchmark(b)
	gwURL, _, direct, _ := helloBackend(b)
	for _, tc := range []struct{ name, url string }{{"direct", direct}, {"gateway", gwURL}} {
		b.Run(tc.name, func(b *testing.B) {
			c := benchClient()
			doGet(b, c, tc.url+"/", "hello.default.localhost") // warm the connection
			lat := make([]time.Duration, 0, b.N)
			b.ResetTimer()
			for range b.N {
				start := time.Now()
				doGet(b, c, tc.url+"/", "hello.default.localhost")
				lat = append(lat, time.Since(start))
			}
			reportPercentiles(b, lat, "us", time.Microsecond)
		})
	}
}

// BenchmarkThroughput drives the same hello process with 16 concurrent clients per core, direct and through the
// gateway; compare req/s, and cpu-us/op (CPU of client, gateway and instance per request), which predicts the
// req/s ratio on an otherwise idle machine.
func BenchmarkThroughput(b *testing.B) {
	gcfloor.InstallForBenchmark(b)
	gwURL, gwHTTP, direct, pid := helloBackend(b)
	backend := strings.TrimPrefix(direct, "http://")
	type peer struct {
		name, url string
		// pids lists, when called, the processes besides this one and the instance whose CPU a request costs; it is
		// read again around each measured window, so processes that start late (nginx's workers) are counted.
		pids func() ([]int, error)
	}
	peers := []peer{{"direct", direct, nil}, {"gateway", gwURL, nil}, {"gateway-nethttp", gwHTTP, nil}}
	// The gateway in a process of its own, as tide up runs it and as nginx runs: the benchmark client's goroutines,
	// heap and GC are not the gateway's there, and its CPU is read from /proc like nginx's.
	if u, pids := gatewayProcess(b, backend, true); u != "" {
		peers = append(peers, peer{"gateway-proc", u, pids})
	}
	if u, pids := gatewayProcess(b, backend, false); u != "" {
		peers = append(peers, peer{"gateway-proc-nethttp", u, pids})
	}
	peers = append(peers, peer{"tcp-relay", tcpRelay(b, backend), nil})
	if u, pids := nginxProxy(b, backend); u != "" {
		peers = append(peers, peer{"nginx", u, pids})
	}
	for _, tc := range peers {
		b.Run(tc.name, func(b *testing.B) {
			c := benchClient()
			b.SetParallelism(16)
			before, err := peerCPU(tc.pids)
			if err != nil {
				b.Fatalf("%s processes: %v", tc.name, err)
			}
			cpu0 := cpuTime(b, pid)
			start := time.Now()
			b.ResetTimer()
			var mu sync.Mutex
			var lat []time.Duration
			b.RunParallel(func(pb *testing.PB) {
				mine := make([]time.Duration, 0, 1024)
				for pb.Next() {
					t0 := time.Now()
					doGet(b, c, tc.url+"/", "hello.default.localhost")
					mine = append(mine, time.Since(t0))
				}
				mu.Lock()
				lat = append(lat, mine...)
				mu.Unlock()
			})
			elapsed := time.Since(start)
			cpu := cpuTime(b, pid) - cpu0
			after, err := peerCPU(tc.pids)
			if err != nil {
				b.Fatalf("%s processes: %v", tc.name, err)
			}
			// A process gone by the end (none expected) would take its CPU with it: say so rather than under-count.
			for p := range before {
				if _, ok := after[p]; !ok {
					b.Fatalf("%s process %d exited during the measured window", tc.name, p)
				}
			}
			for p, d := range after {
				cpu += d - before[p]
			}
			b.ReportMetric(float64(b.N)/elapsed.Seconds(), "req/s")
			b.ReportMetric(float64(cpu)/float64(time.Microsecond)/float64(b.N), "cpu-us/op")
			reportPercentiles(b, lat, "us", time.Microsecond)
		})
	}
}

// Environment of the gateway child process (gatewayProcess): the instance's address, and whether to serve with
// net/http alone instead of the Server.
const (
	envBenchGateway      = "TIDE_BENCH_GATEWAY_BACKEND"
	envBenchGatewayPlain = "TIDE_BENCH_GATEWAY_NETHTTP"
)

// gatewayProcess starts this test binary as a gateway process in front of backend (runBenchGateway) and returns
// its URL and pid, or "" (said on stderr) when it does not start.
func gatewayProcess(b *testing.B, backend string, lean bool) (string, func() ([]int, error)) {
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), envBenchGateway+"="+backend)
	if !lean {
		cmd.Env = append(cmd.Env, envBenchGatewayPlain+"=1")
	}
	cmd.Stderr = os.Stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		b.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		peerSkipped("gateway-proc", "%v", err)
		return "", nil
	}
	b.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	line := make(chan string, 1)
	go func() {
		s, _ := bufio.NewReader(out).ReadString('\n')
		line <- strings.TrimSpace(s)
	}()
	select {
	case addr := <-line:
		if addr == "" {
			peerSkipped("gateway-proc", "the child printed no address")
			return "", nil
		}
		pid := cmd.Process.Pid
		return "http://" + addr, func() ([]int, error) { return []int{pid}, nil }
	case <-time.After(10 * time.Second):
		peerSkipped("gateway-proc", "no address after 10s")
		return "", nil
	}
}

// runBenchGateway is the gateway child: set up as helloBackend's (stats, metrics, the GC floor the tide binary
// installs) with backend as the revision's one instance, serving on a loopback port it prints. It runs until killed.
func runBenchGateway(backend string, lean bool) int {
	gcfloor.Install(256 << 20)
	stats := NewStatReporter(StatReporterOptions{Recorder: discardStats{}})
	go stats.Run(context.Background())
	gw := New(Options{Stats: stats})
	m, err := NewMetrics(prometheus.NewRegistry())
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	gw.SetMetrics(m)
	key := types.NamespacedName{Namespace: "default", Name: "hello-00001"}
	gw.SetRevision(key, RevisionConfig{Service: "hello", Configuration: "hello"})
	gw.AddBackend(key, &fixedInstance{addr: backend})
	if err := gw.SetRoute("default", "hello", []Target{{Revision: "hello-00001", Percent: 100}}); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	fmt.Println(l.Addr().String())
	srv := &http.Server{Handler: gw, ReadHeaderTimeout: 10 * time.Second}
	if lean {
		err = NewServer(gw, srv).Serve(l)
	} else {
		err = srv.Serve(l)
	}
	fmt.Fprintln(os.Stderr, err)
	return 1
}

// fixedInstance is an instance the gateway child did not start (the benchmark's hello process), counted as
// process.Instance counts its requests.
type fixedInstance struct {
	addr     string
	inflight atomic.Int64
}

func (f *fixedInstance) TryAcquire() bool { f.inflight.Add(1); return true }
func (f *fixedInstance) Release()         { f.inflight.Add(-1) }
func (f *fixedInstance) InFlight() int    { return int(f.inflight.Load()) }
func (f *fixedInstance) HostPort() string { return f.addr }

// tcpRelay is a second peer for BenchmarkThroughput: the cheapest possible user-space hop, a TCP relay that pairs
// each client connection with its own connection to the instance and copies bytes both ways without reading them.
// It cannot route, limit concurrency or add headers; it shows what one extra loopback hop costs by itself on this
// machine, so the gateway's own cost is the difference between its row and this one.
func tcpRelay(b *testing.B, backend string) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				u, err := net.Dial("tcp", backend)
				if err != nil {
					return
				}
				defer u.Close()
				// Plain read/write loops: for small requests they are cheaper than the splice(2) io.Copy picks for
				// TCP-to-TCP copies.
				go func() {
					_, _ = io.CopyBuffer(struct{ io.Writer }{u}, struct{ io.Reader }{c}, make([]byte, 32<<10))
					u.(*net.TCPConn).CloseWrite()
				}()
				_, _ = io.CopyBuffer(struct{ io.Writer }{c}, struct{ io.Reader }{u}, make([]byte, 32<<10))
			}()
		}
	}()
	return "http://" + ln.Addr().String()
}

// peerSkipped says on stderr that a peer is left out of the comparison and why: a benchmark's own log lines are not
// printed when it has sub-benchmarks, and a missing row must not pass unnoticed.
func peerSkipped(peer, format string, args ...any) {
	fmt.Fprintf(os.Stderr, "%s peer skipped: %s\n", peer, fmt.Sprintf(format, args...))
}

// nginxProxy starts Debian's nginx (when installed: apt-get install nginx-light) as a reverse proxy to backend with
// keep-alive upstream connections and access logging off, the usual production setup, and returns its URL and a
// function listing its master and worker pids (read each time: workers are forked after the listener accepts, so a
// list read at the first connect can miss them). When nginx is missing or does not start, it logs why the peer is
// skipped and returns "". It is a peer for BenchmarkThroughput: a mature C proxy doing the same hop as the gateway.
func nginxProxy(b *testing.B, backend string) (string, func() ([]int, error)) {
	bin, err := exec.LookPath("nginx")
	if err != nil {
		peerSkipped("nginx", "no nginx in PATH (apt-get install nginx-light): %v", err)
		return "", nil
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close() // nginx binds it; a race with another process taking the port only fails this peer
	dir := b.TempDir()
	conf := fmt.Sprintf(`daemon off;
worker_processes auto;
pid %[1]s/nginx.pid;
error_log %[1]s/error.log;
events { worker_connections 1024; }
http {
  access_log off;
  client_body_temp_path %[1]s; proxy_temp_path %[1]s; fastcgi_temp_path %[1]s; uwsgi_temp_path %[1]s; scgi_temp_path %[1]s;
  upstream hello { server %[2]s; keepalive 64; }
  server {
    listen %[3]s;
    location / { proxy_pass http://hello; proxy_http_version 1.1; proxy_set_header Connection ""; }
  }
}
`, dir, backend, addr)
	if err := os.WriteFile(dir+"/nginx.conf", []byte(conf), 0o644); err != nil {
		b.Fatal(err)
	}
	cmd := exec.Command(bin, "-p", dir, "-c", dir+"/nginx.conf")
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		peerSkipped("nginx", "%v", err)
		return "", nil
	}
	b.Cleanup(func() { _ = cmd.Process.Signal(syscall.SIGQUIT); _ = cmd.Wait() })
	master := cmd.Process.Pid
	pids := func() ([]int, error) {
		children, err := os.ReadFile(fmt.Sprintf("/proc/%d/task/%d/children", master, master))
		if err != nil {
			return nil, fmt.Errorf("nginx workers: %w", err)
		}
		out := []int{master}
		for _, f := range strings.Fields(string(children)) {
			n, err := strconv.Atoi(f)
			if err != nil {
				return nil, fmt.Errorf("nginx workers: %q: %w", children, err)
			}
			out = append(out, n)
		}
		return out, nil
	}
	// Ready when it accepts and has forked its workers ("auto": one per CPU).
	var last error
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) { // polling, with a deadline
		c, err := net.Dial("tcp", addr)
		if err != nil {
			last = err
			continue
		}
		c.Close()
		list, err := pids()
		if err != nil {
			last = err
			continue
		}
		if len(list)-1 >= runtime.NumCPU() {
			return "http://" + addr, pids
		}
		last = fmt.Errorf("%d of %d workers", len(list)-1, runtime.NumCPU())
	}
	peerSkipped("nginx", "not ready on %s after 5s: %v", addr, last)
	return "", nil
}

// BenchmarkStepLoad measures the time from a step in load to the desired instance count with the real KPA at
// Knative's 2 s decision interval: a CC=1 revision with one ready instance suddenly gets 10 concurrent clients of
// 100 ms requests; the KPA (panic mode) wants 15 and max-scale caps it at 5. Each iteration is a fresh revision.
//
//	go test -run '^$' -bench 'StepLoad' -benchtime 3x ./serving/gateway
func BenchmarkStepLoad(b *testing.B) {
	gcfloor.InstallForBenchmark(b)
	k := newKPA(b, 2*time.Second)
	var lat []time.Duration
	for i := range b.N {
		b.StopTimer()
		p := k.add(b, revSpec{name: fmt.Sprintf("step-%d-%d", time.Now().UnixNano(), i), cc: 1}, map[string]string{
			"autoscaling.knative.dev/min-scale": "1",
			"autoscaling.knative.dev/max-scale": "5",
		})
		waitReady(b, p, 1)
		var ok, failed atomic.Int64
		stop := make(chan struct{})
		b.StartTimer()
		start := time.Now()
		wg := k.load(b, 10, "/sleep?ms=100", stop, &ok, &failed)
		for p.ReadyCount() < 5 {
			time.Sleep(time.Millisecond)
		}
		lat = append(lat, time.Since(start))
		b.StopTimer()
		close(stop)
		wg.Wait()
		if failed.Load() != 0 {
			b.Fatalf("%d requests failed", failed.Load())
		}
		b.StartTimer()
	}
	reportPercentiles(b, lat, "ms", time.Millisecond)
}
