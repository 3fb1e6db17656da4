package kubecontroller

import (
	"errors"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// metrics are the controller's Prometheus series, in a registry of its own (no global state).
type metrics struct {
	reg        *prometheus.Registry
	reconciles *prometheus.CounterVec
	latency    prometheus.Histogram
	depth      func() int
}

func newMetrics() *metrics {
	m := &metrics{reg: prometheus.NewRegistry()}
	m.reconciles = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "tide_rocketmqsource_controller_reconciles_total",
		Help: "Reconciles of RocketMQSources by result: success, requeue (waiting for a sink), error.",
	}, []string{"result"})
	m.latency = prometheus.NewHistogram(prometheus.HistogramOpts{
		Name:    "tide_rocketmqsource_controller_reconcile_seconds",
		Help:    "Time one reconcile of a RocketMQSource took.",
		Buckets: prometheus.ExponentialBuckets(0.001, 4, 8),
	})
	m.reg.MustRegister(m.reconciles, m.latency,
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "tide_rocketmqsource_controller_workqueue_depth",
			Help: "RocketMQSources waiting to be reconciled.",
		}, func() float64 {
			if m.depth == nil {
				return 0
			}
			return float64(m.depth())
		}),
		prometheus.NewGoCollector(), prometheus.NewProcessCollector(prometheus.ProcessCollectorOpts{}))
	for _, r := range []string{"success", "requeue", "error"} {
		m.reconciles.WithLabelValues(r)
	}
	return m
}

func (m *metrics) observe(err error, d time.Duration) {
	result := "success"
	switch {
	case errors.Is(err, errRequeue):
		result = "requeue"
	case err != nil:
		result = "error"
	}
	m.reconciles.WithLabelValues(result).Inc()
	m.latency.Observe(d.Seconds())
}

// Handler serves what a Knative controller's pod serves for its probes and scrapers: GET /healthz (200 while the
// process runs: the liveness probe), GET /readyz (200 once the caches synced and the workers run, else 503: the
// readiness probe) and GET /metrics (Prometheus text).
func (c *Controller) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write([]byte("ok\n")) })
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, _ *http.Request) {
		if !c.Ready() {
			http.Error(w, "caches not synced", http.StatusServiceUnavailable)
			return
		}
		_, _ = w.Write([]byte("ok\n"))
	})
	mux.Handle("GET /metrics", promhttp.HandlerFor(c.metrics.reg, promhttp.HandlerOpts{}))
	return mux
}
