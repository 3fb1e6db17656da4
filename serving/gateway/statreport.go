package gateway

import (
	"context"
	"sync"
	"time"

	"k8s.io/apimachinery/pkg/types"
	"k8s.io/utils/clock"

	"github.com/tide-run/tide/serving/autoscaler/metrics"
)

// Recorder receives one Stat per revision per reporting period; *autoscaler.Multiscaler and *metrics.Collector
// implement it.
type Recorder interface {
	Record(revision string, now time.Time, stat metrics.Stat)
}

// StatReporter is a StatSink that turns request start/end events into the per-second Stats Knative's
// queue-proxy reports (time-weighted average concurrency, requests per second), one stream per revision.
// Because the gateway sees every request of a revision, including those the activator holds, one report covers
// the whole revision and nothing is double counted (proxied counts stay zero).
//
// Invariant: mu guards reporters; each metrics.Reporter is safe for concurrent use on its own.
type StatReporter struct {
	rec    Recorder
	clock  clock.WithTicker
	key    func(types.NamespacedName) string
	period time.Duration

	mu        sync.RWMutex
	reporters map[types.NamespacedName]*metrics.Reporter
}

// StatReporterOptions configures a StatReporter.
type StatReporterOptions struct {
	// Recorder receives the stats. Required.
	Recorder Recorder
	// Clock drives the reporting ticker and stamps events. Default the real clock.
	Clock clock.WithTicker
	// Key names a revision for the Recorder. Default "<namespace>/<name>".
	Key func(types.NamespacedName) string
	// Period between reports. Default 1s, Knative's.
	Period time.Duration
}

// NewStatReporter returns a StatReporter; call Run to start reporting.
func NewStatReporter(opts StatReporterOptions) *StatReporter {
	if opts.Clock == nil {
		opts.Clock = clock.RealClock{}
	}
	if opts.Key == nil {
		opts.Key = types.NamespacedName.String
	}
	if opts.Period <= 0 {
		opts.Period = time.Second
	}
	return &StatReporter{rec: opts.Recorder, clock: opts.Clock, key: opts.Key, period: opts.Period,
		reporters: map[types.NamespacedName]*metrics.Reporter{}}
}

func (s *StatReporter) reporter(rev types.NamespacedName) *metrics.Reporter {
	s.mu.RLock()
	r := s.reporters[rev]
	s.mu.RUnlock()
	if r != nil {
		return r
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if r = s.reporters[rev]; r == nil {
		r = metrics.NewReporter(s.clock)
		s.reporters[rev] = r
	}
	return r
}

// Track starts reporting a revision (zeros until requests arrive), so the autoscaler has data for it.
func (s *StatReporter) Track(rev types.NamespacedName) { s.reporter(rev) }

// RequestStart implements StatSink.
func (s *StatReporter) RequestStart(rev types.NamespacedName, _ time.Time) { s.reporter(rev).In(false) }

// RequestEnd implements StatSink.
func (s *StatReporter) RequestEnd(rev types.NamespacedName, _ time.Time) { s.reporter(rev).Out(false) }

// Forget stops reporting a deleted revision.
func (s *StatReporter) Forget(rev types.NamespacedName) {
	s.mu.Lock()
	delete(s.reporters, rev)
	s.mu.Unlock()
}

var _ Tracker = (*StatReporter)(nil)

// ReportNow sends one Stat per known revision; Run calls it every period.
func (s *StatReporter) ReportNow() {
	s.mu.RLock()
	revs := make(map[types.NamespacedName]*metrics.Reporter, len(s.reporters))
	for k, r := range s.reporters {
		revs[k] = r
	}
	s.mu.RUnlock()
	now := s.clock.Now()
	for k, r := range revs {
		s.rec.Record(s.key(k), now, r.Report())
	}
}

// Run reports every period until ctx ends.
func (s *StatReporter) Run(ctx context.Context) {
	t := s.clock.NewTicker(s.period)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C():
			s.ReportNow()
		}
	}
}
