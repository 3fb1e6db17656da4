package ingress

import (
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

var brokerEventsDesc = prometheus.NewDesc("tide_broker_events_total",
	"Events offered to a Broker's ingress, by result (accepted, rejected, failed).",
	[]string{"namespace", "broker", "result"}, nil)

// Collector exposes every Broker's ingress counters as Prometheus metrics.
func (in *Ingress) Collector() prometheus.Collector { return collector{in} }

type collector struct{ in *Ingress }

func (c collector) Describe(ch chan<- *prometheus.Desc) { ch <- brokerEventsDesc }

func (c collector) Collect(ch chan<- prometheus.Metric) {
	c.in.stats.Range(func(k, _ any) bool {
		ns, name, _ := strings.Cut(k.(string), "/")
		st := c.in.Stats(ns, name)
		ch <- prometheus.MustNewConstMetric(brokerEventsDesc, prometheus.CounterValue, float64(st.Accepted), ns, name, "accepted")
		ch <- prometheus.MustNewConstMetric(brokerEventsDesc, prometheus.CounterValue, float64(st.Rejected), ns, name, "rejected")
		ch <- prometheus.MustNewConstMetric(brokerEventsDesc, prometheus.CounterValue, float64(st.Failed), ns, name, "failed")
		return true
	})
}

// RequestMetrics are Knative's broker-ingress request metrics under the names its MT broker ingress exports them
// to Prometheus (mt_broker_ingress_event_count, mt_broker_ingress_event_dispatch_latencies in milliseconds), so
// Knative's dashboards and alerts fit; labels namespace_name, broker_name, response_code, response_code_class.
// Knative's event_type label is left out: its values come from senders, and label values must stay bounded.
// Requests that name no Broker this ingress serves (404, malformed paths, other methods) are counted with empty
// namespace_name and broker_name, for the same reason.
type RequestMetrics struct {
	count   *prometheus.CounterVec
	latency *prometheus.HistogramVec
}

// KnativeLatencyBuckets are the dispatch-latency buckets (milliseconds) of Knative's eventing metrics.
var KnativeLatencyBuckets = []float64{1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000, 10000}

// NewRequestMetrics registers the ingress request metrics on reg.
func NewRequestMetrics(reg prometheus.Registerer) (*RequestMetrics, error) {
	labels := []string{"namespace_name", "broker_name", "response_code", "response_code_class"}
	m := &RequestMetrics{
		count: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "mt_broker_ingress_event_count",
			Help: "Requests to a Broker's ingress (an event or a batch), by response code (Knative's event_count)."}, labels),
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "mt_broker_ingress_event_dispatch_latencies",
			Help:    "Time to store a request's events in RocketMQ and answer, in milliseconds (Knative's event_dispatch_latencies).",
			Buckets: KnativeLatencyBuckets}, labels),
	}
	for _, c := range []prometheus.Collector{m.count, m.latency} {
		if err := reg.Register(c); err != nil {
			return nil, err
		}
	}
	return m, nil
}

// SetRequestMetrics makes ServeHTTP record every request in m (nil: stop recording).
func (in *Ingress) SetRequestMetrics(m *RequestMetrics) { in.reqMetrics.Store(m) }

// statusWriter remembers the status a handler wrote (200 when it wrote a body without one).
type statusWriter struct {
	http.ResponseWriter
	code int
}

func (w *statusWriter) WriteHeader(code int) {
	if w.code == 0 {
		w.code = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	if w.code == 0 {
		w.code = http.StatusOK
	}
	return w.ResponseWriter.Write(b)
}

func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// observe records one request that ServeHTTP answered through w, started at start.
func (m *RequestMetrics) observe(in *Ingress, w *statusWriter, r *http.Request, start time.Time) {
	code := w.code
	if code == 0 {
		code = http.StatusOK
	}
	ns, name := "", ""
	if parts := strings.Split(strings.Trim(r.URL.Path, "/"), "/"); len(parts) == 2 && code != http.StatusNotFound {
		if _, known := in.stats.Load(parts[0] + "/" + parts[1]); known || code == http.StatusServiceUnavailable {
			ns, name = parts[0], parts[1]
		}
	}
	labels := []string{ns, name, strconv.Itoa(code), strconv.Itoa(code/100) + "xx"}
	m.count.WithLabelValues(labels...).Inc()
	m.latency.WithLabelValues(labels...).Observe(float64(time.Since(start)) / float64(time.Millisecond))
}
