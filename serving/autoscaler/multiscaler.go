package autoscaler

import (
	"errors"
	"fmt"
	"log/slog"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"k8s.io/utils/clock"

	"github.com/tide-run/tide/serving/autoscaler/config"
	"github.com/tide-run/tide/serving/autoscaler/metrics"
)

// Sentinel errors of the Multiscaler.
var (
	// ErrClosed: the Multiscaler was closed.
	ErrClosed = errors.New("autoscaler: multiscaler closed")
	// ErrOptions: a required option is missing or invalid.
	ErrOptions = errors.New("autoscaler: invalid options")
)

// Scaler is implemented by the data plane: run `desired` instances of revision, and send its requests
// through the activator (activatorInPath) or straight to its instances. It is called from the revision's
// decision goroutine, once when the revision is added and then whenever either value changes; calls for one
// revision never overlap, and no Multiscaler lock is held during the call. It must not block for long (start
// processes asynchronously) and must not call Multiscaler.Close (which waits for that goroutine).
type Scaler interface {
	SetDesired(revision string, desired int32, activatorInPath bool)
}

// ReadyCounter reports how many instances of a revision are ready (passing readiness, accepting requests).
type ReadyCounter interface {
	ReadyInstances(revision string) int
}

// MetricSource supplies window averages; *metrics.Collector implements it. Errors wrapping
// metrics.ErrNoData mean "nothing to decide on yet" and keep the previous recommendation.
type MetricSource interface {
	StableAndPanicConcurrency(revision string, now time.Time) (stable, panic float64, err error)
	StableAndPanicRPS(revision string, now time.Time) (stable, panic float64, err error)
}

// StatRecorder is what the data plane reports to: both *metrics.Collector and *Multiscaler implement it
// (prefer the Multiscaler: it also pokes a revision at zero when a stat shows requests).
type StatRecorder interface {
	Record(revision string, now time.Time, stat metrics.Stat)
}

var (
	_ MetricSource = (*metrics.Collector)(nil)
	_ StatRecorder = (*metrics.Collector)(nil)
	_ StatRecorder = (*Multiscaler)(nil)
)

// ScalerFunc adapts a function to Scaler.
type ScalerFunc func(revision string, desired int32, activatorInPath bool)

// SetDesired calls f.
func (f ScalerFunc) SetDesired(revision string, desired int32, activatorInPath bool) {
	f(revision, desired, activatorInPath)
}

// ReadyCounterFunc adapts a function to ReadyCounter.
type ReadyCounterFunc func(revision string) int

// ReadyInstances calls f.
func (f ReadyCounterFunc) ReadyInstances(revision string) int { return f(revision) }

// Options configure a Multiscaler.
type Options struct {
	// Collector receives the stats (Multiscaler.Record forwards to it) and is told each revision's windows.
	// Required.
	Collector *metrics.Collector
	// Metrics is where averages are read; nil means Collector.
	Metrics MetricSource
	// Ready counts ready instances. Required.
	Ready ReadyCounter
	// Scaler is told the decisions. Required.
	Scaler Scaler
	// Clock drives the tickers and stamps decisions; nil means the real clock. Tests pass a FakeClock.
	Clock clock.WithTicker
	// TickInterval between decisions of one revision; 0 means DefaultTickInterval (2 s).
	TickInterval time.Duration
	// OnDecision, if set, is called after every decision (from the revision's goroutine), e.g. to publish
	// status or metrics.
	OnDecision func(revision string, d Decision)
	// Logger; nil means slog.Default(). A component=autoscaler attribute is added.
	Logger *slog.Logger
}

// Multiscaler runs one Autoscaler per revision, each on its own ticker goroutine. Safe for concurrent use.
//
// mu guards runners and closed. Each runner's own mu guards its Autoscaler and the last values sent to the
// Scaler; only the runner's goroutine calls the Scaler, so calls for one revision are ordered.
type Multiscaler struct {
	opts Options
	log  *slog.Logger

	mu      sync.Mutex
	runners map[string]*runner
	closed  bool
	wg      sync.WaitGroup
}

