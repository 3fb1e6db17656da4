package runtime

import (
	"context"
	"errors"
	"fmt"
	"go.opentelemetry.io/otel/trace"
	"log/slog"
	"net"
	"net/http"
	"path/filepath"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"k8s.io/apimachinery/pkg/types"
	"k8s.io/utils/clock"
	"knative.dev/pkg/apis"

	"github.com/tide-run/tide/controlplane/reconciler"
	"github.com/tide-run/tide/controlplane/store"
	"github.com/tide-run/tide/serving/autoscaler"
	"github.com/tide-run/tide/serving/autoscaler/config"
	"github.com/tide-run/tide/serving/autoscaler/metrics"
	"github.com/tide-run/tide/serving/gateway"
	"github.com/tide-run/tide/serving/process"
	servingrec "github.com/tide-run/tide/serving/reconciler"
)

// Sentinel errors.
var (
	// ErrOptions: a required option is missing.
	ErrOptions = errors.New("serving runtime: invalid options")
	// ErrNotFound: no revision or service of that name is running (logs).
	ErrNotFound = errors.New("not found")
)

// SourceDirAnnotation records the directory `tide apply` ran in, where ko:// import paths are resolved.
const SourceDirAnnotation = "tide.dev/source-dir"

// Knative's cluster-wide autoscaler configuration: a ConfigMap of this name in this namespace, Knative's keys.
const (
	AutoscalerConfigMap       = "config-autoscaler"
	AutoscalerConfigNamespace = "knative-serving"
)

// ProgressDeadlineAnnotation is Knative's per-revision progress deadline (how long an instance may take to become
// ready before the revision is reported failed).
const ProgressDeadlineAnnotation = "serving.knative.dev/progress-deadline"

// Options configures a Runtime.
type Options struct {
	// Store holds the serving resources. Required.
	Store *store.Store
	// DataDir receives instance logs (DataDir/logs) and, unless BuildCacheDir is set, ko:// builds
	// (DataDir/build). Required.
	DataDir string
	// BuildCacheDir holds built ko:// binaries, cached by content. Default DataDir/build.
	BuildCacheDir string
	// SourceDir is where ko:// import paths are resolved for revisions without a tide.dev/source-dir annotation.
	// Default: the working directory.
	SourceDir string
	// Host and Port are where the gateway listens; Port is used for status URLs until Serve knows the bound port.
	Host string
	Port int
	// Clock drives the stat reporting and the autoscaler. Default the real clock.
	Clock clock.WithTicker
	// AutoscalerTick is the interval between decisions. Default 2s (Knative's).
	AutoscalerTick time.Duration
	// ReportInterval is how often per-revision stats are recorded. Default 1s (queue-proxy's).
	ReportInterval time.Duration
	// Logger; components add their own attribute. Default slog.Default().
	Logger *slog.Logger
	// RunAs is the user instances run as (nil: tide's own user). tide up sets it from --instance-user when it runs
	// as root.
	RunAs *process.RunAs
	// PublicBrokerIngress opens the gateway's fallback (the Broker ingress) to every caller; by default only
	// loopback callers reach it, as a Knative Broker's ingress is cluster-local.
	PublicBrokerIngress bool
	// TracerProvider records the gateway's spans (serving/gateway/tracing.go); nil: none.
	TracerProvider trace.TracerProvider
}

// Runtime is the serving subsystem: gateway, autoscaler and one process pool per Revision.
type Runtime struct {
	opts    Options
	instDir string // root of per-instance directories (process.InstanceRoot)
	st      *store.Store
	log     *slog.Logger
	clock   clock.WithTicker
	builder *process.Builder
	gw      *gateway.Gateway
	coll    *metrics.Collector
	ms      *autoscaler.Multiscaler
	recons  atomic.Pointer[reconciler.Manager]
	sw      reconciler.StatusWriter
	stats   *statSink

	fallback atomic.Pointer[http.Handler]
	port     atomic.Int64
	started  atomic.Bool

	cfgMu  sync.Mutex // guards cfgRV, cfg and cfgErr
	cfgRV  string
	cfg    config.Config
	cfgErr error

	mu         sync.Mutex // guards revs and programmed
	revs       map[types.NamespacedName]*revision
	programmed map[types.NamespacedName][]gateway.Target

	srv      *gateway.Server
	addr     atomic.Pointer[string] // the gateway's bound address once serving
	stop     chan struct{}
	loopDone chan struct{}
}

