package metrics

import (
	"sync"
	"time"

	"k8s.io/utils/clock"
)

// Stat is one report for one instance (or for the activator's held requests of one revision) over one
// reporting period, normally one second.
type Stat struct {
	// AverageConcurrency is the time-weighted average number of requests in flight over the period: two
	// requests of 500 ms each in one second give 1.0.
	AverageConcurrency float64
	// AverageProxiedConcurrency is the part of AverageConcurrency that arrived through the activator and is
	// also reported by the activator; the collector subtracts it so such requests are counted once.
	AverageProxiedConcurrency float64
	// RequestCount is the number of requests that arrived, per second of the period.
	RequestCount float64
	// ProxiedRequestCount is the part of RequestCount that came through the activator.
	ProxiedRequestCount float64
}

// Reporter computes one instance's Stat from request start/end events, the way Knative's queue-proxy does.
// Safe for concurrent use. Every In must be followed by exactly one Out with the same proxied flag.
//
// Invariant (guarded by mu): concurrency/proxied are the requests in flight now; weighted and
// weightedProxied integrate them over the seconds since the last Report, up to lastChange.
type Reporter struct {
	clock clock.PassiveClock

	mu                        sync.Mutex
	concurrency, proxied      float64
	lastChange, periodStart   time.Time
	requests, proxiedRequests float64
	weighted, weightedProxied float64
}

// NewReporter starts a reporting period at clk.Now(). A nil clock means the real clock.
func NewReporter(clk clock.PassiveClock) *Reporter {
	if clk == nil {
		clk = clock.RealClock{}
	}
	now := clk.Now()
	return &Reporter{clock: clk, lastChange: now, periodStart: now}
}

// advance integrates the in-flight counts up to now. Events may arrive slightly out of order across
// goroutines; a negative step is ignored (it is at most a rounding error).
func (r *Reporter) advance(now time.Time) {
	if d := now.Sub(r.lastChange); d > 0 {
		s := d.Seconds()
		r.weighted += r.concurrency * s
		r.weightedProxied += r.proxied * s
		r.lastChange = now
	}
}

// In records a request arriving; proxied marks one forwarded by the activator.
func (r *Reporter) In(proxied bool) {
	now := r.clock.Now()
	r.mu.Lock()
	defer r.mu.Unlock()
	r.advance(now)
	r.concurrency++
	r.requests++
	if proxied {
		r.proxied++
		r.proxiedRequests++
	}
}

// Out records a request finishing.
func (r *Reporter) Out(proxied bool) {
	now := r.clock.Now()
	r.mu.Lock()
	defer r.mu.Unlock()
	r.advance(now)
	r.concurrency--
	if proxied {
		r.proxied--
	}
}

// InFlight returns the requests in flight now.
func (r *Reporter) InFlight() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return int(r.concurrency)
}

// Report closes the current period at now and starts the next one. A period of zero length reports the
// current in-flight count as its concurrency.
func (r *Reporter) Report() Stat {
	now := r.clock.Now()
	r.mu.Lock()
	defer r.mu.Unlock()
	r.advance(now)
	var st Stat
	secs := now.Sub(r.periodStart).Seconds()
	if secs > 0 {
		st.AverageConcurrency = r.weighted / secs
		st.AverageProxiedConcurrency = r.weightedProxied / secs
		// Knative's queue-proxy divides by its nominal one-second period; dividing by the true length keeps
		// a late tick from inflating the rate.
		st.RequestCount = r.requests / secs
		st.ProxiedRequestCount = r.proxiedRequests / secs
	} else {
		st.AverageConcurrency, st.AverageProxiedConcurrency = r.concurrency, r.proxied
		st.RequestCount, st.ProxiedRequestCount = r.requests, r.proxiedRequests
	}
	r.weighted, r.weightedProxied, r.requests, r.proxiedRequests = 0, 0, 0, 0
	r.periodStart = now
	return st
}
