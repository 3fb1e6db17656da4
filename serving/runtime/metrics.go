package runtime

import (
	"github.com/prometheus/client_golang/prometheus"
	"k8s.io/apimachinery/pkg/types"

	"github.com/tide-run/tide/serving/gateway"
)

// RegisterMetrics registers serving's metrics on reg (docs/observability.md): the gateway's per-request metrics
// (gateway.Metrics: revision_request_count, revision_request_latencies, cold starts) and, computed at scrape
// time per revision, Knative autoscaler's gauges (autoscaler_desired_pods, autoscaler_actual_pods,
// autoscaler_panic_mode, autoscaler_stable_request_concurrency, autoscaler_panic_request_concurrency,
// autoscaler_target_concurrency_per_pod, autoscaler_excess_burst_capacity), the activator's queue depth
// (revision_queue_depth) and the requests in flight (tide_revision_requests_in_flight).
func (rt *Runtime) RegisterMetrics(reg prometheus.Registerer) error {
	m, err := gateway.NewMetrics(reg)
	if err != nil {
		return err
	}
	if err := reg.Register(revisionCollector{rt}); err != nil {
		return err
	}
	rt.gw.SetMetrics(m)
	return nil
}

var (
	revLabels      = []string{"namespace_name", "service_name", "configuration_name", "revision_name"}
	desiredDesc    = prometheus.NewDesc("autoscaler_desired_pods", "Number of instances the autoscaler wants for the revision.", revLabels, nil)
	actualDesc     = prometheus.NewDesc("autoscaler_actual_pods", "Number of the revision's instances that are ready.", revLabels, nil)
	panicModeDesc  = prometheus.NewDesc("autoscaler_panic_mode", "1 while the revision's autoscaler is in panic mode.", revLabels, nil)
	stableDesc     = prometheus.NewDesc("autoscaler_stable_request_concurrency", "Average requests in flight over the stable window (all instances).", revLabels, nil)
	panicDesc      = prometheus.NewDesc("autoscaler_panic_request_concurrency", "Average requests in flight over the panic window (all instances).", revLabels, nil)
	targetDesc     = prometheus.NewDesc("autoscaler_target_concurrency_per_pod", "The autoscaler's per-instance target.", revLabels, nil)
	ebcDesc        = prometheus.NewDesc("autoscaler_excess_burst_capacity", "Excess burst capacity; negative keeps the activator in the path.", revLabels, nil)
	queueDepthDesc = prometheus.NewDesc("revision_queue_depth", "Requests waiting for a slot on an instance (the activator's and queue-proxy's queues).", revLabels, nil)
	inFlightDesc   = prometheus.NewDesc("tide_revision_requests_in_flight", "Requests admitted to the revision's instances and not yet answered.", revLabels, nil)
)

// revisionCollector reads every running revision's autoscaler decision and gateway counters at scrape time.
type revisionCollector struct{ rt *Runtime }

func (revisionCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{desiredDesc, actualDesc, panicModeDesc, stableDesc, panicDesc, targetDesc, ebcDesc, queueDepthDesc, inFlightDesc} {
		ch <- d
	}
}

func (c revisionCollector) Collect(ch chan<- prometheus.Metric) {
	type rev struct {
		key                    types.NamespacedName
		service, configuration string
	}
	c.rt.mu.Lock()
	revs := make([]rev, 0, len(c.rt.revs))
	for k, r := range c.rt.revs {
		revs = append(revs, rev{k, r.service, r.configuration})
	}
	c.rt.mu.Unlock()
	gauge := func(d *prometheus.Desc, v float64, r rev) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, r.key.Namespace, r.service, r.configuration, r.key.Name)
	}
	b := func(v bool) float64 {
		if v {
			return 1
		}
		return 0
	}
	for _, r := range revs {
		if st, ok := c.rt.gw.Stats(r.key); ok {
			gauge(actualDesc, float64(st.Ready), r)
			gauge(queueDepthDesc, float64(st.Queued), r)
			gauge(inFlightDesc, float64(st.InFlight), r)
		}
		if d, ok := c.rt.ms.Decision(revKey(r.key)); ok {
			gauge(desiredDesc, float64(d.DesiredScale), r)
			gauge(panicModeDesc, b(d.Panicking), r)
			gauge(stableDesc, d.Stable, r)
			gauge(panicDesc, d.Panic, r)
			gauge(targetDesc, d.Target, r)
			gauge(ebcDesc, float64(d.ExcessBurstCapacity), r)
		}
	}
}
