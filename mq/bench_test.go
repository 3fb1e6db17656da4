package mq_test

import (
	"context"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/apache/rocketmq-client-go/v2"
	"github.com/apache/rocketmq-client-go/v2/primitive"
	"github.com/apache/rocketmq-client-go/v2/producer"

	"github.com/tide-run/tide/internal/gcfloor"
	"github.com/tide-run/tide/internal/metrics"
	"github.com/tide-run/tide/mq"
	"github.com/tide-run/tide/mq/mqmeta"
	"github.com/tide-run/tide/mq/mqtest"
)

// BenchmarkSendSync32 measures the official client's synchronous sends of 1 KiB bodies from 32 goroutines against
// an embedded broker: go test ./mq -run '^$' -bench SendSync32 -benchtime 20000x
// (add -tags or edit flush below to compare modes). It reports msgs/s and send latency percentiles. Each mode runs
// without metrics and with them (RegisterMetrics on a registry scraped every second, as Prometheus would), so
// -count N interleaves the two and their difference is metrics' overhead.
func BenchmarkSendSync32(b *testing.B) {
	gcfloor.InstallForBenchmark(b) // as the tide binary runs the broker
	for _, mode := range []mq.FlushMode{mq.FlushAsync, mq.FlushSync} {
		for _, metered := range []bool{false, true} {
			name := mode.String() + "/metrics=off"
			if metered {
				name = mode.String() + "/metrics=on"
			}
			b.Run(name, func(b *testing.B) { benchSend(b, mode, metered) })
		}
	}
}

func benchSend(b *testing.B, mode mq.FlushMode, metered bool) {
	var opts []mqtest.Option
	if metered {
		reg := metrics.NewRegistry()
		opts = append(opts, mqtest.WithMetrics(reg))
		stop := make(chan struct{})
		defer close(stop)
		go func() { // a scrape a second, as Prometheus would
			t := time.NewTicker(time.Second)
			defer t.Stop()
			for {
				select {
				case <-stop:
					return
				case <-t.C:
					_, _ = reg.Gather()
				}
			}
		}()
	}
	srv := mqtest.RunServer(b, mq.Options{FlushMode: mode}, opts...)
	if err := srv.CreateTopic(mqmeta.TopicConfig{TopicName: "bench", ReadQueueNums: 8, WriteQueueNums: 8}); err != nil {
		b.Fatal(err)
	}
	p, err := rocketmq.NewProducer(producer.WithNameServer([]string{srv.NameServerAddr()}), producer.WithInstanceName(uniq("bench")))
	if err != nil {
		b.Fatal(err)
	}
	if err := p.Start(); err != nil {
		b.Fatal(err)
	}
	defer p.Shutdown()
	body := make([]byte, 1024)
	if _, err := p.SendSync(context.Background(), primitive.NewMessage("bench", body)); err != nil {
		b.Fatal(err)
	}
	const senders = 32
	var next atomic.Int64
	lat := make([][]time.Duration, senders)
	var wg sync.WaitGroup
	b.ResetTimer()
	start := time.Now()
	for w := 0; w < senders; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			for next.Add(1) <= int64(b.N) {
				t := time.Now()
				if _, err := p.SendSync(context.Background(), primitive.NewMessage("bench", body)); err != nil {
					b.Error(err)
					return
				}
				lat[w] = append(lat[w], time.Since(t))
			}
		}(w)
	}
	wg.Wait()
	elapsed := time.Since(start)
	b.StopTimer()
	var all []time.Duration
	for _, l := range lat {
		all = append(all, l...)
	}
	slices.Sort(all)
	pct := func(q float64) float64 {
		if len(all) == 0 {
			return 0
		}
		return float64(all[int(q*float64(len(all)-1))].Microseconds())
	}
	b.ReportMetric(float64(len(all))/elapsed.Seconds(), "msgs/s")
	b.ReportMetric(pct(0.50), "p50-µs")
	b.ReportMetric(pct(0.99), "p99-µs")
	b.ReportMetric(pct(0.999), "p99.9-µs")
}
