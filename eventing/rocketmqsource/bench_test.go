package rocketmqsource

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"sort"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/apache/rocketmq-client-go/v2"
	"github.com/apache/rocketmq-client-go/v2/consumer"
	"github.com/apache/rocketmq-client-go/v2/primitive"

	"github.com/tide-run/tide/internal/gcfloor"
)

// Benchmarks (rerunnable; results in docs/BENCHMARKS.md, section RocketMQSource):
//
//	go test -run '^$' -bench 'RocketMQSource' -benchtime 20000x ./eventing/rocketmqsource/
//
// Throughput: b.N messages are produced first, then the adapter drains them to a no-op HTTP sink; msgs/s is
// b.N over the drain time. Latency: messages are produced at a fixed rate (2,000/s) while the adapter runs;
// added latency is sink receipt minus the moment before the producer's send, p50 and p99.

func benchBroker(b *testing.B, queues int) (srvAddr string, produce func(n int)) {
	srv := startBroker(b)
	createTopic(b, srv, "bench", queues)
	p := newProducer(b, srv)
	produce = func(n int) {
		const batch = 64
		for i := 0; i < n; i += batch {
			var msgs []*primitive.Message
			for j := i; j < n && j < i+batch; j++ {
				msgs = append(msgs, primitive.NewMessage("bench", []byte(`{"n":`+strconv.Itoa(j)+`}`)))
			}
			if _, err := p.SendSync(context.Background(), msgs...); err != nil {
				b.Fatal(err)
			}
		}
	}
	return srv.NameServerAddr(), produce
}

func benchThroughput(b *testing.B, ordered bool) {
	b.StopTimer()
	var n atomic.Int64
	sink := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n.Add(1)
		w.WriteHeader(http.StatusAccepted)
	}))
	defer sink.Close()
	u, _ := url.Parse(sink.URL)
	ns, produce := benchBroker(b, 8)
	produce(b.N)
	a, err := New(Config{SourceNamespace: "ns", SourceName: "bench", NameServers: []string{ns}, Topics: []string{"bench"},
		ConsumerGroup: fmt.Sprintf("g-bench-%d", seq.Add(1)), InitialOffset: "earliest", Sink: u, Ordered: ordered, MaxInFlight: 64, Logger: quiet})
	if err != nil {
		b.Fatal(err)
	}
	b.StartTimer()
	start := time.Now()
	if err := a.Start(context.Background()); err != nil {
		b.Fatal(err)
	}
	for n.Load() < int64(b.N) {
		time.Sleep(time.Millisecond)
	}
	elapsed := time.Since(start)
	b.StopTimer()
	_ = a.Stop(context.Background())
	b.ReportMetric(float64(b.N)/elapsed.Seconds(), "msgs/s")
}

func benchLatency(b *testing.B, ordered bool) {
	b.StopTimer()
	var mu sync.Mutex
	lat := make([]time.Duration, 0, b.N)
	sink := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		sent, _ := strconv.ParseInt(r.Header.Get("Ce-Rocketmqheadersentns"), 10, 64)
		d := time.Since(time.Unix(0, sent))
		mu.Lock()
		lat = append(lat, d)
		mu.Unlock()
		w.WriteHeader(http.StatusAccepted)
	}))
	defer sink.Close()
	u, _ := url.Parse(sink.URL)
	srv := startBroker(b)
	createTopic(b, srv, "bench", 8)
	p := newProducer(b, srv)
	send(b, p, primitive.NewMessage("bench", []byte("warm-up")))
	a, err := New(Config{SourceNamespace: "ns", SourceName: "bench", NameServers: []string{srv.NameServerAddr()}, Topics: []string{"bench"},
		ConsumerGroup: fmt.Sprintf("g-lat-%d", seq.Add(1)), InitialOffset: "earliest", Sink: u, Ordered: ordered, MaxInFlight: 64, Logger: quiet})
	if err != nil {
		b.Fatal(err)
	}
	if err := a.Start(context.Background()); err != nil {
		b.Fatal(err)
	}
	defer a.Stop(context.Background())
	for { // the consumer owns its queues once the warm-up message arrived
		mu.Lock()
		k := len(lat)
		mu.Unlock()
		if k > 0 {
			break
		}
		time.Sleep(time.Millisecond)
	}
	mu.Lock()
	lat = lat[:0]
	mu.Unlock()
	const rate = 2000
	b.StartTimer()
	start := time.Now()
	for i := 0; i < b.N; i++ {
		if d := time.Until(start.Add(time.Duration(i) * time.Second / rate)); d > 0 {
			time.Sleep(d)
		}
		m := primitive.NewMessage("bench", []byte(`{"n":`+strconv.Itoa(i)+`}`))
		m.WithProperty("sentns", strconv.FormatInt(time.Now().UnixNano(), 10))
		if _, err := p.SendSync(context.Background(), m); err != nil {
			b.Fatal(err)
		}
	}
	for {
		mu.Lock()
		k := len(lat)
		mu.Unlock()
		if k >= b.N {
			break
		}
		time.Sleep(time.Millisecond)
	}
	b.StopTimer()
	mu.Lock()
	defer mu.Unlock()
	sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
	b.ReportMetric(float64(lat[len(lat)/2].Microseconds())/1000, "p50-ms")
	b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds())/1000, "p99-ms")
	b.ReportMetric(0, "ns/op")
}

