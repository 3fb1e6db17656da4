package gateway

import (
	"context"
	"errors"
	"net"
	"net/http"
	"net/http/httputil"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"k8s.io/apimachinery/pkg/types"
	"k8s.io/utils/clock"

	"github.com/tide-run/tide/serving/activator"
	"github.com/tide-run/tide/serving/process"
)

// revision is the data plane's state for one revision.
type revision struct {
	g   *Gateway
	key types.NamespacedName
	thr *activator.Throttler

	timeout       atomic.Int64 // nanoseconds
	responseStart atomic.Int64 // nanoseconds; 0 = none
	idle          atomic.Int64 // nanoseconds; 0 = none
	h2c           atomic.Bool

	mu       sync.Mutex                     // guards backends
	backends map[activator.Backend]*backend // instance -> its proxy wrapper

	requests atomic.Uint64
	errors   atomic.Uint64
	names    atomic.Pointer[[2]string] // service, configuration (RevisionConfig), for metrics' labels
}

func newRevision(g *Gateway, key types.NamespacedName, cfg RevisionConfig) *revision {
	r := &revision{
		g:        g,
		key:      key,
		thr:      activator.New(activator.Options{Revision: key, ContainerConcurrency: cfg.ContainerConcurrency, QueueDepth: g.opts.ActivatorQueueDepth, Poker: g.opts.Poker}),
		backends: map[activator.Backend]*backend{},
	}
	r.configure(cfg)
	return r
}

func (r *revision) configure(cfg RevisionConfig) {
	if cfg.Timeout <= 0 {
		cfg.Timeout = process.DefaultTimeout
	}
	r.timeout.Store(int64(cfg.Timeout))
	r.responseStart.Store(int64(max(0, cfg.ResponseStartTimeout)))
	r.idle.Store(int64(max(0, cfg.IdleTimeout)))
	r.h2c.Store(cfg.H2C)
	r.thr.SetContainerConcurrency(cfg.ContainerConcurrency)
	r.names.Store(&[2]string{cfg.Service, cfg.Configuration})
}

// backend wraps an instance with its own reverse proxy and connection pool, so closing an instance's idle
// connections never touches another's, and a port reused by a later instance never inherits stale connections.
type backend struct {
	activator.Backend
	addr      string
	proxy     *httputil.ReverseProxy // for protocol upgrades only; plain requests use forward
	transport *http.Transport
	pool      *connPool // fast path for plain GET/HEAD over HTTP/1.1; nil for h2c instances
}

func (r *revision) add(b activator.Backend) {
	r.mu.Lock()
	be, ok := r.backends[b]
	if !ok {
		be = r.newBackend(b)
		r.backends[b] = be
	}
	r.mu.Unlock()
	r.thr.Add(be)
}

func (r *revision) remove(b activator.Backend) {
	r.mu.Lock()
	be, ok := r.backends[b]
	delete(r.backends, b)
	r.mu.Unlock()
	if ok {
		r.thr.Remove(be)
		// In-flight requests keep their connections; idle ones are useless now.
		be.transport.CloseIdleConnections()
		if be.pool != nil {
			be.pool.close()
		}
	}
}

func (r *revision) newBackend(b activator.Backend) *backend {
	addr := b.HostPort()
	tr := newTransport(r.g.opts.MaxIdleConnsPerInstance, r.h2c.Load(), r.g.log)
	be := &backend{Backend: b, addr: addr, transport: tr}
	if !r.h2c.Load() {
		be.pool = newConnPool(addr, r.g.opts.MaxIdleConnsPerInstance)
		be.pool.dial = traceDial(r.g.log, be.pool.dial)
	}
	be.proxy = &httputil.ReverseProxy{
		Director: func(out *http.Request) {
			out.URL.Scheme = "http"
			out.URL.Host = addr
			setForwarded(out)
		},
		Transport:    tr,
		BufferPool:   r.g.bufs,
		ErrorHandler: r.proxyError,
	}
	return be
}

// setForwarded adds what queue-proxy and the ingress add: X-Forwarded-Proto and X-Forwarded-Host when absent, and
// a Forwarded header generated from the X-Forwarded-* chain (client included) when absent. The client address is
// appended to X-Forwarded-For afterwards (appendXFF, or ReverseProxy itself for upgrades). The Host header is left
// as the client sent it.
func setForwarded(out *http.Request) { setForwardedInto(out, clientAddr(out), new(headerScratch)) }

// headerScratch backs the one-element value slices of the headers the gateway adds, so one allocation serves all
// of them. Each slice handed out is capped at length 1, so an append by anyone else copies instead of writing into
// a neighbour.
type headerScratch [4]string

const (
	scratchProto = iota
	scratchHost
	scratchForwarded
	scratchXFF
)

func (s *headerScratch) one(i int, v string) []string {
	s[i] = v
	return s[i : i+1 : i+1]
}

