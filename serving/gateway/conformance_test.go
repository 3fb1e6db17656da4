package gateway

// Conformance-style tests after knative/serving's test/conformance (runtime env, headers, containerConcurrency,
// timeout, blue/green traffic, scale from zero, drain), run with real processes over real HTTP.

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/tide-run/tide/serving/process"
)

const host = "svc.default.localhost"

func TestConformanceRuntimeEnv(t *testing.T) {
	_, srv, p, _ := serveRevision(t, revSpec{name: "svc-00001"}, 1)
	code, body := get(t, http.DefaultClient, srv, host, "/env", nil)
	if code != 200 {
		t.Fatalf("status %d: %s", code, body)
	}
	var env map[string]string
	if err := json.Unmarshal([]byte(body), &env); err != nil {
		t.Fatal(err)
	}
	inst := p.Instances()[0]
	for k, want := range map[string]string{"PORT": fmt.Sprint(inst.Port), "K_SERVICE": "svc", "K_CONFIGURATION": "svc", "K_REVISION": "svc-00001"} {
		if env[k] != want {
			t.Errorf("%s = %q, want %q", k, env[k], want)
		}
	}
}

func TestConformanceHeaders(t *testing.T) {
	_, srv, _, _ := serveRevision(t, revSpec{name: "svc-00001"}, 1)

	type seen struct {
		Host    string              `json:"host"`
		Headers map[string][]string `json:"headers"`
	}
	fetch := func(hdr http.Header) seen {
		code, body := get(t, http.DefaultClient, srv, host, "/headers", hdr)
		if code != 200 {
			t.Fatalf("status %d: %s", code, body)
		}
		var s seen
		if err := json.Unmarshal([]byte(body), &s); err != nil {
			t.Fatal(err)
		}
		return s
	}

	s := fetch(http.Header{"X-User-Header": {"a", "b"}, "Traceparent": {"00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"}})
	if s.Host != host {
		t.Errorf("Host = %q, want %q", s.Host, host)
	}
	h := http.Header(s.Headers)
	checks := map[string]string{
		"X-Forwarded-For":   "127.0.0.1",
		"X-Forwarded-Proto": "http",
		"X-Forwarded-Host":  host,
		"Forwarded":         "for=127.0.0.1;host=" + host + ";proto=http",
		"Traceparent":       "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
	}
	for k, want := range checks {
		if got := h.Get(k); got != want {
			t.Errorf("%s = %q, want %q", k, got, want)
		}
	}
	if got := h.Values("X-User-Header"); strings.Join(got, ",") != "a,b" {
		t.Errorf("user header = %q, want unchanged [a b]", got)
	}

	// Behind another proxy: the chain is kept and extended, existing proto/host are trusted.
	s = fetch(http.Header{"X-Forwarded-For": {"203.0.113.7"}, "X-Forwarded-Proto": {"https"}, "X-Forwarded-Host": {"shop.example.com"}})
	h = http.Header(s.Headers)
	if got := h.Get("X-Forwarded-For"); got != "203.0.113.7, 127.0.0.1" {
		t.Errorf("X-Forwarded-For = %q", got)
	}
	if got := h.Get("Forwarded"); got != "for=203.0.113.7;host=shop.example.com;proto=https, for=127.0.0.1" {
		t.Errorf("Forwarded = %q", got)
	}
	// A client-supplied Forwarded is passed unchanged.
	s = fetch(http.Header{"Forwarded": {"for=192.0.2.60;proto=http"}})
	if got := http.Header(s.Headers).Get("Forwarded"); got != "for=192.0.2.60;proto=http" {
		t.Errorf("Forwarded = %q", got)
	}
}