type runner struct {
	rev    string
	ticker clock.Ticker
	poke   chan struct{} // capacity 1: pokes coalesce
	stop   chan struct{}
	// demand is set by Poke at zero: a request is waiting at the activator. The next decision counts it as
	// one concurrent request, so scale-from-zero works even if the activator reports no stat of its own.
	demand atomic.Bool

	mu       sync.Mutex
	a        *Autoscaler
	notified bool
	desired  int32
	inPath   bool
}

// NewMultiscaler validates the options and returns an idle Multiscaler.
func NewMultiscaler(opts Options) (*Multiscaler, error) {
	if opts.Collector == nil || opts.Ready == nil || opts.Scaler == nil {
		return nil, fmt.Errorf("%w: Collector, Ready and Scaler are required", ErrOptions)
	}
	if opts.TickInterval < 0 {
		return nil, fmt.Errorf("%w: TickInterval %v is negative", ErrOptions, opts.TickInterval)
	}
	if opts.TickInterval == 0 {
		opts.TickInterval = DefaultTickInterval
	}
	if opts.Metrics == nil {
		opts.Metrics = opts.Collector
	}
	if opts.Clock == nil {
		opts.Clock = clock.RealClock{}
	}
	log := opts.Logger
	if log == nil {
		log = slog.Default()
	}
	return &Multiscaler{opts: opts, log: log.With("component", "autoscaler"), runners: map[string]*runner{}}, nil
}

// Add starts autoscaling revision with settings, or updates the settings of a revision already added. A new
// revision immediately gets one SetDesired with its initial scale (the initial scale, or the ready count if
// instances are already running), then a decision every tick.
func (m *Multiscaler) Add(revision string, s config.Settings) error {
	if err := s.Validate(); err != nil {
		return fmt.Errorf("autoscaler: add %q: %w", revision, err)
	}
	now := m.opts.Clock.Now()
	ready := m.opts.Ready.ReadyInstances(revision) // outside m.mu: the counter may be slow
	win := metrics.Window{Stable: s.StableWindow, Panic: s.PanicWindow, NoDataIsZero: s.TargetBurstCapacity == -1,
		Weighted: s.AggregationAlgorithm == config.AlgorithmWeightedExponential ||
			s.AggregationAlgorithm == config.AlgorithmWeightedExponentialAlt}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return ErrClosed
	}
	if err := m.opts.Collector.Watch(revision, now, win); err != nil {
		return fmt.Errorf("autoscaler: add %q: %w", revision, err)
	}
	if r, ok := m.runners[revision]; ok {
		r.mu.Lock()
		r.a.Update(s)
		r.mu.Unlock()
		r.kick() // decide with the new settings now
		return nil
	}
	r := &runner{
		rev: revision,
		// The ticker is created here, not in the goroutine, so a fake clock stepped right after Add fires it.
		ticker: m.opts.Clock.NewTicker(m.opts.TickInterval),
		poke:   make(chan struct{}, 1),
		stop:   make(chan struct{}),
		a:      NewAutoscaler(s, now, ready),
	}
	m.runners[revision] = r
	m.wg.Add(1)
	go m.loop(r)
	return nil
}

// Remove stops autoscaling revision and drops its metrics. The Scaler is not called for it afterwards
// (except possibly by one decision already running).
func (m *Multiscaler) Remove(revision string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if r, ok := m.runners[revision]; ok {
		close(r.stop)
		delete(m.runners, revision)
		m.opts.Collector.Forget(revision)
	}
}

// Poke tells the autoscaler that a request is waiting at the activator for revision. If the revision is at
// zero it decides at once (counting the waiting request as one concurrent request if no stat shows it),
// instead of at its next tick; otherwise the poke is ignored and the next tick decides, as in Knative (extra
// decisions would multiply the per-decision scale-up rate). It never blocks; pokes coalesce.
func (m *Multiscaler) Poke(revision string) {
	m.mu.Lock()
	r, ok := m.runners[revision]
	m.mu.Unlock()
	if !ok || !r.atZero() {
		return
	}
	r.demand.Store(true)
	r.kick()
}

// kick wakes the runner for an immediate decision.
func (r *runner) kick() {
	select {
	case r.poke <- struct{}{}:
	default:
	}
}

