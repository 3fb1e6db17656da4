package rocketmqsource

import (
	"sync/atomic"
	"time"

	"github.com/apache/rocketmq-client-go/v2/primitive"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/tide-run/tide/eventing/delivery"
)

// latencyBuckets are the upper bounds (seconds) of the adapters' histograms.
var latencyBuckets = [...]float64{.005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60, 300}

// latencyHist is a lock-free histogram an adapter fills on its delivery path and its collector turns into a
// Prometheus histogram at scrape time (the adapter's labels are only known to the collector).
type latencyHist struct {
	buckets  [len(latencyBuckets)]atomic.Uint64 // not cumulative
	count    atomic.Uint64
	sumNanos atomic.Int64
}

func (h *latencyHist) observe(d time.Duration) {
	d = max(d, 0)
	s := d.Seconds()
	for i, ub := range latencyBuckets {
		if s <= ub {
			h.buckets[i].Add(1)
			break
		}
	}
	h.count.Add(1)
	h.sumNanos.Add(int64(d))
}

func (h *latencyHist) metric(desc *prometheus.Desc, labels ...string) prometheus.Metric {
	cum := make(map[float64]uint64, len(latencyBuckets))
	var n uint64
	for i, ub := range latencyBuckets {
		n += h.buckets[i].Load()
		cum[ub] = n
	}
	return prometheus.MustNewConstHistogram(desc, h.count.Load(), time.Duration(h.sumNanos.Load()).Seconds(), cum, labels...)
}

// observeDelivery records one delivery that started at start: its duration (retries and backoff included) and,
// when it ended with the sink or the dead-letter sink accepting the event, the message's age then (now minus the
// time RocketMQ stored it): how far the source lags behind its topic, in time.
func (a *Adapter) observeDelivery(msg *primitive.MessageExt, res delivery.Result, start time.Time) {
	now := time.Now()
	a.sendHist.observe(now.Sub(start))
	if res.Outcome == delivery.Failed {
		return
	}
	ts := msg.StoreTimestamp
	if ts <= 0 {
		ts = msg.BornTimestamp
	}
	if ts > 0 {
		a.ageHist.observe(now.Sub(time.UnixMilli(ts)))
	}
}
