package rocketmqsource

import (
	"fmt"
	"net/http"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/tide-run/tide/internal/metrics"
)

// Handler serves an adapter's health and metrics: GET /healthz answers 200 "ok" while the consumer runs and 503
// with the reason otherwise (for Kubernetes probes); GET /metrics is Prometheus' exposition format (the adapter's
// counters, see NewCollector, and the Go runtime and process collectors) from a registry of this handler's own.
// current returns the adapter to report on (nil: none yet, reported as not deployed), so a caller that replaces
// its adapter (the standalone command retrying start-up) keeps one handler.
func Handler(current func() *Adapter) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		a := current()
		if a == nil {
			http.Error(w, "starting", http.StatusServiceUnavailable)
			return
		}
		if st := a.Status(); !st.Deployed {
			http.Error(w, st.Reason+": "+st.Message, http.StatusServiceUnavailable)
			return
		}
		fmt.Fprintln(w, "ok")
	})
	reg := metrics.NewRegistry()
	reg.MustRegister(NewCollector(func() []*Adapter {
		if a := current(); a != nil {
			return []*Adapter{a}
		}
		return []*Adapter{nil}
	}))
	mux.Handle("GET /metrics", metrics.Handler(reg, nil))
	return mux
}

var (
	sourceMessagesDesc = prometheus.NewDesc("tide_rocketmqsource_messages_total",
		"Messages by outcome: delivered, dead_lettered, retried (back to RocketMQ), abandoned (cut off by a stop; a retried or abandoned message is received again).",
		[]string{"namespace", "name", "outcome"}, nil)
	sourceInFlightDesc = prometheus.NewDesc("tide_rocketmqsource_in_flight", "Deliveries under way.", []string{"namespace", "name"}, nil)
	sourceDeployedDesc = prometheus.NewDesc("tide_rocketmqsource_deployed", "1 while the source's consumer runs.", []string{"namespace", "name"}, nil)
	sourceDeliveryDesc = prometheus.NewDesc("tide_rocketmqsource_delivery_duration_seconds",
		"Time to deliver a message's event to the sink (retries, backoff and the dead-letter sink included).", []string{"namespace", "name"}, nil)
	sourceAgeDesc = prometheus.NewDesc("tide_rocketmqsource_message_age_seconds",
		"Age of a message (since RocketMQ stored it) when its event was accepted: the source's lag behind its topic, in time.", []string{"namespace", "name"}, nil)
)

// NewCollector exposes the counters of the adapters list returns (read at scrape time), labelled with each
// RocketMQSource's namespace and name (Config.SourceNamespace, SourceName). A nil adapter in the list reports an
// adapter not started yet: not deployed, zero counts, empty labels.
func NewCollector(list func() []*Adapter) prometheus.Collector { return sourceCollector{list} }

type sourceCollector struct{ list func() []*Adapter }

func (sourceCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- sourceMessagesDesc
	ch <- sourceInFlightDesc
	ch <- sourceDeployedDesc
	ch <- sourceDeliveryDesc
	ch <- sourceAgeDesc
}

func (c sourceCollector) Collect(ch chan<- prometheus.Metric) {
	for _, a := range c.list() {
		var (
			cnt      Counters
			deployed float64
			ns, name string
		)
		if a != nil {
			cnt, ns, name = a.Counters(), a.cfg.SourceNamespace, a.cfg.SourceName
			if a.Status().Deployed {
				deployed = 1
			}
		}
		for _, o := range []struct {
			name string
			n    int64
		}{{"delivered", cnt.Delivered}, {"dead_lettered", cnt.DeadLettered}, {"retried", cnt.Retried}, {"abandoned", cnt.Abandoned}} {
			ch <- prometheus.MustNewConstMetric(sourceMessagesDesc, prometheus.CounterValue, float64(o.n), ns, name, o.name)
		}
		ch <- prometheus.MustNewConstMetric(sourceInFlightDesc, prometheus.GaugeValue, float64(cnt.InFlight), ns, name)
		ch <- prometheus.MustNewConstMetric(sourceDeployedDesc, prometheus.GaugeValue, deployed, ns, name)
		if a != nil {
			ch <- a.sendHist.metric(sourceDeliveryDesc, ns, name)
			ch <- a.ageHist.metric(sourceAgeDesc, ns, name)
		}
	}
}