func TestConformanceContainerConcurrencyOne(t *testing.T) {
	_, srv, _, _ := serveRevision(t, revSpec{name: "svc-00001", cc: 1}, 1)
	const n = 10 // 1 in flight + 9 queued: within queue-proxy's 10 x CC
	var wg sync.WaitGroup
	var bad atomic.Int64
	for range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			code, body := get(t, http.DefaultClient, srv, host, "/sleep?ms=30", nil)
			var r struct{ Inflight int }
			_ = json.Unmarshal([]byte(body), &r)
			if code != 200 || r.Inflight != 1 {
				bad.Add(1)
				t.Errorf("status %d inflight %d: %s", code, r.Inflight, body)
			}
		}()
	}
	wg.Wait()
	_, body := get(t, http.DefaultClient, srv, host, "/maxinflight", nil)
	if strings.TrimSpace(body) != `{"max":1}` {
		t.Fatalf("max in flight seen by the program: %s", body)
	}
}

func TestConformanceQueueFullIs503(t *testing.T) {
	gw, srv, _, key := serveRevision(t, revSpec{name: "svc-00001", cc: 1}, 1)
	// One request holds the only slot; ten fill the queue; the twelfth is refused.
	codes := make(chan int, 12)
	go func() {
		c, _ := get(t, http.DefaultClient, srv, host, "/sleep?ms=1500", nil)
		codes <- c
	}()
	waitFor(t, "first request in flight", func() bool { s, _ := gw.Stats(key); return s.InFlight == 1 })
	for range 10 {
		go func() {
			c, _ := get(t, http.DefaultClient, srv, host, "/sleep?ms=1", nil)
			codes <- c
		}()
	}
	waitFor(t, "queue full", func() bool { s, _ := gw.Stats(key); return s.Queued == 10 })
	if c, _ := get(t, http.DefaultClient, srv, host, "/", nil); c != http.StatusServiceUnavailable {
		t.Fatalf("status %d, want 503", c)
	}
	for range 11 {
		if c := <-codes; c != 200 {
			t.Fatalf("queued request got %d", c)
		}
	}
}

// TestConformanceTimeout: timeoutSeconds ends a request that has not finished. The slow request sleeps a minute, so
// the 504 can only come from the 1 s timeout however late its timer fires on a loaded machine; the quick one does
// not sleep at all, leaving the whole second as margin.
func TestConformanceTimeout(t *testing.T) {
	_, srv, _, _ := serveRevision(t, revSpec{name: "svc-00001", timeout: 1}, 1)
	if c, body := get(t, http.DefaultClient, srv, host, "/sleep?ms=0", nil); c != 200 {
		t.Fatalf("within the timeout: %d %s", c, body)
	}
	if c, body := get(t, http.DefaultClient, srv, host, "/sleep?ms=60000", nil); c != http.StatusGatewayTimeout {
		t.Fatalf("over the timeout: %d %s, want 504", c, body)
	}
}

func TestConformanceBlueGreenAndTags(t *testing.T) {
	gw := New(Options{})
	srv := serve(t, gw)
	blue, _ := deploy(t, gw, revSpec{name: "svc-00001"})
	green, _ := deploy(t, gw, revSpec{name: "svc-00002"})
	if err := gw.SetRoute("default", "svc", []Target{
		{Revision: "svc-00001", Percent: 50, Tag: "blue"},
		{Revision: "svc-00002", Percent: 50, Tag: "green"},
	}); err != nil {
		t.Fatal(err)
	}
	blue.SetScale(1)
	green.SetScale(1)
	waitReady(t, blue, 1)
	waitReady(t, green, 1)
	counts := map[string]int{}
	for range 200 {
		c, body := get(t, http.DefaultClient, srv, host, "/", nil)
		if c != 200 {
			t.Fatalf("status %d", c)
		}
		counts[strings.TrimSpace(body)]++
	}
	for _, rev := range []string{"svc-00001", "svc-00002"} {
		if counts[rev] < 50 {
			t.Errorf("%s got %d of 200 requests, want at least 25%%: %v", rev, counts[rev], counts)
		}
	}
	// Tag hosts reach only their revision, under every domain form and with a port.
	for _, tc := range []struct{ host, want string }{
		{"green-svc.default.localhost:8080", "svc-00002"},
		{"blue-svc.default.svc.cluster.local", "svc-00001"},
		{"GREEN-svc.default.svc", "svc-00002"},
		{"blue-svc.default", "svc-00001"},
	} {
		for range 20 {
			if c, body := get(t, http.DefaultClient, srv, tc.host, "/", nil); c != 200 || strings.TrimSpace(body) != tc.want {
				t.Fatalf("%s: %d %q, want %s", tc.host, c, body, tc.want)
			}
		}
	}
}