// clientAddr is the client's IP from RemoteAddr, or RemoteAddr itself when it is not host:port.
func clientAddr(r *http.Request) string {
	client, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return client
}

func setForwardedInto(out *http.Request, client string, s *headerScratch) {
	h := out.Header
	proto := h.Get("X-Forwarded-Proto")
	if proto == "" {
		proto = "http"
		if out.TLS != nil {
			proto = "https"
		}
		h["X-Forwarded-Proto"] = s.one(scratchProto, proto)
	}
	fhost := h.Get("X-Forwarded-Host")
	if fhost == "" {
		fhost = out.Host
		h["X-Forwarded-Host"] = s.one(scratchHost, fhost)
	}
	if h.Get("Forwarded") != "" {
		return
	}
	prior := h["X-Forwarded-For"]
	if len(prior) == 0 && client != "" && !strings.ContainsAny(client, ":,") && strings.TrimSpace(client) == client {
		// The common case, one hop with an IPv4 client: what forwardedValue renders, built in one concatenation.
		v := "for=" + client + ";proto=" + proto
		if fhost != "" {
			v = "for=" + client + ";host=" + fhost + ";proto=" + proto
		}
		h["Forwarded"] = s.one(scratchForwarded, v)
		return
	}
	chain := client
	if len(prior) > 0 {
		chain = strings.Join(prior, ", ") + ", " + client
	}
	h["Forwarded"] = s.one(scratchForwarded, forwardedValue(chain, fhost, proto))
}

// forwardedValue renders RFC 7239 from an X-Forwarded-For chain: the first element carries host and proto, each
// further hop is another for= element; IPv6 addresses are quoted and bracketed.
func forwardedValue(xff, host, proto string) string {
	var b strings.Builder
	first := true
	for node := range strings.SplitSeq(xff, ",") {
		node = strings.TrimSpace(node)
		if node == "" {
			continue
		}
		if !first {
			b.WriteString(", ")
		}
		b.WriteString("for=")
		if strings.Contains(node, ":") {
			b.WriteString(`"[` + node + `]"`)
		} else {
			b.WriteString(node)
		}
		if first {
			if host != "" {
				b.WriteString(";host=" + host)
			}
			b.WriteString(";proto=" + proto)
			first = false
		}
	}
	if first { // no for= at all
		b.WriteString("host=" + host + ";proto=" + proto)
	}
	return b.String()
}

// proxyError answers a failed proxy attempt: 504 when the revision's timeout (or response-start timeout) fired
// before the response started, nothing when the client went away, 502 otherwise.
func (r *revision) proxyError(w http.ResponseWriter, req *http.Request, err error) {
	switch {
	case errors.Is(context.Cause(req.Context()), errResponseStart):
		http.Error(w, "response start timeout", http.StatusGatewayTimeout)
	case errors.Is(req.Context().Err(), context.DeadlineExceeded):
		http.Error(w, "request timeout", http.StatusGatewayTimeout)
	case errors.Is(req.Context().Err(), context.Canceled):
		w.WriteHeader(499) // logged only; the client is gone
	default:
		r.g.log.Debug("proxy error", "revision", r.key.String(), "error", err)
		http.Error(w, "upstream error: "+err.Error(), http.StatusBadGateway)
	}
}

// serve runs one request through the throttler and proxies it.
func (r *revision) serve(w http.ResponseWriter, req *http.Request) {
	r.requests.Add(1)
	stats := r.g.opts.Stats
	if stats != nil {
		stats.RequestStart(r.key, r.g.clock.Now())
		defer func() { stats.RequestEnd(r.key, r.g.clock.Now()) }()
	}
	ctx, cancel := context.WithTimeout(req.Context(), time.Duration(r.timeout.Load()))
	defer cancel()
	pc := &proxyCall{sw: statusWriter{ResponseWriter: w}}
	sw := &pc.sw
	if m := r.g.metrics.Load(); m != nil {
		start := time.Now()
		defer func() { m.observe(r, sw.status, start) }()
	}
	ctx, span := r.startSpan(ctx, req)
	defer r.endSpan(span, sw)
	req = req.WithContext(ctx)
	if isUpgrade(req) {
		if b, ok := r.acquire(ctx, sw); ok {
			defer r.thr.Release(b) // also when the proxy aborts the response with a panic
			b.(*backend).proxy.ServeHTTP(sw, req)
		}
	} else {
		if req.ContentLength != 0 {
			// Full duplex: the instance may answer before it has read the body (the barrage page answers a Send
			// as soon as it has decoded the JSON), and without this net/http's server would discard and close the
			// rest of the body when the answer's head is written, while http.Transport is still reading it to send
			// it on; the transport then closes the instance's connection under the answer (or, if the client sends
			// the rest only after the answer started, the two wait for each other). TestBodyStreamsWhileTheAnswerStarts.
			_ = http.NewResponseController(w).EnableFullDuplex()
		}
		out := outgoing(req, pc)
		var tm *timeouts
		if rs, idle := time.Duration(r.responseStart.Load()), time.Duration(r.idle.Load()); (rs > 0 && rs < time.Duration(r.timeout.Load())) || idle > 0 {
			var tctx context.Context
			tctx, tm = newTimeouts(ctx, r.g.opts.TimeoutClock, rs, idle)
			defer tm.stop()
			out = out.WithContext(tctx)
		}
		// An instance that refuses the connection has stopped listening: take it out of rotation and try
		// another (the pool reports its exit separately). The attempt bound only guards against a loop.
		for attempt := 0; attempt < maxRefusedAttempts; attempt++ {
			waitStart := r.spanClock(span)
			b, ok := r.acquire(ctx, sw)
			if !ok {
				break
			}
			r.acquired(span, b, waitStart)
			be := b.(*backend)
			retry := func() bool {
				// Deferred: forward aborts a response cut mid-body with panic(http.ErrAbortHandler), and the slot
				// must be released then too, or the instance's drain would wait for it forever.
				defer r.thr.Release(b)
				return be.forward(sw, out, r, tm)
			}()
			if !retry {
				break
			}
			r.g.log.Warn("instance refused a connection; removing it from rotation", "revision", r.key.String(), "addr", be.addr)
			r.remove(be.Backend)
			if attempt == maxRefusedAttempts-1 {
				http.Error(sw, "every instance refused the connection", http.StatusBadGateway)
			}
		}
	}
	if sw.status >= 500 {
		r.errors.Add(1)
	}
}

