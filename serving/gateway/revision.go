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

	"github.com/tide-run/tide/serving/activator"
	"github.com/tide-run/tide/serving/process"
)

// revision is the data plane's state for one revision.
type revision struct {
	g   *Gateway
	key types.NamespacedName
	thr *activator.Throttler

	timeout atomic.Int64 // nanoseconds
	h2c     atomic.Bool

	mu       sync.Mutex                     // guards backends
	backends map[activator.Backend]*backend // instance -> its proxy wrapper

	requests atomic.Uint64
	errors   atomic.Uint64
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
	r.h2c.Store(cfg.H2C)
	r.thr.SetContainerConcurrency(cfg.ContainerConcurrency)
}

// backend wraps an instance with its own reverse proxy and connection pool, so closing an instance's idle
// connections never touches another's, and a port reused by a later instance never inherits stale connections.
type backend struct {
	activator.Backend
	addr      string
	proxy     *httputil.ReverseProxy // for protocol upgrades only; plain requests use forward
	transport *http.Transport
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
	}
}

func (r *revision) newBackend(b activator.Backend) *backend {
	addr := b.HostPort()
	tr := newTransport(r.g.opts.MaxIdleConnsPerInstance, r.h2c.Load())
	be := &backend{Backend: b, addr: addr, transport: tr}
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
func setForwarded(out *http.Request) {
	h := out.Header
	proto := h.Get("X-Forwarded-Proto")
	if proto == "" {
		proto = "http"
		if out.TLS != nil {
			proto = "https"
		}
		h["X-Forwarded-Proto"] = []string{proto}
	}
	fhost := h.Get("X-Forwarded-Host")
	if fhost == "" {
		fhost = out.Host
		h["X-Forwarded-Host"] = []string{fhost}
	}
	if h.Get("Forwarded") != "" {
		return
	}
	client, _, err := net.SplitHostPort(out.RemoteAddr)
	if err != nil {
		client = out.RemoteAddr
	}
	chain := client
	if prior := h["X-Forwarded-For"]; len(prior) > 0 {
		chain = strings.Join(prior, ", ") + ", " + client
	}
	h["Forwarded"] = []string{forwardedValue(chain, fhost, proto)}
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

// proxyError answers a failed proxy attempt: 504 when the revision's timeout fired before the response started,
// nothing when the client went away, 502 otherwise.
func (r *revision) proxyError(w http.ResponseWriter, req *http.Request, err error) {
	switch {
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
	sw := statusWriter{ResponseWriter: w}
	req = req.WithContext(ctx)
	if isUpgrade(req) {
		if b, ok := r.acquire(ctx, &sw); ok {
			b.(*backend).proxy.ServeHTTP(&sw, req)
			r.thr.Release(b)
		}
	} else {
		out := outgoing(req)
		// An instance that refuses the connection has stopped listening: take it out of rotation and try
		// another (the pool reports its exit separately). The attempt bound only guards against a loop.
		for attempt := 0; attempt < maxRefusedAttempts; attempt++ {
			b, ok := r.acquire(ctx, &sw)
			if !ok {
				break
			}
			be := b.(*backend)
			retry := be.forward(&sw, out, r)
			r.thr.Release(b)
			if !retry {
				break
			}
			r.g.log.Warn("instance refused a connection; removing it from rotation", "revision", r.key.String(), "addr", be.addr)
			r.remove(be.Backend)
			if attempt == maxRefusedAttempts-1 {
				http.Error(&sw, "every instance refused the connection", http.StatusBadGateway)
			}
		}
	}
	if sw.status >= 500 {
		r.errors.Add(1)
	}
}

// maxRefusedAttempts bounds how many instances one request tries when connections are refused.
const maxRefusedAttempts = 3

// acquire takes a slot, answering the request itself (503 queue full, 504 timeout) when it cannot.
func (r *revision) acquire(ctx context.Context, w http.ResponseWriter) (activator.Backend, bool) {
	b, err := r.thr.Acquire(ctx)
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
