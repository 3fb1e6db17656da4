package gateway

import (
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/http"
	"net/http/httputil"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"go.opentelemetry.io/otel/trace"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/utils/clock"

	"github.com/tide-run/tide/serving/activator"
	"github.com/tide-run/tide/serving/process"
)

// Sentinel errors.
var (
	// ErrInvalidRoute is wrapped by SetRoute errors; the message names the field path.
	ErrInvalidRoute = errors.New("invalid route")
)

// DefaultDomains are the host suffixes every route answers on ("" is the bare `<name>.<ns>`).
var DefaultDomains = []string{"localhost", "svc.cluster.local", "svc", ""}

// StatSink receives one RequestStart and one RequestEnd per request routed to a revision. The autoscaler's
// collector implements it; calls must be cheap and must not block.
type StatSink interface {
	RequestStart(rev types.NamespacedName, now time.Time)
	RequestEnd(rev types.NamespacedName, now time.Time)
}

// Tracker is optionally implemented by a StatSink that wants to know revisions before their first request (so it
// can report zeros for them) and after their deletion. StatReporter implements it.
type Tracker interface {
	Track(rev types.NamespacedName)
	Forget(rev types.NamespacedName)
}

// Target is one entry of a route's traffic block, resolved to a revision name in the route's namespace.
type Target struct {
	Revision string
	Percent  int
	Tag      string
}

// RevisionConfig is what the data plane needs to know about a revision.
type RevisionConfig struct {
	// ContainerConcurrency is the hard per-instance limit; 0 = unlimited.
	ContainerConcurrency int
	// Timeout is timeoutSeconds; default 300s.
	Timeout time.Duration
	// ResponseStartTimeout (responseStartTimeoutSeconds) bounds the wait for the response to start once the
	// request reaches an instance: 504 after it. 0 or >= Timeout: Timeout alone applies.
	ResponseStartTimeout time.Duration
	// IdleTimeout (idleTimeoutSeconds) bounds the gap between response bytes; the response is cut after it.
	// 0: no limit.
	IdleTimeout time.Duration
	// H2C: the container port is named "h2c", so instances are spoken to in HTTP/2 without TLS (gRPC), as Knative
	// does. Applies to instances added afterwards.
	H2C bool
	// Service and Configuration name the revision's owners in its metrics' labels (service_name,
	// configuration_name).
	Service, Configuration string
}

// Options configures a Gateway. Zero values take the documented defaults.
type Options struct {
	// Fallback serves hosts that match no route. Default: 404. It is cluster-local (loopback callers only, see
	// LoopbackCaller; others get 403) unless PublicFallback is set: the Broker ingress is mounted there, and in
	// Knative it is reachable from inside the cluster only.
	Fallback http.Handler
	// PublicFallback opens the Fallback to every caller (flag --public-broker-ingress).
	PublicFallback bool
	// Stats receives per-request start/end. Optional.
	Stats StatSink
	// Poker is poked when requests wait for a revision without capacity. Optional.
	Poker activator.Poker
	// Domains are the host suffixes routes answer on. Default DefaultDomains.
	Domains []string
	// ActivatorQueueDepth bounds requests held per revision. Default activator.DefaultQueueDepth.
	ActivatorQueueDepth int
	// MaxIdleConnsPerInstance is how many keep-alive connections to one instance are pooled. Default 256.
	MaxIdleConnsPerInstance int
	// Clock stamps stats. Default the real clock.
	Clock clock.PassiveClock
	// TimeoutClock drives the per-request responseStartTimeoutSeconds and idleTimeoutSeconds timers (tests step a
	// fake one). The revision's overall timeoutSeconds is the request context's deadline, on the real clock. Default
	// the real clock.
	TimeoutClock clock.WithDelayedExecution
	// Logger; the gateway adds component=serving/gateway. Default slog.Default().
	Logger *slog.Logger
	// TracerProvider records a server span per routed request and passes its W3C traceparent to the instance
	// (tracing.go). Nil: no spans; the client's traceparent reaches the instance unchanged.
	TracerProvider trace.TracerProvider
}

