package dashboard

import (
	"context"
	"embed"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net/http"
	"regexp"
	"strconv"
	"sync"
	"time"

	"k8s.io/utils/clock"
)

//go:embed assets
var assets embed.FS

// Options configures a Dashboard. Zero values take the documented defaults.
type Options struct {
	// Resources lists the objects to show. When nil and API is set, the dashboard lists and watches the control-plane
	// API at that base URL itself (see APIResources) and owns that watcher's lifecycle. When both are empty the
	// resource tables stay empty.
	Resources ResourceSource
	// API is the control-plane API base URL, e.g. "http://127.0.0.1:8090"; used only when Resources is nil.
	API string
	// APIURL, when set (and Resources is nil), is called once by Start for the API base URL, for a composition root
	// that learns its own address only when it listens (port 0). It takes precedence over API.
	APIURL func() string
	// Namespaces watched through API; default all namespaces (see APIOptions.Namespaces).
	Namespaces []string
	// APIToken is sent to API as a bearer token (APIOptions.Token), for an API that requires one.
	APIToken string
	// APIClient makes the requests to API (APIOptions.Client, e.g. one that trusts the API's certificate);
	// default APIOptions' default.
	APIClient *http.Client
	// Metrics is sampled every Interval; nil shows empty charts (use MergeMetrics to combine subsystems).
	Metrics MetricsSource
	// Logs serves the recent-logs panel; nil hides it.
	Logs LogSource
	// Clock drives sampling. Default the real clock; tests pass a clock/testing.FakeClock.
	Clock clock.WithTicker
	// Interval between samples. Default 1 s.
	Interval time.Duration
	// History is how far back the charts reach; the dashboard keeps History/Interval samples. Default 15 min.
	History time.Duration
	// Logger, default slog.Default(); records carry component=dashboard.
	Logger *slog.Logger
}

// Dashboard serves the UI and its data. It implements http.Handler; mount it at "/" (it answers "/", "/index.html"
// and everything under "/dashboard/", and 404 elsewhere, so API routes registered more specifically win).
type Dashboard struct {
	opts      Options
	log       *slog.Logger
	mux       *http.ServeMux
	ownedAPI  *APIResources // non-nil when the dashboard created the resource watcher itself
	resources ResourceSource

	cancel context.CancelFunc
	wg     sync.WaitGroup
	done   chan struct{} // closed by Shutdown; ends every open stream

	// counters is touched only by the sampling goroutine (and by Start before it runs).
	counters counters

	mu          sync.Mutex // guards everything below
	started     bool
	taken       int          // samples attempted since Start, for tests stepping a fake clock
	history     ring         // encoded Samples, oldest first
	resJSON     []byte       // last encoded resources event
	status      streamStatus // last errors, shown as a banner
	subscribers map[*subscriber]struct{}
}

// streamStatus is what the page shows when a source fails.
type streamStatus struct {
	MetricsError   string `json:"metricsError"`
	ResourcesError string `json:"resourcesError"`
}

// ErrAlreadyStarted is returned by a second Start.
var ErrAlreadyStarted = errors.New("dashboard: already started")

