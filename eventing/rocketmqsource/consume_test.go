package rocketmqsource

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/apache/rocketmq-client-go/v2/consumer"
	"github.com/apache/rocketmq-client-go/v2/primitive"

	"github.com/tide-run/tide/eventing/delivery"
	"github.com/tide-run/tide/internal/promtest"
)

// These tests drive the consume callback the client calls, with real HTTP sinks, to pin down what is acknowledged.
// The end-to-end tests against the embedded broker are in adapter_test.go.

func sinkServer(t *testing.T, h http.HandlerFunc) *url.URL {
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	u, _ := url.Parse(srv.URL)
	return u
}

func testAdapter(t *testing.T, sink *url.URL, spec delivery.Spec, ordered bool) *Adapter {
	a, err := New(Config{SourceNamespace: "ns", SourceName: "src", NameServers: []string{"127.0.0.1:9876"}, Topics: []string{"t"},
		ConsumerGroup: "g", Sink: sink, Delivery: spec, Ordered: ordered, MaxInFlight: 4, RetryDelayLevel: 1})
	if err != nil {
		t.Fatal(err)
	}
	return a
}

func concurrentCtx() (context.Context, *primitive.ConsumeConcurrentlyContext) {
	cc := primitive.NewConsumeConcurrentlyContext()
	ctx := primitive.WithConcurrentlyCtx(context.Background(), cc)
	ctx = primitive.WithConsumerCtx(ctx, &primitive.ConsumeMessageContext{MQ: &primitive.MessageQueue{BrokerName: "broker-a"}})
	return ctx, cc
}

func TestConsumeAcknowledgesOnlyAfterAnOutcome(t *testing.T) {
	var got atomic.Int32
	ok := sinkServer(t, func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Ce-Rocketmqbroker") == "broker-a" {
			got.Add(1)
		}
		w.WriteHeader(202)
	})
	failing := sinkServer(t, func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(503) })
	dls := sinkServer(t, func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(202) })
	msg := message("t", orderBody, 0, 1, map[string]string{"UNIQ_KEY": "id1"})

	a := testAdapter(t, ok, delivery.Spec{}, false)
	ctx, _ := concurrentCtx()
	if r, _ := a.consume(ctx, msg); r != consumer.ConsumeSuccess || got.Load() != 1 || a.Counters().Delivered != 1 {
		t.Fatalf("delivered: result %v, sink saw %d, %+v", r, got.Load(), a.Counters())
	}

	a = testAdapter(t, failing, delivery.Spec{Retry: 1, DeadLetter: dls}, false)
	if r, _ := a.consume(ctx, msg); r != consumer.ConsumeSuccess || a.Counters().DeadLettered != 1 {
		t.Fatalf("dead-lettered: result %v %+v", r, a.Counters())
	}

	a = testAdapter(t, failing, delivery.Spec{Retry: 1, DeadLetter: failing}, false)
	ctx, cc := concurrentCtx()
	if r, _ := a.consume(ctx, msg); r != consumer.ConsumeRetryLater || a.Counters().Retried != 1 || cc.DelayLevelWhenNextConsume != 1 {
		t.Fatalf("retry: result %v delay %d %+v", r, cc.DelayLevelWhenNextConsume, a.Counters())
	}

	a = testAdapter(t, failing, delivery.Spec{}, true)
	oc := primitive.NewConsumeOrderlyContext()
	octx := primitive.WithOrderlyCtx(context.Background(), oc)
	if r, _ := a.consume(octx, msg); r != consumer.SuspendCurrentQueueAMoment || oc.SuspendCurrentQueueTimeMillis != 1000 {
		t.Fatalf("ordered retry: result %v suspend %d", r, oc.SuspendCurrentQueueTimeMillis)
	}
}

// TestSinkBodyIgnored: a source does not ask for replies (no Prefer: reply), so a 2xx is a delivery whatever its
// body holds (the data-plane spec); only a Trigger, which asks, fails a 2xx whose body is not a CloudEvent.
func TestSinkBodyIgnored(t *testing.T) {
	for _, body := range []string{"", "plain text", `{"status":"ok"}`, `{"specversion":"1.0",`} {
		var prefer atomic.Value
		sink := sinkServer(t, func(w http.ResponseWriter, r *http.Request) {
			prefer.Store(r.Header.Get("Prefer"))
			w.Header().Set("Content-Type", "application/cloudevents+json")
			_, _ = io.WriteString(w, body)
		})
		a := testAdapter(t, sink, delivery.Spec{Retry: 2}, false)
		ctx, _ := concurrentCtx()
		msg := message("t", orderBody, 0, 1, map[string]string{"UNIQ_KEY": "id1"})
		if r, _ := a.consume(ctx, msg); r != consumer.ConsumeSuccess || a.Counters().Delivered != 1 || a.Counters().Retried != 0 {
			t.Fatalf("body %q: result %v %+v", body, r, a.Counters())
		}
		if p := prefer.Load(); p != "" {
			t.Errorf("source sent Prefer: %v", p)
		}
	}
}

