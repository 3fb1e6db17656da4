package gateway

import (
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Metrics are the gateway's per-request metrics, recorded once SetMetrics is called: Knative queue-proxy's
// revision_request_count and revision_request_latencies (milliseconds, queueing in the activator included, as
// Knative counts a request from its arrival at the activator), labelled namespace_name, service_name,
// configuration_name, revision_name, response_code, response_code_class; and cold starts, which Knative has no
// metric for: tide_revision_cold_starts_total (requests that found the revision with no instance in rotation and
// waited for one to start) and tide_revision_cold_start_duration_seconds (how long they waited). Label values come
// from routed revisions only, so they are bounded by the revisions that exist.
type Metrics struct {
	requests  *prometheus.CounterVec
	latency   *prometheus.HistogramVec
	cold      *prometheus.CounterVec
	coldWait  *prometheus.HistogramVec
	revisions sync.Map // *revision -> *revMetrics: each revision's label values and resolved children
}

// NewMetrics registers the gateway's metrics on reg.
func NewMetrics(reg prometheus.Registerer) (*Metrics, error) {
	rev := []string{"namespace_name", "service_name", "configuration_name", "revision_name"}
	code := append(append([]string(nil), rev...), "response_code", "response_code_class")
	m := &Metrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "revision_request_count",
			Help: "Requests routed to a revision, by response code (Knative queue-proxy's request_count)."}, code),
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "revision_request_latencies",
			Help:    "Time to answer a request routed to a revision, queueing included, in milliseconds (Knative's request_latencies).",
			Buckets: []float64{5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000, 10000, 20000, 50000, 100000}}, code),
		cold: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "tide_revision_cold_starts_total",
			Help: "Requests that found their revision with no instance in rotation and waited for one to start."}, rev),
		coldWait: prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "tide_revision_cold_start_duration_seconds",
			Help:    "How long a cold request waited for an instance (process start and readiness).",
			Buckets: []float64{.01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60}}, rev),
	}
	for _, c := range []prometheus.Collector{m.requests, m.latency, m.cold, m.coldWait} {
		if err := reg.Register(c); err != nil {
			return nil, err
		}
	}
	return m, nil
}

// SetMetrics makes the gateway record every routed request in m (nil: stop).
func (g *Gateway) SetMetrics(m *Metrics) { g.metrics.Store(m) }

// revMetrics caches one revision's children: WithLabelValues hashes six labels, a sync.Map keyed by the status
// code is cheaper on the request path.
type revMetrics struct {
	labels   [4]string
	codes    sync.Map // int -> *codeMetrics
	cold     prometheus.Counter
	coldWait prometheus.Observer
}

type codeMetrics struct {
	count   prometheus.Counter
	latency prometheus.Observer
}

func (m *Metrics) of(r *revision) *revMetrics {
	names := r.names.Load()
	if v, ok := m.revisions.Load(r); ok && v.(*revMetrics).labels[1] == names[0] && v.(*revMetrics).labels[2] == names[1] {
		return v.(*revMetrics)
	}
	rm := &revMetrics{labels: [4]string{r.key.Namespace, names[0], names[1], r.key.Name}}
	rm.cold = m.cold.WithLabelValues(rm.labels[:]...)
	rm.coldWait = m.coldWait.WithLabelValues(rm.labels[:]...)
	m.revisions.Store(r, rm)
	return rm
}

// observe records one answered request.
func (m *Metrics) observe(r *revision, status int, start time.Time) {
	if status == 0 {
		status = http.StatusOK // nothing written: net/http answers 200
	}
	rm := m.of(r)
	v, ok := rm.codes.Load(status)
	if !ok {
		l := append(rm.labels[:], strconv.Itoa(status), strconv.Itoa(status/100)+"xx")
		v, _ = rm.codes.LoadOrStore(status, &codeMetrics{count: m.requests.WithLabelValues(l...), latency: m.latency.WithLabelValues(l...)})
	}
	c := v.(*codeMetrics)
	c.count.Inc()
	c.latency.Observe(float64(time.Since(start)) / float64(time.Millisecond))
}

// observeCold records a request that waited for a revision at zero.
func (m *Metrics) observeCold(r *revision, waited time.Duration, got bool) {
	rm := m.of(r)
	rm.cold.Inc()
	if got {
		rm.coldWait.Observe(waited.Seconds())
	}
}

// forget drops a deleted revision's series.
func (m *Metrics) forget(r *revision) {
	if _, ok := m.revisions.LoadAndDelete(r); !ok {
		return
	}
	l := prometheus.Labels{"namespace_name": r.key.Namespace, "revision_name": r.key.Name}
	m.requests.DeletePartialMatch(l)
	m.latency.DeletePartialMatch(l)
	m.cold.DeletePartialMatch(l)
	m.coldWait.DeletePartialMatch(l)
}