// New validates opts and builds a Dashboard; call Start to begin sampling.
func New(opts Options) (*Dashboard, error) {
	if opts.Clock == nil {
		opts.Clock = clock.RealClock{}
	}
	if opts.Interval <= 0 {
		opts.Interval = time.Second
	}
	if opts.History <= 0 {
		opts.History = 15 * time.Minute
	}
	if opts.History < opts.Interval {
		return nil, fmt.Errorf("dashboard: Options.History %s is shorter than Options.Interval %s", opts.History, opts.Interval)
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	d := &Dashboard{
		opts:        opts,
		log:         opts.Logger.With("component", "dashboard"),
		done:        make(chan struct{}),
		history:     newRing(int(opts.History / opts.Interval)),
		subscribers: map[*subscriber]struct{}{},
		resources:   opts.Resources,
		resJSON:     []byte(`{"items":[],"error":""}`),
	}
	if d.resources == nil && opts.APIURL == nil && opts.API != "" {
		if err := d.watchAPI(opts.API); err != nil {
			return nil, fmt.Errorf("dashboard: Options.API: %w", err)
		}
	}
	static, err := fs.Sub(assets, "assets")
	if err != nil {
		return nil, fmt.Errorf("dashboard: embedded assets: %w", err)
	}
	d.mux = http.NewServeMux()
	d.mux.HandleFunc("GET /{$}", d.serveIndex)
	d.mux.HandleFunc("GET /index.html", d.serveIndex)
	d.mux.HandleFunc("GET /dashboard/{$}", d.serveIndex)
	d.mux.HandleFunc("GET /dashboard/traces", serveTracesPage)     // traces.go
	d.mux.HandleFunc("GET /dashboard/messages", serveMessagesPage) // messages.go
	d.mux.Handle("GET /dashboard/static/", noCache(http.StripPrefix("/dashboard/static/", http.FileServerFS(static))))
	d.mux.HandleFunc("GET /dashboard/api/state", d.serveState)
	d.mux.HandleFunc("GET /dashboard/api/stream", d.serveStream)
	d.mux.HandleFunc("GET /dashboard/api/logs", d.serveLogs)
	return d, nil
}

// Start takes the first sample at once, then one per Interval until Shutdown. It returns after the first sample, so
// a page opened right after Start already has a point to draw.
func (d *Dashboard) Start(ctx context.Context) error {
	d.mu.Lock()
	if d.started {
		d.mu.Unlock()
		return ErrAlreadyStarted
	}
	d.started = true
	d.mu.Unlock()

	ctx, d.cancel = context.WithCancel(context.WithoutCancel(ctx))
	if d.resources == nil && d.opts.APIURL != nil {
		if err := d.watchAPI(d.opts.APIURL()); err != nil {
			d.cancel()
			d.mu.Lock()
			d.started = false // nothing runs yet; a corrected retry may Start again
			d.mu.Unlock()
			return fmt.Errorf("dashboard: Options.APIURL: %w", err)
		}
	}
	if d.ownedAPI != nil {
		if err := d.ownedAPI.Start(ctx); err != nil {
			return fmt.Errorf("dashboard: start resource watch: %w", err)
		}
	}
	// The ticker exists before Start returns, so a test stepping a fake clock right after Start cannot miss it.
	ticker := d.opts.Clock.NewTicker(d.opts.Interval)
	d.sample(ctx)
	d.wg.Add(1)
	go func() {
		defer d.wg.Done()
		defer ticker.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-ticker.C():
				d.sample(ctx)
			}
		}
	}()
	return nil
}

// watchAPI makes the dashboard's resource source a watch of the API at base, owned by the dashboard. It runs
// before the sampling goroutine exists (New or Start), so d.resources needs no lock.
func (d *Dashboard) watchAPI(base string) error {
	a, err := NewAPIResources(APIOptions{BaseURL: base, Namespaces: d.opts.Namespaces, Token: d.opts.APIToken, Client: d.opts.APIClient, Logger: d.opts.Logger})
	if err != nil {
		return err
	}
	d.ownedAPI, d.resources = a, a
	return nil
}

// Ready reports whether Start has run and Shutdown has not.
func (d *Dashboard) Ready() bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	select {
	case <-d.done:
		return false
	default:
		return d.started
	}
}

// Shutdown stops sampling, ends every open stream, and stops the resource watch it owns.
func (d *Dashboard) Shutdown(ctx context.Context) error {
	d.mu.Lock()
	select {
	case <-d.done:
		d.mu.Unlock()
		return nil
	default:
		close(d.done)
	}
	d.mu.Unlock()
	if d.cancel != nil {
		d.cancel()
	}
	done := make(chan struct{})
	go func() { d.wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-ctx.Done():
		return ctx.Err()
	}
	if d.ownedAPI != nil {
		return d.ownedAPI.Shutdown(ctx)
	}
	return nil
}