func TestUnknownHostFallsThrough(t *testing.T) {
	gw := New(Options{Fallback: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusAccepted)
	})})
	srv := serve(t, gw)
	if c, _ := get(t, http.DefaultClient, srv, "broker-ingress.example", "/default/default", nil); c != http.StatusAccepted {
		t.Fatalf("status %d", c)
	}
}

func TestSetRouteValidates(t *testing.T) {
	gw := New(Options{})
	if err := gw.SetRoute("default", "svc", []Target{{Revision: "a", Percent: 60}, {Revision: "b", Percent: 30}}); !errors.Is(err, ErrInvalidRoute) ||
		!strings.Contains(err.Error(), "spec.traffic") {
		t.Fatalf("err = %v", err)
	}
	if err := gw.SetRoute("default", "svc", []Target{{Revision: "a", Percent: 100, Tag: "x"}, {Revision: "b", Tag: "x"}}); err == nil ||
		!strings.Contains(err.Error(), "spec.traffic[1].tag") {
		t.Fatalf("err = %v", err)
	}
	if gw.lookup(host) != nil {
		t.Fatal("a rejected route was installed")
	}
}

func TestScaleFromZeroOnFirstRequest(t *testing.T) {
	autoscaler := &scaleOnPoke{pools: map[types.NamespacedName]*process.Pool{}}
	sink := newCountingSink()
	gw := New(Options{Poker: autoscaler, Stats: sink})
	srv := serve(t, gw)
	p, key := deploy(t, gw, revSpec{name: "svc-00001", cc: 1})
	autoscaler.mu.Lock()
	autoscaler.pools[key] = p
	autoscaler.mu.Unlock()
	if err := gw.SetRoute("default", "svc", []Target{{Revision: "svc-00001", Percent: 100}}); err != nil {
		t.Fatal(err)
	}
	if p.ReadyCount() != 0 {
		t.Fatal("pool should start at zero")
	}
	start := time.Now()
	c, body := get(t, http.DefaultClient, srv, host, "/", nil)
	if c != 200 || strings.TrimSpace(body) != "svc-00001" {
		t.Fatalf("first request: %d %q", c, body)
	}
	t.Logf("zero to first byte: %s", time.Since(start))
	autoscaler.mu.Lock()
	pokes := autoscaler.pokes
	autoscaler.mu.Unlock()
	if pokes != 1 {
		t.Fatalf("autoscaler poked %d times, want 1", pokes)
	}
	sink.mu.Lock()
	defer sink.mu.Unlock()
	if sink.start[key] != 1 || sink.end[key] != 1 {
		t.Fatalf("stats start %d end %d", sink.start[key], sink.end[key])
	}
}

// TestNoErrorsAcrossScaleEvents keeps load on a revision while it scales up, down, to zero and back from zero, and
// counts every response: none may fail.
func TestNoErrorsAcrossScaleEvents(t *testing.T) {
	autoscaler := &scaleOnPoke{pools: map[types.NamespacedName]*process.Pool{}}
	gw := New(Options{Poker: autoscaler})
	srv := serve(t, gw)
	p, key := deploy(t, gw, revSpec{name: "svc-00001", cc: 2})
	autoscaler.mu.Lock()
	autoscaler.pools[key] = p
	autoscaler.mu.Unlock()
	if err := gw.SetRoute("default", "svc", []Target{{Revision: "svc-00001", Percent: 100}}); err != nil {
		t.Fatal(err)
	}
	p.SetScale(1)
	waitReady(t, p, 1)

	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 16}}
	stop := make(chan struct{})
	var ok, failed atomic.Int64
	var wg sync.WaitGroup
	for range 6 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				c, body := get(t, client, srv, host, "/sleep?ms=20", nil)
				if c == 200 {
					ok.Add(1)
				} else {
					failed.Add(1)
					t.Errorf("status %d: %s", c, body)
				}
			}
		}()
	}
	steps := []struct {
		scale int
		what  string
	}{{3, "up to 3"}, {1, "down to 1"}, {4, "up to 4"}, {0, "to zero (held requests poke it back to 1)"}, {2, "up to 2"}, {1, "down to 1"}}
	for _, s := range steps {
		p.SetScale(s.scale)
		before := ok.Load()
		waitFor(t, "traffic after scaling "+s.what, func() bool { return ok.Load() >= before+20 })
	}
	close(stop)
	wg.Wait()
	if failed.Load() != 0 || ok.Load() == 0 {
		t.Fatalf("ok %d failed %d", ok.Load(), failed.Load())
	}
	t.Logf("%d requests, 0 failed, across %d scale events", ok.Load(), len(steps))
}

