package runtime

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/tide-run/tide/eventing/ingress"
	"github.com/tide-run/tide/eventing/rocketmqsource"
	"github.com/tide-run/tide/eventing/trigger"
)

// runtimeMetrics are the eventing metrics RegisterMetrics set up; Start hands them to the ingress and the
// trigger manager.
type runtimeMetrics struct {
	requests *ingress.RequestMetrics
	dispatch *trigger.DispatchMetrics
}

// RegisterMetrics registers the eventing runtime's metrics on reg (call before Start; docs/observability.md):
// Knative's broker ingress and filter metrics (mt_broker_ingress_*, mt_broker_filter_*), and at scrape time the
// ingress's per-Broker counters (tide_broker_events_total), every running Trigger's (tide_trigger_*) and every
// RocketMQSource adapter's (tide_rocketmqsource_*).
func (r *Runtime) RegisterMetrics(reg prometheus.Registerer) error {
	req, err := ingress.NewRequestMetrics(reg)
	if err != nil {
		return err
	}
	disp, err := trigger.NewDispatchMetrics(reg)
	if err != nil {
		return err
	}
	if err := reg.Register(runtimeCollector{r}); err != nil {
		return err
	}
	r.mu.Lock()
	r.metrics = &runtimeMetrics{requests: req, dispatch: disp}
	r.mu.Unlock()
	return nil
}

// metricsOf returns what RegisterMetrics set up, nil parts when it was not called.
func (r *Runtime) metricsOf() (*ingress.RequestMetrics, *trigger.DispatchMetrics) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.metrics == nil {
		return nil, nil
	}
	return r.metrics.requests, r.metrics.dispatch
}

// runtimeCollector reads the running ingress, trigger manager and source adapters at scrape time.
type runtimeCollector struct{ r *Runtime }

// Describe sends the descriptors of the ingress's, the trigger manager's and the sources' collectors; theirs read
// no state, so nil instances describe them before Start has built the real ones.
func (runtimeCollector) Describe(ch chan<- *prometheus.Desc) {
	(*ingress.Ingress)(nil).Collector().Describe(ch)
	(*trigger.Manager)(nil).Collector().Describe(ch)
	rocketmqsource.NewCollector(nil).Describe(ch)
}

func (c runtimeCollector) Collect(ch chan<- prometheus.Metric) {
	c.r.mu.Lock()
	ing, mgr := c.r.ingress, c.r.mgr
	var sources []*rocketmqsource.Adapter
	for _, rs := range c.r.sources {
		sources = append(sources, rs.adapter)
	}
	c.r.mu.Unlock()
	if ing != nil {
		ing.Collector().Collect(ch)
	}
	if mgr != nil {
		mgr.Collector().Collect(ch)
	}
	if len(sources) > 0 {
		rocketmqsource.NewCollector(func() []*rocketmqsource.Adapter { return sources }).Collect(ch)
	}
}