func (r *runner) atZero() bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.a.Last().DesiredScale == 0
}

// Record forwards a Stat to the Collector and, like Knative's stat server, pokes the revision when it is at
// zero and the stat shows requests, so scale-from-zero does not wait for the next tick.
func (m *Multiscaler) Record(revision string, now time.Time, stat metrics.Stat) {
	m.opts.Collector.Record(revision, now, stat)
	if stat.AverageConcurrency == 0 && stat.RequestCount == 0 {
		return
	}
	m.mu.Lock()
	r, ok := m.runners[revision]
	m.mu.Unlock()
	if ok && r.atZero() {
		r.kick() // the stat itself shows the demand
	}
}

// Decision returns the latest decision for revision.
func (m *Multiscaler) Decision(revision string) (Decision, bool) {
	m.mu.Lock()
	r, ok := m.runners[revision]
	m.mu.Unlock()
	if !ok {
		return Decision{}, false
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.a.Last(), true
}

// Revisions lists the revisions being autoscaled, sorted.
func (m *Multiscaler) Revisions() []string {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := make([]string, 0, len(m.runners))
	for k := range m.runners {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// Close stops every revision's goroutine and waits for them. Later Adds fail with ErrClosed.
func (m *Multiscaler) Close() {
	m.mu.Lock()
	if !m.closed {
		m.closed = true
		for k, r := range m.runners {
			close(r.stop)
			delete(m.runners, k)
		}
	}
	m.mu.Unlock()
	m.wg.Wait()
}

func (m *Multiscaler) loop(r *runner) {
	defer m.wg.Done()
	defer r.ticker.Stop()
	r.mu.Lock()
	initial := r.a.Last()
	r.mu.Unlock()
	m.notify(r, initial) // the initial scale, before any tick
	for {
		select {
		case <-r.stop:
			return
		case <-r.ticker.C():
		case <-r.poke:
		}
		select {
		case <-r.stop:
			return // removed while waiting: do not act on a stale revision
		default:
		}
		m.tick(r)
	}
}

// tick runs one decision for r.
func (m *Multiscaler) tick(r *runner) {
	now := m.opts.Clock.Now()
	ready := m.opts.Ready.ReadyInstances(r.rev)
	r.mu.Lock()
	s := r.a.Settings()
	zero := r.a.Last().DesiredScale == 0
	r.mu.Unlock()
	if r.demand.Swap(false) && zero {
		m.opts.Collector.Record(r.rev, now, metrics.Stat{AverageConcurrency: 1, RequestCount: 1})
	}

	var obs Observation
	var err error
	if s.Metric == config.RPS {
		obs.Stable, obs.Panic, err = m.opts.Metrics.StableAndPanicRPS(r.rev, now)
	} else {
		obs.Stable, obs.Panic, err = m.opts.Metrics.StableAndPanicConcurrency(r.rev, now)
	}
	switch {
	case err == nil:
		obs.Valid = true
	case errors.Is(err, metrics.ErrNoData):
		obs = Observation{}
	default:
		m.log.Warn("reading metrics", "revision", r.rev, "err", err)
		obs = Observation{}
	}

	r.mu.Lock()
	d := r.a.Decide(now, ready, obs)
	r.mu.Unlock()
	m.notify(r, d)
	if m.opts.OnDecision != nil {
		m.opts.OnDecision(r.rev, d)
	}
}

// notify tells the Scaler when the desired scale or the activator's place changed (or the first time).
func (m *Multiscaler) notify(r *runner, d Decision) {
	r.mu.Lock()
	changed := !r.notified || r.desired != d.DesiredScale || r.inPath != d.ActivatorInPath
	if changed {
		r.notified, r.desired, r.inPath = true, d.DesiredScale, d.ActivatorInPath
	}
	r.mu.Unlock()
	if !changed {
		return
	}
	m.log.Info("scale", "revision", r.rev, "desired", d.DesiredScale, "activatorInPath", d.ActivatorInPath,
		"ready", d.Ready, "stable", d.Stable, "panic", d.Panic, "panicking", d.Panicking, "phase", d.Phase)
	m.opts.Scaler.SetDesired(r.rev, d.DesiredScale, d.ActivatorInPath)
}