// TestDrainLosesNoInFlightRequest scales down while long requests are in flight on the instance being removed.
func TestDrainLosesNoInFlightRequest(t *testing.T) {
	gw, srv, p, key := serveRevision(t, revSpec{name: "svc-00001"}, 2)
	const n = 8
	codes := make(chan int, n)
	for range n {
		go func() {
			c, _ := get(t, http.DefaultClient, srv, host, "/sleep?ms=400", nil)
			codes <- c
		}()
	}
	waitFor(t, "requests in flight on both instances", func() bool {
		s, _ := gw.Stats(key)
		busy := 0
		for _, i := range p.Instances() {
			if i.InFlight > 0 {
				busy++
			}
		}
		return s.InFlight == n && busy == 2
	})
	p.SetScale(1)
	waitFor(t, "one instance draining", func() bool {
		for _, i := range p.Instances() {
			if i.Draining {
				return true
			}
		}
		return false
	})
	for range n {
		if c := <-codes; c != 200 {
			t.Fatalf("in-flight request got %d during drain", c)
		}
	}
	waitFor(t, "drained instance gone", func() bool { return len(p.Instances()) == 1 })
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

// TestRequestBodies sends the POST bodies CloudEvents deliveries carry, with a known length and chunked, and a
// large one, and checks they arrive intact with their headers.
func TestRequestBodies(t *testing.T) {
	_, srv, _, _ := serveRevision(t, revSpec{name: "svc-00001", cc: 2}, 1)
	big := strings.Repeat("0123456789abcdef", 64<<10) // 1 MiB
	for _, tc := range []struct {
		name    string
		body    string
		chunked bool
	}{{"small", `{"order":42}`, false}, {"chunked", `{"order":43}`, true}, {"1MiB", big, false}, {"1MiB chunked", big, true}} {
		t.Run(tc.name, func(t *testing.T) {
			var body io.Reader = strings.NewReader(tc.body)
			if tc.chunked {
				body = io.MultiReader(body) // hides the length: sent chunked
			}
			req, _ := http.NewRequest(http.MethodPost, srv.URL+"/echo", body)
			req.Host = host
			req.Header.Set("Content-Type", "application/json")
			req.Header.Set("Ce-Id", "1")
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			got, _ := io.ReadAll(resp.Body)
			if resp.StatusCode != 200 || string(got) != tc.body || resp.Header.Get("Content-Type") != "application/json" ||
				resp.Header.Get("X-Echo-Method") != "POST" {
				t.Fatalf("status %d, %d bytes back (want %d), headers %v", resp.StatusCode, len(got), len(tc.body), resp.Header)
			}
			if wantCL := fmt.Sprint(len(tc.body)); !tc.chunked && resp.Header.Get("X-Echo-Content-Length") != wantCL {
				t.Fatalf("content length at the program %s, want %s", resp.Header.Get("X-Echo-Content-Length"), wantCL)
			}
		})
	}
}

// TestProtocolUpgrade switches a connection to another protocol through the gateway (as WebSocket does) and checks
// bytes flow both ways.
func TestProtocolUpgrade(t *testing.T) {
	_, srv, _, _ := serveRevision(t, revSpec{name: "svc-00001"}, 1)
	conn, err := net.Dial("tcp", strings.TrimPrefix(srv.URL, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(10 * time.Second))
	fmt.Fprintf(conn, "GET /upgrade HTTP/1.1\r\nHost: %s\r\nConnection: Upgrade\r\nUpgrade: echo\r\n\r\n", host)
	br := bufio.NewReader(conn)
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusSwitchingProtocols || resp.Header.Get("Upgrade") != "echo" {
		t.Fatalf("response %d %v", resp.StatusCode, resp.Header)
	}
	for _, msg := range []string{"ping\n", "second message\n"} {
		if _, err := io.WriteString(conn, msg); err != nil {
			t.Fatal(err)
		}
		line, err := br.ReadString('\n')
		if err != nil || line != msg {
			t.Fatalf("echo %q, %v; want %q", line, err, msg)
		}
	}
}

// deadBackend is an address nothing listens on: an instance that has just exited.
type deadBackend struct {
	addr               string
	inflight, acquired atomic.Int64
}

func (d *deadBackend) TryAcquire() bool { d.inflight.Add(1); d.acquired.Add(1); return true }
func (d *deadBackend) Release()         { d.inflight.Add(-1) }
func (d *deadBackend) InFlight() int    { return int(d.inflight.Load()) }
func (d *deadBackend) HostPort() string { return d.addr }

// TestRefusedInstanceIsSkipped puts an instance that refuses connections (its process is gone, its Gone event not
// yet delivered) next to a live one: requests, with and without a body, go to the live one and the dead one
// leaves the rotation.
func TestRefusedInstanceIsSkipped(t *testing.T) {
	gw := New(Options{})
	srv := serve(t, gw)
	p, key := deploy(t, gw, revSpec{name: "svc-00001"})
	if err := gw.SetRoute("default", "svc", []Target{{Revision: "svc-00001", Percent: 100}}); err != nil {
		t.Fatal(err)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	dead := &deadBackend{addr: l.Addr().String()}
	l.Close()
	gw.AddBackend(key, dead) // first in rotation, least loaded
	p.SetScale(1)
	waitReady(t, p, 1)
	req, _ := http.NewRequest(http.MethodPost, srv.URL+"/echo", strings.NewReader("payload"))
	req.Host = host
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || string(b) != "payload" {
		t.Fatalf("POST: %d %q", resp.StatusCode, b)
	}
	for range 10 {
		if c, _ := get(t, http.DefaultClient, srv, host, "/", nil); c != 200 {
			t.Fatalf("status %d", c)
		}
	}
	if n := dead.acquired.Load(); n != 1 {
		t.Fatalf("the refusing instance was tried %d times, want exactly once (the POST)", n)
	}
	if s, _ := gw.Stats(key); s.Ready != 1 || s.Errors != 0 {
		t.Fatalf("stats %+v: the refusing instance should have left the rotation without errors", s)
	}
}

// TestH2CPort: a container port named h2c is spoken to in HTTP/2 without TLS (gRPC's transport), as in Knative,
// while the client talks HTTP/1.1 to the gateway.
func TestH2CPort(t *testing.T) {
	gw := New(Options{})
	srv := serve(t, gw)
	p, _ := deploy(t, gw, revSpec{name: "svc-00001", ports: []corev1.ContainerPort{{Name: "h2c", ContainerPort: 8080}},
		env: []corev1.EnvVar{{Name: "CONFORMANCE_H2C", Value: "1"}}})
	if err := gw.SetRoute("default", "svc", []Target{{Revision: "svc-00001", Percent: 100}}); err != nil {
		t.Fatal(err)
	}
	p.SetScale(1)
	waitReady(t, p, 1)
	if c, body := get(t, http.DefaultClient, srv, host, "/proto", nil); c != 200 || strings.TrimSpace(body) != "HTTP/2.0" {
		t.Fatalf("/proto: %d %q, want HTTP/2.0", c, body)
	}
	req, _ := http.NewRequest(http.MethodPost, srv.URL+"/echo", strings.NewReader("over h2c"))
	req.Host = host
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || string(b) != "over h2c" {
		t.Fatalf("POST over h2c: %d %q", resp.StatusCode, b)
	}
}