// New builds the runtime; nothing runs until Serve and the reconcilers are registered with Register.
func New(opts Options) (*Runtime, error) {
	if opts.Store == nil || opts.DataDir == "" {
		return nil, fmt.Errorf("%w: Store and DataDir are required", ErrOptions)
	}
	// Absolute paths only: builds run in the source folder, instances in their own directories.
	abs, err := filepath.Abs(opts.DataDir)
	if err != nil {
		return nil, fmt.Errorf("%w: DataDir: %w", ErrOptions, err)
	}
	opts.DataDir = abs
	if opts.BuildCacheDir == "" {
		opts.BuildCacheDir = filepath.Join(opts.DataDir, "build")
	}
	if opts.Clock == nil {
		opts.Clock = clock.RealClock{}
	}
	if opts.ReportInterval <= 0 {
		opts.ReportInterval = time.Second
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	if opts.Host == "" {
		opts.Host = "127.0.0.1"
	}
	b, err := process.NewBuilder(process.BuilderOptions{CacheDir: opts.BuildCacheDir, Logger: opts.Logger})
	if err != nil {
		return nil, err
	}
	instDir, err := process.InstanceRoot(opts.DataDir, opts.RunAs)
	if err != nil {
		return nil, err
	}
	rt := &Runtime{
		opts:       opts,
		instDir:    instDir,
		st:         opts.Store,
		log:        opts.Logger.With("component", "serving/runtime"),
		clock:      opts.Clock,
		builder:    b,
		coll:       metrics.NewCollector(),
		sw:         reconciler.StatusWriter{Store: opts.Store, Clock: opts.Clock},
		cfg:        config.Defaults(),
		revs:       map[types.NamespacedName]*revision{},
		programmed: map[types.NamespacedName][]gateway.Target{},
		stop:       make(chan struct{}),
		loopDone:   make(chan struct{}),
	}
	rt.port.Store(int64(opts.Port))
	nf := http.Handler(http.NotFoundHandler())
	rt.fallback.Store(&nf)
	stats := &statSink{rt: rt}
	rt.stats = stats
	rt.gw = gateway.New(gateway.Options{
		Fallback:       http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { (*rt.fallback.Load()).ServeHTTP(w, r) }),
		PublicFallback: opts.PublicBrokerIngress,
		Stats:          stats,
		Poker:          poker{rt},
		Clock:          opts.Clock,
		Logger:         opts.Logger,
		TracerProvider: opts.TracerProvider,
	})
	ms, err := autoscaler.NewMultiscaler(autoscaler.Options{
		Collector:    rt.coll,
		Ready:        autoscaler.ReadyCounterFunc(rt.readyInstances),
		Scaler:       autoscaler.ScalerFunc(rt.setDesired),
		Clock:        opts.Clock,
		TickInterval: opts.AutoscalerTick,
		Logger:       opts.Logger,
	})
	if err != nil {
		return nil, err
	}
	rt.ms = ms
	return rt, nil
}

// SetFallback sets the handler for gateway hosts that match no Knative Service (the broker ingress). Safe at any
// time; meant to be called before Serve.
func (rt *Runtime) SetFallback(h http.Handler) {
	if h == nil {
		h = http.NotFoundHandler()
	}
	rt.fallback.Store(&h)
}

// Gateway is the data plane handler (for tests and benchmarks).
func (rt *Runtime) Gateway() *gateway.Gateway { return rt.gw }

// Register installs the serving reconcilers on m: Service, Configuration and Route from
// serving/reconciler with the gateway's URLs and ingress hook, and the runtime's Revision reconciler.
// Call before m.Run.
func (rt *Runtime) Register(m *reconciler.Manager) {
	rt.recons.Store(m)
	servingrec.Register(m, servingrec.Options{Store: rt.st, Clock: rt.clock, URL: rt.url, Ingress: rt.ingress})
	inner := &servingrec.RouteReconciler{Store: rt.st, Status: rt.sw, URL: rt.url, Ingress: rt.ingress}
	m.Register(reconciler.Registration{GroupKind: servingrec.RouteGK,
		Reconciler: reconciler.Func(func(ctx context.Context, key reconciler.Key) error {
			if _, err := rt.st.Get(servingrec.RouteGK, key.Namespace, key.Name); errors.Is(err, store.ErrNotFound) {
				rt.deleteRoute(key)
				return nil
			}
			return inner.Reconcile(ctx, key)
		}),
		Watches: []reconciler.Watch{
			{GroupKind: servingrec.ConfigurationGK, Map: reconciler.AllInNamespace(rt.st, servingrec.RouteGK)},
			{GroupKind: servingrec.RevisionGK, Map: reconciler.AllInNamespace(rt.st, servingrec.RouteGK)},
		}})
	m.Register(reconciler.Registration{GroupKind: servingrec.RevisionGK,
		Reconciler: reconciler.Func(rt.reconcileRevision),
		Workers:    2,
		Watches: []reconciler.Watch{
			// Reachability follows the routes and the configurations' latest revision.
			{GroupKind: servingrec.RouteGK, Map: reconciler.AllInNamespace(rt.st, servingrec.RevisionGK)},
			{GroupKind: servingrec.ConfigurationGK, Map: reconciler.AllInNamespace(rt.st, servingrec.RevisionGK)},
			// Cluster-wide autoscaler defaults apply to every revision.
			{GroupKind: "ConfigMap", Map: rt.allRevisionsOnConfig},
		}})
}