func TestConsumeBoundsInFlight(t *testing.T) {
	var cur, peak atomic.Int32
	release := make(chan struct{})
	sink := sinkServer(t, func(w http.ResponseWriter, r *http.Request) {
		n := cur.Add(1)
		for {
			p := peak.Load()
			if n <= p || peak.CompareAndSwap(p, n) {
				break
			}
		}
		<-release
		cur.Add(-1)
		w.WriteHeader(202)
	})
	a := testAdapter(t, sink, delivery.Spec{}, false) // MaxInFlight 4
	var wg sync.WaitGroup
	for i := 0; i < 12; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			ctx, _ := concurrentCtx()
			a.consume(ctx, message("t", "x", 0, int64(i), nil))
		}(i)
	}
	deadline := time.Now().Add(10 * time.Second)
	for cur.Load() < 4 && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}
	if a.Counters().InFlight != 4 {
		t.Errorf("in flight %d, want 4", a.Counters().InFlight)
	}
	close(release)
	wg.Wait()
	if peak.Load() != 4 || a.Counters().Delivered != 12 {
		t.Fatalf("peak %d delivered %d", peak.Load(), a.Counters().Delivered)
	}
}

// TestStopDoesNotAcknowledgeUnfinished: a delivery cut off by Stop's deadline ends unacknowledged.
func TestStopDoesNotAcknowledgeUnfinished(t *testing.T) {
	started := make(chan struct{}, 1)
	sink := sinkServer(t, func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.ReadAll(r.Body) // lets the server notice the client going away
		started <- struct{}{}
		select {
		case <-r.Context().Done():
		case <-time.After(10 * time.Second):
		}
	})
	a := testAdapter(t, sink, delivery.Spec{}, false)
	res := make(chan consumer.ConsumeResult, 1)
	go func() {
		ctx, _ := concurrentCtx()
		r, _ := a.consume(ctx, message("t", "x", 0, 1, nil))
		res <- r
	}()
	<-started
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if err := a.Stop(ctx); err == nil {
		t.Error("Stop reported a clean drain with a delivery stuck")
	}
	if r := <-res; r == consumer.ConsumeSuccess {
		t.Fatal("unfinished delivery acknowledged")
	}
	if c := a.Counters(); c.Delivered != 0 || c.DeadLettered != 0 || c.Retried != 0 || c.Abandoned != 1 {
		t.Fatalf("%+v", c)
	}
	// After Stop, new callbacks do not deliver.
	ctx2, _ := concurrentCtx()
	if r, _ := a.consume(ctx2, message("t", "y", 0, 2, nil)); r == consumer.ConsumeSuccess {
		t.Fatal("callback after Stop acknowledged")
	}
	if c := a.Counters(); c.Abandoned != 2 || c.Retried != 0 {
		t.Fatalf("after Stop: %+v", c)
	}
}

func TestHandler(t *testing.T) {
	var cur *Adapter
	srv := httptest.NewServer(Handler(func() *Adapter { return cur }))
	defer srv.Close()
	get := func(path string) (int, string) {
		resp, err := http.Get(srv.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	if code, _ := get("/healthz"); code != 503 {
		t.Errorf("no adapter: %d", code)
	}
	sink := sinkServer(t, func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(202) })
	cur = testAdapter(t, sink, delivery.Spec{}, false)
	ctx, _ := concurrentCtx()
	cur.consume(ctx, message("t", "x", 0, 1, nil))
	cur.setStatus(false, "TopicNotFound", "no route")
	if code, body := get("/healthz"); code != 503 || !strings.Contains(body, "TopicNotFound") {
		t.Errorf("not deployed: %d %q", code, body)
	}
	cur.setStatus(true, "", "")
	if code, _ := get("/healthz"); code != 200 {
		t.Errorf("deployed: %d", code)
	}
	f := promtest.MustScrape(t, srv.URL+"/metrics", nil)
	if v, _ := f.Value("tide_rocketmqsource_messages_total", map[string]string{"outcome": "delivered"}); v != 1 {
		t.Errorf("tide_rocketmqsource_messages_total{outcome=delivered} = %v, want 1", v)
	}
	if v, _ := f.Value("tide_rocketmqsource_delivery_duration_seconds", nil); v != 1 {
		t.Errorf("tide_rocketmqsource_delivery_duration_seconds count = %v, want 1", v)
	}
	if v, _ := f.Value("tide_rocketmqsource_deployed", nil); v != 1 {
		t.Errorf("tide_rocketmqsource_deployed = %v, want 1", v)
	}
	if !f.Has("go_goroutines", nil) || !f.Has("process_cpu_seconds_total", nil) {
		t.Errorf("no Go runtime or process metrics: %v", f.Names())
	}
}
