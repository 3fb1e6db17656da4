package rocketmqsource

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/apache/rocketmq-client-go/v2/primitive"
	"go.opentelemetry.io/otel/trace"

	"github.com/tide-run/tide/internal/gcfloor"
	"github.com/tide-run/tide/internal/tracing"
)

// BenchmarkRocketMQSourceTracing is BenchmarkRocketMQSourceThroughputUnordered with tracing off (no provider: what
// the adapter runs with OTEL_SDK_DISABLED=true) and on (tide's default: the in-memory store, no exporter), one
// after the other in one run. Each message carries a "traceparent" property (a traced producer), so on makes the
// consumer span and the delivery's client span under it; off still carries the context to the sink. The
// messages are produced before the timer starts, over 8 queues; the measured part is the drain to a no-op sink:
//
//	go test ./eventing/rocketmqsource -run '^$' -bench RocketMQSourceTracing -benchtime 20000x -count 5
//
// msgs/s is b.N over the drain time, cpu-ns/msg the whole process's CPU time (broker, adapter, sink) over it,
// allocs/op the allocations per message.
func BenchmarkRocketMQSourceTracing(b *testing.B) {
	gcfloor.InstallForBenchmark(b)
	for _, on := range []bool{false, true} {
		name := "tracing=off"
		if on {
			name = "tracing=on"
		}
		b.Run(name, func(b *testing.B) {
			var tp trace.TracerProvider
			if on {
				t, err := tracing.New(context.Background(), tracing.Options{Getenv: func(string) string { return "" }})
				if err != nil {
					b.Fatal(err)
				}
				defer func() { _ = t.Shutdown(context.Background()) }()
				tp = t.Provider()
			}
			benchThroughputTraced(b, tp)
		})
	}
}

func benchThroughputTraced(b *testing.B, tp trace.TracerProvider) {
	b.StopTimer()
	b.ReportAllocs()
	var n atomic.Int64
	sink := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n.Add(1)
		w.WriteHeader(http.StatusAccepted)
	}))
	defer sink.Close()
	u, _ := url.Parse(sink.URL)
	srv := startBroker(b)
	createTopic(b, srv, "bench", 8)
	p := newProducer(b, srv)
	const batch = 64
	for i := 0; i < b.N; i += batch {
		var msgs []*primitive.Message
		for j := i; j < b.N && j < i+batch; j++ {
			m := primitive.NewMessage("bench", []byte(`{"n":`+strconv.Itoa(j)+`}`))
			m.WithProperty("q", strconv.Itoa(i/batch)) // a batch goes to one queue (byQueue): spread over 8
			m.WithProperty(tracing.TraceParent, fmt.Sprintf("00-4bf92f3577b34da6a3ce929d0e0e%04x-00f067aa0ba902b7-01", j%65536))
			msgs = append(msgs, m)
		}
		if _, err := p.SendSync(context.Background(), msgs...); err != nil {
			b.Fatal(err)
		}
	}
	a, err := New(Config{SourceNamespace: "ns", SourceName: "bench", NameServers: []string{srv.NameServerAddr()}, Topics: []string{"bench"},
		ConsumerGroup: fmt.Sprintf("g-trace-%d", seq.Add(1)), InitialOffset: "earliest", Sink: u, MaxInFlight: 64, Logger: quiet,
		TracerProvider: tp})
	if err != nil {
		b.Fatal(err)
	}
	b.StartTimer()
	cpu0 := processCPU()
	start := time.Now()
	if err := a.Start(context.Background()); err != nil {
		b.Fatal(err)
	}
	for n.Load() < int64(b.N) {
		time.Sleep(time.Millisecond)
	}
	elapsed := time.Since(start)
	cpu := processCPU() - cpu0
	b.StopTimer()
	_ = a.Stop(context.Background())
	b.ReportMetric(float64(b.N)/elapsed.Seconds(), "msgs/s")
	b.ReportMetric(float64(cpu.Nanoseconds())/float64(b.N), "cpu-ns/msg")
}