func (rt *Runtime) allRevisionsOnConfig(e store.Event) []reconciler.Key {
	if e.Object.GetNamespace() != AutoscalerConfigNamespace || e.Object.GetName() != AutoscalerConfigMap {
		return nil
	}
	objs, _, err := rt.st.List(servingrec.RevisionGK, "")
	if err != nil {
		return nil
	}
	keys := make([]reconciler.Key, 0, len(objs))
	for _, o := range objs {
		keys = append(keys, reconciler.Key{Namespace: o.GetNamespace(), Name: o.GetName()})
	}
	return keys
}

// Port is the gateway's bound port (the configured one before Serve).
func (rt *Runtime) Port() int { return int(rt.port.Load()) }

// url is a Route's (or tag's) external URL: http://<name>.<ns>.localhost:<gateway port>. curl and browsers resolve
// *.localhost to the loopback address; other clients connect to the gateway and send this Host.
func (rt *Runtime) url(name, namespace string) *apis.URL {
	host := name + "." + namespace + ".localhost"
	if p := rt.Port(); p != 80 {
		host += ":" + strconv.Itoa(p)
	}
	return &apis.URL{Scheme: "http", Host: host}
}

// Serve starts serving the gateway on l (which the caller bound, so a busy port is reported with its flag) and
// the per-second stat loop. It returns at once.
func (rt *Runtime) Serve(l net.Listener) {
	if tcp, ok := l.Addr().(*net.TCPAddr); ok {
		rt.port.Store(int64(tcp.Port))
	}
	// The gateway's Server: a lean HTTP/1.1 path for plain requests, this net/http server for everything else.
	rt.srv = gateway.NewServer(rt.gw, &http.Server{Handler: rt.gw, ReadHeaderTimeout: 10 * time.Second})
	a := l.Addr().String()
	rt.addr.Store(&a)
	rt.started.Store(true)
	go func() {
		if err := rt.srv.Serve(l); err != nil && !errors.Is(err, http.ErrServerClosed) {
			rt.log.Error("gateway stopped", "err", err)
		}
	}()
	go rt.loop()
}

// Addr is the gateway's listen address once serving.
func (rt *Runtime) Addr() string {
	if a := rt.addr.Load(); a != nil {
		return *a
	}
	return ""
}

// Ready reports whether the gateway serves.
func (rt *Runtime) Ready() error {
	if !rt.started.Load() {
		return errors.New("gateway not started")
	}
	return nil
}

// Shutdown stops the gateway gracefully (in-flight requests finish, within ctx), the autoscaler, then every
// pool: instances are drained, sent SIGTERM, and killed after their grace period or when ctx ends. No process is
// left running when it returns.
func (rt *Runtime) Shutdown(ctx context.Context) error {
	var errs []error
	if rt.srv != nil {
		if err := rt.srv.Shutdown(ctx); err != nil {
			errs = append(errs, fmt.Errorf("gateway: %w", err))
			_ = rt.srv.Close()
		}
		close(rt.stop)
		<-rt.loopDone
	}
	rt.ms.Close()
	rt.mu.Lock()
	revs := make([]*revision, 0, len(rt.revs))
	for k, r := range rt.revs {
		revs = append(revs, r)
		delete(rt.revs, k)
	}
	rt.mu.Unlock()
	var wg sync.WaitGroup
	var emu sync.Mutex
	for _, r := range revs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r.detach()
			if err := r.pool.Close(ctx); err != nil {
				emu.Lock()
				errs = append(errs, fmt.Errorf("revision %s: %w", r.key, err))
				emu.Unlock()
			}
		}()
	}
	wg.Wait()
	return errors.Join(errs...)
}

// Instances lists the running instances of a revision (nil for an unknown revision).
func (rt *Runtime) Instances(namespace, revision string) []process.InstanceInfo {
	r := rt.lookup(types.NamespacedName{Namespace: namespace, Name: revision})
	if r == nil {
		return nil
	}
	return r.pool.Instances()
}