// Gateway is the data plane's http.Handler.
type Gateway struct {
	opts   Options
	clock  clock.PassiveClock
	log    *slog.Logger
	tracer trace.Tracer
	bufs   *bufferPool

	hosts atomic.Pointer[map[string]*hostRoute] // immutable; rebuilt on route changes

	mu     sync.Mutex // guards routes, revs and local
	routes map[types.NamespacedName][]Target
	revs   map[types.NamespacedName]*revision
	local  map[types.NamespacedName]bool // cluster-local routes (SetClusterLocal)

	metrics atomic.Pointer[Metrics] // SetMetrics (metrics.go); nil: nothing recorded
}

// hostRoute is what one host resolves to: weighted revisions (cumulative percent) or a single tagged one.
type hostRoute struct {
	revs []*revision
	cum  []int // cumulative percents; cum[len-1] == 100
	// clusterLocal: only loopback callers are served (the route is labelled cluster-local).
	clusterLocal bool
}

func (h *hostRoute) pick() *revision {
	if len(h.revs) == 1 {
		return h.revs[0]
	}
	n := rand.IntN(h.cum[len(h.cum)-1])
	for i, c := range h.cum {
		if n < c {
			return h.revs[i]
		}
	}
	return h.revs[len(h.revs)-1]
}