// ServeHTTP implements http.Handler.
func (d *Dashboard) ServeHTTP(w http.ResponseWriter, r *http.Request) { d.mux.ServeHTTP(w, r) }

// sample takes one sample and pushes it, plus any change of resources or status, to every subscriber.
func (d *Dashboard) sample(ctx context.Context) {
	sctx, cancel := context.WithTimeout(ctx, d.opts.Interval)
	defer cancel()
	var snap Snapshot
	var st streamStatus
	if d.opts.Metrics != nil {
		var err error
		if snap, err = d.opts.Metrics.Snapshot(sctx); err != nil {
			st.MetricsError = err.Error()
		}
	}
	var resJSON []byte
	if d.resources != nil {
		items, err := d.resources.Resources(sctx)
		if err != nil {
			st.ResourcesError = err.Error()
		}
		if items == nil {
			items = []Resource{}
		}
		resJSON = mustJSON(struct {
			Items []Resource `json:"items"`
			Error string     `json:"error"`
		}{items, st.ResourcesError})
	}
	now := d.opts.Clock.Now()
	// A failed snapshot yields no sample (a gap on the charts, not made-up zeros); a partial one (some sources of
	// MergeMetrics failed) is drawn, with the error shown beside it.
	var sampleJSON []byte
	if st.MetricsError == "" || !snap.empty() {
		sampleJSON = mustJSON(d.counters.buildSample(now, snap))
	}

	d.mu.Lock()
	defer d.mu.Unlock()
	d.taken++
	if st != d.status {
		if st.MetricsError != "" && st.MetricsError != d.status.MetricsError {
			d.log.Warn("metrics source failing", "err", st.MetricsError)
		}
		d.status = st
		d.broadcastLocked("status", mustJSON(st))
	}
	if resJSON != nil && string(resJSON) != string(d.resJSON) {
		d.resJSON = resJSON
		d.broadcastLocked("resources", resJSON)
	}
	if sampleJSON != nil {
		d.history.push(sampleJSON)
		d.broadcastLocked("sample", sampleJSON)
	}
}

func (d *Dashboard) samplesTaken() int {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.taken
}

// stateLocked is the whole picture a page starts from. Caller holds d.mu.
func (d *Dashboard) stateLocked() []byte {
	return mustJSON(struct {
		Interval  int64             `json:"interval"` // ms
		Window    int64             `json:"window"`   // ms
		Now       int64             `json:"now"`
		Logs      bool              `json:"logs"` // whether a LogSource is wired
		Samples   []json.RawMessage `json:"samples"`
		Resources json.RawMessage   `json:"resources"`
		Status    streamStatus      `json:"status"`
	}{
		d.opts.Interval.Milliseconds(), d.opts.History.Milliseconds(), d.opts.Clock.Now().UnixMilli(),
		d.opts.Logs != nil, d.history.ordered(), d.resJSON, d.status,
	})
}