// Every benchmark here runs with the heap floor the tide binary installs (internal/gcfloor), so it measures the
// process tide runs; the peer below gets the same.
func BenchmarkRocketMQSourceThroughputUnordered(b *testing.B) {
	gcfloor.InstallForBenchmark(b)
	benchThroughput(b, false)
}

func BenchmarkRocketMQSourceThroughputOrdered(b *testing.B) {
	gcfloor.InstallForBenchmark(b)
	benchThroughput(b, true)
}

func BenchmarkRocketMQSourceLatencyUnordered(b *testing.B) {
	gcfloor.InstallForBenchmark(b)
	benchLatency(b, false)
}

func BenchmarkRocketMQSourceLatencyOrdered(b *testing.B) {
	gcfloor.InstallForBenchmark(b)
	benchLatency(b, true)
}

// BenchmarkRawPushConsumerBaseline is the peer measured in the same run: the official client's push consumer with
// a callback that does nothing, on the same broker and topic layout. The gap to the Throughput benchmarks is the
// adapter's cost (mapping, HTTP delivery, bookkeeping).
func BenchmarkRawPushConsumerBaseline(b *testing.B) {
	gcfloor.InstallForBenchmark(b)
	b.StopTimer()
	srv := startBroker(b)
	createTopic(b, srv, "bench", 8)
	p := newProducer(b, srv)
	for i := 0; i < b.N; i += 64 {
		var msgs []*primitive.Message
		for j := i; j < b.N && j < i+64; j++ {
			msgs = append(msgs, primitive.NewMessage("bench", []byte(`{"n":`+strconv.Itoa(j)+`}`)))
		}
		if _, err := p.SendSync(context.Background(), msgs...); err != nil {
			b.Fatal(err)
		}
	}
	var n atomic.Int64
	c, err := rocketmq.NewPushConsumer(consumer.WithNameServer([]string{srv.NameServerAddr()}), consumer.WithGroupName(fmt.Sprintf("g-raw-%d", seq.Add(1))),
		consumer.WithInstance(fmt.Sprintf("raw-%d", seq.Add(1))), consumer.WithConsumeFromWhere(consumer.ConsumeFromFirstOffset),
		consumer.WithConsumeGoroutineNums(64))
	if err != nil {
		b.Fatal(err)
	}
	_ = c.Subscribe("bench", consumer.MessageSelector{}, func(_ context.Context, msgs ...*primitive.MessageExt) (consumer.ConsumeResult, error) {
		n.Add(int64(len(msgs)))
		return consumer.ConsumeSuccess, nil
	})
	b.StartTimer()
	start := time.Now()
	if err := c.Start(); err != nil {
		b.Fatal(err)
	}
	for n.Load() < int64(b.N) {
		time.Sleep(time.Millisecond)
	}
	elapsed := time.Since(start)
	b.StopTimer()
	_ = c.Shutdown()
	b.ReportMetric(float64(b.N)/elapsed.Seconds(), "msgs/s")
}
