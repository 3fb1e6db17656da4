package trigger

import (
	"context"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/cloudevents/sdk-go/v2/event"
	"github.com/cloudevents/sdk-go/v2/types"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/tide-run/tide/eventing/contract"
)

var (
	eventsDesc = prometheus.NewDesc("tide_trigger_events_total",
		"Events handled by a Trigger, by result (delivered, dead_lettered, failed, filtered, discarded).",
		[]string{"namespace", "trigger", "result"}, nil)
	retriesDesc = prometheus.NewDesc("tide_trigger_retries_total",
		"Delivery attempts beyond the first.", []string{"namespace", "trigger"}, nil)
	repliesDesc = prometheus.NewDesc("tide_trigger_replies_total",
		"Replies from the subscriber, by result (stored, dropped; bad: a 2xx body that is not a CloudEvent, a failed attempt).",
		[]string{"namespace", "trigger", "result"}, nil)
	inFlightDesc = prometheus.NewDesc("tide_trigger_in_flight",
		"Deliveries in progress.", []string{"namespace", "trigger"}, nil)
)

// Collector exposes every running Trigger's Stats as Prometheus metrics
// (register it once; it reads the counters at scrape time).
func (m *Manager) Collector() prometheus.Collector { return collector{m} }

type collector struct{ m *Manager }

func (c collector) Describe(ch chan<- *prometheus.Desc) {
	ch <- eventsDesc
	ch <- retriesDesc
	ch <- repliesDesc
	ch <- inFlightDesc
}

func (c collector) Collect(ch chan<- prometheus.Metric) {
	for _, key := range c.m.Names() {
		ns, name, _ := strings.Cut(key, "/")
		st, ok := c.m.Stats(ns, name)
		if !ok {
			continue
		}
		for result, v := range map[string]int64{"delivered": st.Delivered, "dead_lettered": st.DeadLettered,
			"failed": st.Failed, "filtered": st.Filtered, "discarded": st.Discarded} {
			ch <- prometheus.MustNewConstMetric(eventsDesc, prometheus.CounterValue, float64(v), ns, name, result)
		}
		ch <- prometheus.MustNewConstMetric(retriesDesc, prometheus.CounterValue, float64(st.Retried), ns, name)
		ch <- prometheus.MustNewConstMetric(repliesDesc, prometheus.CounterValue, float64(st.Replies), ns, name, "stored")
		ch <- prometheus.MustNewConstMetric(repliesDesc, prometheus.CounterValue, float64(st.RepliesDropped), ns, name, "dropped")
		ch <- prometheus.MustNewConstMetric(repliesDesc, prometheus.CounterValue, float64(st.BadReplies), ns, name, "bad")
		ch <- prometheus.MustNewConstMetric(inFlightDesc, prometheus.GaugeValue, float64(st.InFlight), ns, name)
	}
}

// DispatchMetrics are Knative's broker-filter metrics under the names its MT broker filter exports them to
// Prometheus: mt_broker_filter_event_count and mt_broker_filter_event_dispatch_latencies (milliseconds; one
// observation per event handed to the subscriber, its retries and backoff included, labelled with the last
// response code, "0" when no response arrived), and mt_broker_filter_event_processing_latencies (milliseconds from
// the event's knativearrivaltime at the ingress to the start of its dispatch: time in RocketMQ plus filtering).
// Labels namespace_name, broker_name, trigger_name (and response_code, response_code_class): bounded by the
// Triggers of this process. Register once and pass in Options.Metrics.
type DispatchMetrics struct {
	countV                *prometheus.CounterVec
	latencyV, processingV *prometheus.HistogramVec
}

// NewDispatchMetrics registers the dispatch metrics on reg.
func NewDispatchMetrics(reg prometheus.Registerer) (*DispatchMetrics, error) {
	labels := []string{"namespace_name", "broker_name", "trigger_name", "response_code", "response_code_class"}
	buckets := []float64{1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000, 10000} // Knative's, in ms
	m := &DispatchMetrics{
		countV: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "mt_broker_filter_event_count",
			Help: "Events a Trigger dispatched to its subscriber, by the subscriber's last response code (Knative's event_count)."}, labels),
		latencyV: prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "mt_broker_filter_event_dispatch_latencies",
			Help:    "Time to dispatch an event to a Trigger's subscriber, retries included, in milliseconds (Knative's event_dispatch_latencies).",
			Buckets: buckets}, labels),
		processingV: prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "mt_broker_filter_event_processing_latencies",
			Help:    "Time from an event's arrival at the Broker ingress to the start of its dispatch by a Trigger, in milliseconds.",
			Buckets: buckets}, labels[:3]),
	}
	for _, c := range []prometheus.Collector{m.countV, m.latencyV, m.processingV} {
		if err := reg.Register(c); err != nil {
			return nil, err
		}
	}
	return m, nil
}

// forget drops a deleted Trigger's series.
func (m *DispatchMetrics) forget(namespace, name string) {
	if m == nil {
		return
	}
	l := prometheus.Labels{"namespace_name": namespace, "trigger_name": name}
	m.countV.DeletePartialMatch(l)
	m.latencyV.DeletePartialMatch(l)
	m.processingV.DeletePartialMatch(l)
}

// instrument wraps s so every Send of the Trigger cfg is recorded in m.
func (m *DispatchMetrics) instrument(s Sender, cfg Config) Sender {
	if m == nil {
		return s
	}
	return &meteredSender{s: s, m: m, ns: cfg.Namespace, broker: cfg.Broker, trigger: cfg.Name,
		processing: m.processingV.WithLabelValues(cfg.Namespace, cfg.Broker, cfg.Name)}
}

type meteredSender struct {
	s                   Sender
	m                   *DispatchMetrics
	ns, broker, trigger string
	processing          prometheus.Observer
}

func (s *meteredSender) Send(ctx context.Context, target *url.URL, ev event.Event, spec DeliverySpec) DeliveryResult {
	start := time.Now()
	if raw, ok := ev.Extensions()[contract.ArrivalTimeExtension]; ok {
		if at, err := types.ToTime(raw); err == nil {
			s.processing.Observe(float64(max(start.Sub(at), 0)) / float64(time.Millisecond))
		}
	}
	res := s.s.Send(ctx, target, ev, spec)
	code := strconv.Itoa(res.StatusCode)
	class := strconv.Itoa(res.StatusCode/100) + "xx"
	s.m.countV.WithLabelValues(s.ns, s.broker, s.trigger, code, class).Inc()
	s.m.latencyV.WithLabelValues(s.ns, s.broker, s.trigger, code, class).Observe(float64(time.Since(start)) / float64(time.Millisecond))
	return res
}