func (d *Dashboard) serveIndex(w http.ResponseWriter, r *http.Request) {
	b, err := assets.ReadFile("assets/index.html")
	if err != nil {
		http.Error(w, "index missing from the build", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-cache")
	_, _ = w.Write(b)
}

func (d *Dashboard) serveState(w http.ResponseWriter, r *http.Request) {
	d.mu.Lock()
	b := d.stateLocked()
	d.mu.Unlock()
	writeJSON(w, http.StatusOK, json.RawMessage(b))
}

// dnsLabel is a Kubernetes name segment (RFC 1123 label), the shape of namespace and service names.
var dnsLabel = regexp.MustCompile(`^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$`)

func (d *Dashboard) serveLogs(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	ns := q.Get("namespace")
	if ns == "" {
		ns = "default"
	}
	svc := q.Get("service")
	limit := 200
	var problem string
	switch {
	case !dnsLabel.MatchString(ns):
		problem = fmt.Sprintf("query parameter namespace: %q is not a DNS-1123 label", ns)
	case !dnsLabel.MatchString(svc):
		problem = fmt.Sprintf("query parameter service: %q is not a DNS-1123 label (required)", svc)
	case q.Get("limit") != "":
		n, err := strconv.Atoi(q.Get("limit"))
		if err != nil || n < 1 || n > 5000 {
			problem = fmt.Sprintf("query parameter limit: %q is not an integer in 1..5000", q.Get("limit"))
		}
		limit = n
	}
	if problem != "" {
		writeJSON(w, http.StatusBadRequest, map[string]string{"error": problem})
		return
	}
	if d.opts.Logs == nil {
		writeJSON(w, http.StatusOK, map[string]any{"available": false, "lines": []LogLine{}})
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), 5*time.Second)
	defer cancel()
	lines, err := d.opts.Logs.Logs(ctx, ns, svc, limit)
	if err != nil {
		d.log.Warn("log source failed", "namespace", ns, "service", svc, "err", err)
		writeJSON(w, http.StatusBadGateway, map[string]string{"error": err.Error()})
		return
	}
	if len(lines) > limit {
		lines = lines[len(lines)-limit:]
	}
	if lines == nil {
		lines = []LogLine{}
	}
	writeJSON(w, http.StatusOK, map[string]any{"available": true, "lines": lines})
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(v)
}

// mustJSON encodes values the package builds itself (no channels, funcs or cycles), so an error is a programming
// mistake.
func mustJSON(v any) []byte {
	b, err := json.Marshal(v)
	if err != nil {
		panic(fmt.Sprintf("dashboard: encode %T: %v", v, err))
	}
	return b
}

func noCache(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "no-cache")
		h.ServeHTTP(w, r)
	})
}

// ring keeps the last n encoded samples. Not safe for concurrent use; Dashboard.mu guards it.
type ring struct {
	buf   []json.RawMessage
	start int // index of the oldest element
	n     int // number of elements
}

func newRing(capacity int) ring { return ring{buf: make([]json.RawMessage, max(capacity, 1))} }

func (r *ring) push(v json.RawMessage) {
	if r.n < len(r.buf) {
		r.buf[(r.start+r.n)%len(r.buf)] = v
		r.n++
		return
	}
	r.buf[r.start] = v
	r.start = (r.start + 1) % len(r.buf)
}

// ordered returns the elements oldest first, as a new slice.
func (r *ring) ordered() []json.RawMessage {
	out := make([]json.RawMessage, 0, r.n)
	for i := 0; i < r.n; i++ {
		out = append(out, r.buf[(r.start+i)%len(r.buf)])
	}
	return out
}

// ErrNotReady is returned by Subsystem.Ready before Start and after Shutdown.
var ErrNotReady = errors.New("dashboard: not started")

// Subsystem is the Dashboard seen by a composition root whose subsystems have a Name and report readiness as an
// error (tide's server.Subsystem). It adds nothing else.
type Subsystem struct{ d *Dashboard }

// Subsystem returns the Dashboard as a Subsystem.
func (d *Dashboard) Subsystem() Subsystem { return Subsystem{d} }

// Name is "dashboard".
func (s Subsystem) Name() string { return "dashboard" }

// Start starts sampling (Dashboard.Start).
func (s Subsystem) Start(ctx context.Context) error { return s.d.Start(ctx) }

// Ready is nil between Start and Shutdown, else ErrNotReady.
func (s Subsystem) Ready() error {
	if !s.d.Ready() {
		return ErrNotReady
	}
	return nil
}

// Shutdown stops sampling and ends open streams (Dashboard.Shutdown).
func (s Subsystem) Shutdown(ctx context.Context) error { return s.d.Shutdown(ctx) }