// New returns a Gateway with no routes.
func New(opts Options) *Gateway {
	if opts.Fallback == nil {
		opts.Fallback = http.NotFoundHandler()
	}
	if opts.Domains == nil {
		opts.Domains = DefaultDomains
	}
	if opts.MaxIdleConnsPerInstance <= 0 {
		opts.MaxIdleConnsPerInstance = 256
	}
	if opts.Clock == nil {
		opts.Clock = clock.RealClock{}
	}
	if opts.TimeoutClock == nil {
		opts.TimeoutClock = clock.RealClock{}
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	g := &Gateway{
		opts:   opts,
		clock:  opts.Clock,
		log:    opts.Logger.With("component", "serving/gateway"),
		tracer: newTracer(opts.TracerProvider),
		bufs:   newBufferPool(),
		routes: map[types.NamespacedName][]Target{},
		revs:   map[types.NamespacedName]*revision{},
		local:  map[types.NamespacedName]bool{},
	}
	empty := map[string]*hostRoute{}
	g.hosts.Store(&empty)
	return g
}

// Hosts returns the hosts a route answers on (tag "" for the route itself), the first being the URL host tide
// reports in status.url.
func (g *Gateway) Hosts(namespace, name, tag string) []string {
	base := name + "." + namespace
	if tag != "" {
		base = tag + "-" + base
	}
	out := make([]string, 0, len(g.opts.Domains))
	for _, d := range g.opts.Domains {
		if d == "" {
			out = append(out, base)
		} else {
			out = append(out, base+"."+d)
		}
	}
	return out
}

// SetRoute installs or replaces a route's traffic targets. Percents must each be in [0, 100] and sum to 100; tags
// must be unique. On error nothing changes.
func (g *Gateway) SetRoute(namespace, name string, targets []Target) error {
	sum := 0
	tags := map[string]bool{}
	for i, t := range targets {
		if t.Revision == "" {
			return fmt.Errorf("%w: spec.traffic[%d].revisionName: required", ErrInvalidRoute, i)
		}
		if t.Percent < 0 || t.Percent > 100 {
			return fmt.Errorf("%w: spec.traffic[%d].percent: %d is not in [0, 100]", ErrInvalidRoute, i, t.Percent)
		}
		if t.Tag != "" {
			if tags[t.Tag] {
				return fmt.Errorf("%w: spec.traffic[%d].tag: %q is used twice", ErrInvalidRoute, i, t.Tag)
			}
			tags[t.Tag] = true
		}
		sum += t.Percent
	}
	if sum != 100 {
		return fmt.Errorf("%w: spec.traffic: percents sum to %d, want 100", ErrInvalidRoute, sum)
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	g.routes[types.NamespacedName{Namespace: namespace, Name: name}] = append([]Target(nil), targets...)
	g.rebuildLocked()
	return nil
}

// DeleteRoute removes a route; its hosts then reach the fallback.
func (g *Gateway) DeleteRoute(namespace, name string) {
	g.mu.Lock()
	defer g.mu.Unlock()
	delete(g.routes, types.NamespacedName{Namespace: namespace, Name: name})
	delete(g.local, types.NamespacedName{Namespace: namespace, Name: name})
	g.rebuildLocked()
}

func (g *Gateway) rebuildLocked() {
	hosts := map[string]*hostRoute{}
	for rn, targets := range g.routes {
		main := &hostRoute{clusterLocal: g.local[rn]}
		total := 0
		for _, t := range targets {
			rev := g.revisionLocked(types.NamespacedName{Namespace: rn.Namespace, Name: t.Revision})
			if t.Percent > 0 {
				total += t.Percent
				main.revs = append(main.revs, rev)
				main.cum = append(main.cum, total)
			}
			if t.Tag != "" {
				tagged := &hostRoute{revs: []*revision{rev}, cum: []int{100}, clusterLocal: g.local[rn]}
				for _, h := range g.Hosts(rn.Namespace, rn.Name, t.Tag) {
					hosts[h] = tagged
				}
			}
		}
		for _, h := range g.Hosts(rn.Namespace, rn.Name, "") {
			hosts[h] = main
		}
	}
	g.hosts.Store(&hosts)
}

// revisionLocked returns the revision's state, creating it with defaults (no instances: requests are held).
func (g *Gateway) revisionLocked(key types.NamespacedName) *revision {
	if r, ok := g.revs[key]; ok {
		return r
	}
	r := newRevision(g, key, RevisionConfig{})
	g.revs[key] = r
	if tr, ok := g.opts.Stats.(Tracker); ok {
		tr.Track(key)
	}
	return r
}

// SetRevision configures a revision (creating its state if needed).
func (g *Gateway) SetRevision(key types.NamespacedName, cfg RevisionConfig) {
	g.mu.Lock()
	r := g.revisionLocked(key)
	g.mu.Unlock()
	r.configure(cfg)
}

// DeleteRevision forgets a revision. Routes should stop pointing at it first.
func (g *Gateway) DeleteRevision(key types.NamespacedName) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if r, ok := g.revs[key]; ok {
		if m := g.metrics.Load(); m != nil {
			m.forget(r)
		}
	}
	delete(g.revs, key)
	if tr, ok := g.opts.Stats.(Tracker); ok {
		tr.Forget(key)
	}
}

// AddBackend puts a ready instance of a revision into rotation.
func (g *Gateway) AddBackend(key types.NamespacedName, b activator.Backend) {
	g.mu.Lock()
	r := g.revisionLocked(key)
	g.mu.Unlock()
	r.add(b)
}

// RemoveBackend takes an instance out of rotation; its in-flight requests finish.
func (g *Gateway) RemoveBackend(key types.NamespacedName, b activator.Backend) {
	g.mu.Lock()
	r := g.revs[key]
	g.mu.Unlock()
	if r != nil {
		r.remove(b)
	}
}

// AttachPool keeps a revision's backends in step with a process.Pool: Ready instances join the rotation;
// NotReady, Draining and Gone ones leave it. It also applies the pool's containerConcurrency and timeout.
func (g *Gateway) AttachPool(key types.NamespacedName, p *process.Pool) (detach func()) {
	spec := p.Spec()
	cc := 0
	if c := spec.RevisionSpec.ContainerConcurrency; c != nil {
		cc = int(*c)
	}
	h2c := false
	for _, c := range spec.RevisionSpec.Containers {
		for _, port := range c.Ports {
			h2c = h2c || port.Name == "h2c"
		}
	}
	cfg := RevisionConfig{ContainerConcurrency: cc, Timeout: spec.Timeout(), H2C: h2c, Service: spec.Service, Configuration: spec.Configuration}
	if v := spec.RevisionSpec.ResponseStartTimeoutSeconds; v != nil {
		cfg.ResponseStartTimeout = time.Duration(*v) * time.Second
	}
	if v := spec.RevisionSpec.IdleTimeoutSeconds; v != nil {
		cfg.IdleTimeout = time.Duration(*v) * time.Second
	}
	g.SetRevision(key, cfg)
	return p.Subscribe(func(e process.Event) {
		switch e.Type {
		case process.InstanceReady:
			g.AddBackend(key, e.Instance)
		case process.InstanceNotReady, process.InstanceDraining, process.InstanceGone:
			g.RemoveBackend(key, e.Instance)
		}
	})
}

// SetActivatorInPath applies the autoscaler's decision for a revision (see activator.Throttler).
func (g *Gateway) SetActivatorInPath(key types.NamespacedName, in bool) {
	g.mu.Lock()
	r := g.revisionLocked(key)
	g.mu.Unlock()
	r.thr.SetActivatorInPath(in)
}

// RevisionStats is a revision's data-plane snapshot.
type RevisionStats struct {
	activator.Stats
	Requests uint64 `json:"requests"` // requests routed to the revision
	Errors   uint64 `json:"errors"`   // of which answered 5xx by the gateway or the instance
}

// Stats returns a revision's snapshot; ok is false for an unknown revision.
func (g *Gateway) Stats(key types.NamespacedName) (RevisionStats, bool) {
	g.mu.Lock()
	r := g.revs[key]
	g.mu.Unlock()
	if r == nil {
		return RevisionStats{}, false
	}
	return RevisionStats{Stats: r.thr.Stats(), Requests: r.requests.Load(), Errors: r.errors.Load()}, true
}

// lookup resolves a Host header (any port stripped, case-insensitive).
func (g *Gateway) lookup(host string) *hostRoute {
	if i := strings.LastIndexByte(host, ':'); i >= 0 && !strings.HasSuffix(host, "]") {
		host = host[:i]
	}
	hosts := *g.hosts.Load()
	if h, ok := hosts[host]; ok {
		return h
	}
	if h, ok := hosts[strings.ToLower(host)]; ok {
		return h
	}
	return nil
}

// ServeHTTP routes one request.
func (g *Gateway) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	h := g.lookup(r.Host)
	if h == nil {
		if !g.opts.PublicFallback && !LoopbackCaller(r.RemoteAddr) {
			refuseRemote(w, true)
			return
		}
		g.opts.Fallback.ServeHTTP(w, r)
		return
	}
	if h.clusterLocal && !LoopbackCaller(r.RemoteAddr) {
		refuseRemote(w, false)
		return
	}
	h.pick().serve(w, r)
}

