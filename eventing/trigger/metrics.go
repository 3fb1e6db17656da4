package trigger

import (
	"strings"

	"github.com/prometheus/client_golang/prometheus"
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
