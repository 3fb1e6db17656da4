package ingress

import (
	"strings"

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