// newTransport is tuned for many short requests to a loopback instance: keep-alive pooling deep enough for the
// concurrency the throttler admits, no compression negotiation, no proxies, fast dial failure.
func newTransport(maxIdle int, h2c bool, log *slog.Logger) *http.Transport {
	t := &http.Transport{
		Proxy:                 nil,
		DialContext:           traceDial(log, (&net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second}).DialContext),
		MaxIdleConns:          0,
		MaxIdleConnsPerHost:   maxIdle,
		IdleConnTimeout:       90 * time.Second,
		DisableCompression:    true,
		ExpectContinueTimeout: time.Second,
		ForceAttemptHTTP2:     false,
	}
	if h2c {
		// Prior-knowledge HTTP/2 over TCP: one multiplexed connection carries many streams.
		t.Protocols = new(http.Protocols)
		t.Protocols.SetUnencryptedHTTP2(true)
	}
	return t
}

// bufferPool lends ReverseProxy and forward their 32 KiB copy buffers. It pools *[]byte so that returning a
// buffer does not allocate (get/put, the hot path); Get/Put serve httputil.BufferPool.
type bufferPool struct{ p sync.Pool }

func newBufferPool() *bufferPool {
	return &bufferPool{p: sync.Pool{New: func() any { b := make([]byte, 32<<10); return &b }}}
}
func (b *bufferPool) get() *[]byte  { return b.p.Get().(*[]byte) }
func (b *bufferPool) put(x *[]byte) { b.p.Put(x) }
func (b *bufferPool) Get() []byte   { return *b.get() }
func (b *bufferPool) Put(x []byte)  { b.p.Put(&x) }

var _ httputil.BufferPool = (*bufferPool)(nil)