var (
	errResponseStart = errors.New("response start timeout")
	errIdle          = errors.New("idle timeout")
)

// timeouts carries the optional per-request response-start and idle timers. The request's context is cancelled
// with errResponseStart or errIdle as cause when one fires.
//
// The timers are only touched by the goroutine serving the request (headers, progress and stop are called from it).
type timeouts struct {
	clock       clock.WithDelayedExecution
	cancel      context.CancelCauseFunc
	start, idle clock.Timer
	idleAfter   time.Duration
}

func newTimeouts(ctx context.Context, clk clock.WithDelayedExecution, responseStart, idle time.Duration) (context.Context, *timeouts) {
	c, cancel := context.WithCancelCause(ctx)
	t := &timeouts{clock: clk, cancel: cancel, idleAfter: idle}
	if responseStart > 0 {
		t.start = clk.AfterFunc(responseStart, func() { cancel(errResponseStart) })
	}
	return c, t
}

// headers is called when the response started: the start timer stops and the idle timer begins.
func (t *timeouts) headers() {
	if t == nil {
		return
	}
	if t.start != nil {
		t.start.Stop()
	}
	if t.idleAfter > 0 {
		t.idle = t.clock.AfterFunc(t.idleAfter, func() { t.cancel(errIdle) })
	}
}

// progress is called for every chunk of response body.
func (t *timeouts) progress() {
	if t != nil && t.idle != nil {
		t.idle.Reset(t.idleAfter)
	}
}

func (t *timeouts) stop() {
	if t.start != nil {
		t.start.Stop()
	}
	if t.idle != nil {
		t.idle.Stop()
	}
	t.cancel(nil)
}

// maxRefusedAttempts bounds how many instances one request tries when connections are refused.
const maxRefusedAttempts = 3

// acquire takes a slot, answering the request itself (503 queue full, 504 timeout) when it cannot.
func (r *revision) acquire(ctx context.Context, w http.ResponseWriter) (activator.Backend, bool) {
	var (
		b    activator.Backend
		err  error
		cold bool
	)
	if m := r.g.metrics.Load(); m != nil {
		start := time.Now()
		b, cold, err = r.thr.AcquireCold(ctx)
		if cold {
			m.observeCold(r, time.Since(start), err == nil)
		}
	} else {
		b, err = r.thr.Acquire(ctx)
	}
	if err == nil {
		return b, true
	}
	switch {
	case errors.Is(err, activator.ErrQueueFull):
		http.Error(w, "pending request queue full", http.StatusServiceUnavailable)
	case errors.Is(err, context.DeadlineExceeded):
		http.Error(w, "request timeout while waiting for capacity", http.StatusGatewayTimeout)
	}
	return nil, false
}

// statusWriter records the status code; Unwrap keeps http.ResponseController (flush, hijack) working.
type statusWriter struct {
	http.ResponseWriter
	status int
}

func (s *statusWriter) WriteHeader(code int) {
	if s.status == 0 {
		s.status = code
	}
	s.ResponseWriter.WriteHeader(code)
}

func (s *statusWriter) Write(p []byte) (int, error) {
	if s.status == 0 {
		s.status = http.StatusOK
	}
	return s.ResponseWriter.Write(p)
}

func (s *statusWriter) Flush() {
	if f, ok := s.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}

func (s *statusWriter) Unwrap() http.ResponseWriter { return s.ResponseWriter }
