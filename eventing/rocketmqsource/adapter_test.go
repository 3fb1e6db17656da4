package rocketmqsource

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"math/rand"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/apache/rocketmq-client-go/v2"
	"github.com/apache/rocketmq-client-go/v2/primitive"
	"github.com/apache/rocketmq-client-go/v2/producer"
	cloudevents "github.com/cloudevents/sdk-go/v2"
	"github.com/cloudevents/sdk-go/v2/binding"
	cehttp "github.com/cloudevents/sdk-go/v2/protocol/http"

	"github.com/tide-run/tide/apis/sources/v1alpha1"
	"github.com/tide-run/tide/eventing/delivery"
	"github.com/tide-run/tide/mq"
	"github.com/tide-run/tide/mq/mqmeta"
	"github.com/tide-run/tide/mq/mqtest"
)

// End-to-end tests: tide's embedded broker (real sockets), the official client, real HTTP sinks.

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

func startBroker(t testing.TB) *mq.Server {
	t.Helper()
	// Redeliveries through %RETRY% come back fast in tests.
	return mqtest.RunServer(t, mq.Options{DelayLevels: mqtest.DelayLevels(100 * time.Millisecond)})
}

func createTopic(t testing.TB, srv *mq.Server, topic string, queues int) {
	t.Helper()
	if err := srv.CreateTopic(mqmeta.TopicConfig{TopicName: topic, ReadQueueNums: queues, WriteQueueNums: queues, Perm: mqmeta.PermRW}); err != nil {
		t.Fatal(err)
	}
}

var seq atomic.Int64

// byQueue sends a message to the queue named by its "q" property.
type byQueue struct{}

func (byQueue) Select(m *primitive.Message, mqs []*primitive.MessageQueue, _ string) *primitive.MessageQueue {
	q, _ := strconv.Atoi(m.GetProperty("q"))
	return mqs[q%len(mqs)]
}

func newProducer(t testing.TB, srv *mq.Server) rocketmq.Producer {
	t.Helper()
	p, err := rocketmq.NewProducer(producer.WithNameServer([]string{srv.NameServerAddr()}), producer.WithRetry(2),
		producer.WithInstanceName(fmt.Sprintf("p-%d", seq.Add(1))), producer.WithGroupName(fmt.Sprintf("pg-%d", seq.Add(1))),
		producer.WithQueueSelector(byQueue{}))
	if err != nil {
		t.Fatal(err)
	}
	if err := p.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = p.Shutdown() })
	return p
}

func send(t testing.TB, p rocketmq.Producer, m *primitive.Message) string {
	t.Helper()
	r, err := p.SendSync(context.Background(), m)
	if err != nil || r.Status != primitive.SendOK {
		t.Fatalf("send: %v %v", r, err)
	}
	return r.MsgID
}

// recordingSink is a real HTTP receiver. decide returns the status for the n-th request (from 1) carrying an event.
type recordingSink struct {
	mu     sync.Mutex
	ok     map[string]int // event id -> 2xx answers
	events map[string]cloudevents.Event
	order  map[string][]string // rocketmqqueueid -> bodies in the order they were accepted
	calls  atomic.Int64
	decide func(ev cloudevents.Event, n int64) int
	url    *url.URL
}

func newSink(t *testing.T, decide func(ev cloudevents.Event, n int64) int) *recordingSink {
	s := &recordingSink{ok: map[string]int{}, events: map[string]cloudevents.Event{}, order: map[string][]string{}, decide: decide}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ev, err := binding.ToEvent(r.Context(), cehttp.NewMessageFromHttpRequest(r))
		if err != nil {
			w.WriteHeader(400)
			return
		}
		n := s.calls.Add(1)
		code := 202
		if s.decide != nil {
			code = s.decide(*ev, n)
		}
		if code < 300 {
			s.mu.Lock()
			s.ok[ev.ID()]++
			s.events[ev.ID()] = *ev
			q, _ := ev.Extensions()[ExtQueueID].(string)
			s.order[q] = append(s.order[q], string(ev.Data()))
			s.mu.Unlock()
		}
		w.WriteHeader(code)
	}))
	t.Cleanup(srv.Close)
	s.url, _ = url.Parse(srv.URL)
	return s
}

func (s *recordingSink) unique() int { s.mu.Lock(); defer s.mu.Unlock(); return len(s.ok) }

func (s *recordingSink) has(ids []string) (missing []string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, id := range ids {
		if s.ok[id] == 0 {
			missing = append(missing, id)
		}
	}
	return missing
}

func startAdapter(t *testing.T, srv *mq.Server, cfg Config) *Adapter {
	t.Helper()
	cfg.NameServers = []string{srv.NameServerAddr()}
	if cfg.SourceName == "" {
		cfg.SourceNamespace, cfg.SourceName = "ns", "src"
	}
	if cfg.InitialOffset == "" {
		cfg.InitialOffset = "earliest"
	}
	cfg.Logger = quiet
	a, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := a.Start(ctx); err != nil {
		t.Fatal(err)
	}
	if st := a.Status(); !st.Deployed {
		t.Fatalf("status %+v", st)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = a.Stop(ctx)
	})
	return a
}

func waitFor(t *testing.T, d time.Duration, what func() string) {
	t.Helper()
	deadline := time.Now().Add(d)
	for {
		msg := what()
		if msg == "" {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("after %v: %s", d, msg)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestEndToEndMapping(t *testing.T) {
	srv := startBroker(t)
	createTopic(t, srv, "orders", 2)
	p := newProducer(t, srv)
	plain := send(t, p, primitive.NewMessage("orders", []byte(orderBody)))
	tagged := send(t, p, primitive.NewMessage("orders", []byte(orderBody)).WithTag("completed").WithKeys([]string{"123214342", "k2"}))
	rich := primitive.NewMessage("orders", []byte("hello")).WithTag("note")
	rich.WithProperty("Content-Type", "text/plain")
	rich.WithProperty("x-Region", "eu")
	richID := send(t, p, rich)
	ce := primitive.NewMessage("orders", []byte(`{"n":1}`))
	ce.WithProperties(map[string]string{"CE_specversion": "1.0", "CE_id": "evt-1", "CE_source": "/shop", "CE_type": "com.example.x", "CE_contenttype": "application/json"})
	send(t, p, ce)

	sink := newSink(t, nil)
	startAdapter(t, srv, Config{Topics: []string{"orders"}, ConsumerGroup: "g-map", Sink: sink.url, Overrides: map[string]string{"team": "checkout"}})
	waitFor(t, 20*time.Second, func() string {
		if sink.unique() < 4 {
			return fmt.Sprintf("%d of 4 events arrived", sink.unique())
		}
		return ""
	})
	sink.mu.Lock()
	defer sink.mu.Unlock()
	check := func(id, subject, ct string, ext map[string]string) {
		ev, ok := sink.events[id]
		if !ok {
			t.Errorf("event %s missing; got %v", id, sink.ok)
			return
		}
		if ev.Source() != "/apis/v1/namespaces/ns/rocketmqsources/src#orders" || ev.Type() != "dev.knative.rocketmq.event" ||
			ev.Subject() != subject || ev.DataContentType() != ct || ev.Time().IsZero() {
			t.Errorf("%s: attributes %v", id, ev.Context)
		}
		for k, v := range ext {
			if got := ev.Extensions()[k]; got != v {
				t.Errorf("%s: extension %s = %v, want %q", id, k, got, v)
			}
		}
	}
	check(plain, "", "application/json", map[string]string{"rocketmqtopic": "orders", "rocketmqbroker": "broker-a", "team": "checkout", "rocketmqreconsume": "0"})
	check(tagged, "completed", "application/json", map[string]string{"rocketmqtag": "completed", "rocketmqkeys": "123214342 k2"})
	check(richID, "note", "text/plain", map[string]string{"rocketmqheaderxregion": "eu"})
	if ev, ok := sink.events["evt-1"]; !ok || ev.Source() != "/shop" || ev.Type() != "com.example.x" || ev.Extensions()["team"] != "checkout" {
		t.Errorf("CloudEvents-binding message not passed through: %v", sink.events)
	}
}

func sendMany(t *testing.T, p rocketmq.Producer, topic string, queues, perQueue int) []string {
	var ids []string
	for i := 0; i < perQueue; i++ {
		for q := 0; q < queues; q++ {
			m := primitive.NewMessage(topic, []byte(fmt.Sprintf("%d:%d", q, i)))
			m.WithProperty("q", strconv.Itoa(q))
			ids = append(ids, send(t, p, m))
		}
	}
	return ids
}

// TestHalfFailingSinkLosesNothing: a sink failing 50% of requests at random; every message ends delivered or
// dead-lettered (counted), or, without a dead-letter sink, comes back through %RETRY% until delivered.
func TestHalfFailingSinkLosesNothing(t *testing.T) {
	srv := startBroker(t)
	createTopic(t, srv, "work", 4)
	ids := sendMany(t, newProducer(t, srv), "work", 4, 50)
	var mu sync.Mutex
	rnd := rand.New(rand.NewSource(1))
	coin := func(cloudevents.Event, int64) int {
		mu.Lock()
		defer mu.Unlock()
		if rnd.Intn(2) == 0 {
			return 500
		}
		return 202
	}

	t.Run("with dead-letter sink", func(t *testing.T) {
		sink, dls := newSink(t, coin), newSink(t, nil)
		a := startAdapter(t, srv, Config{Topics: []string{"work"}, ConsumerGroup: "g-half-dls", Sink: sink.url, MaxInFlight: 16,
			Delivery: delivery.Spec{Retry: 1, DeadLetter: dls.url}})
		waitFor(t, 30*time.Second, func() string {
			c := a.Counters()
			if c.Delivered+c.DeadLettered < int64(len(ids)) {
				return fmt.Sprintf("counters %+v of %d", c, len(ids))
			}
			return ""
		})
		c := a.Counters()
		if c.Delivered+c.DeadLettered != int64(len(ids)) || c.Retried != 0 || c.DeadLettered == 0 || c.Delivered == 0 {
			t.Fatalf("counters %+v for %d messages", c, len(ids))
		}
		var lost []string
		sink.mu.Lock()
		dls.mu.Lock()
		for _, id := range ids {
			if sink.ok[id] == 0 && dls.ok[id] == 0 {
				lost = append(lost, id)
			}
		}
		if int64(len(dls.ok)) != c.DeadLettered {
			t.Errorf("dead-letter sink holds %d, counter says %d", len(dls.ok), c.DeadLettered)
		}
		for id, ev := range dls.events {
			if ev.Extensions()["knativeerrorcode"] == nil || ev.Extensions()["knativeerrordest"] == nil {
				t.Errorf("dead letter %s lacks knativeerror extensions", id)
			}
		}
		dls.mu.Unlock()
		sink.mu.Unlock()
		if len(lost) > 0 {
			t.Fatalf("%d messages lost: %v", len(lost), lost)
		}
	})

	t.Run("dead-letter sink failing half the time too", func(t *testing.T) {
		sink, dls := newSink(t, coin), newSink(t, coin)
		a := startAdapter(t, srv, Config{Topics: []string{"work"}, ConsumerGroup: "g-half-both", Sink: sink.url, MaxInFlight: 16,
			RetryDelayLevel: 1, MaxReconsumeTimes: 1000, Delivery: delivery.Spec{DeadLetter: dls.url}})
		waitFor(t, 45*time.Second, func() string {
			sink.mu.Lock()
			dls.mu.Lock()
			defer sink.mu.Unlock()
			defer dls.mu.Unlock()
			missing := 0
			for _, id := range ids {
				if sink.ok[id] == 0 && dls.ok[id] == 0 {
					missing++
				}
			}
			if missing > 0 {
				return fmt.Sprintf("%d of %d neither delivered nor dead-lettered (counters %+v)", missing, len(ids), a.Counters())
			}
			return ""
		})
		c := a.Counters()
		if c.Delivered == 0 || c.DeadLettered == 0 || c.Retried == 0 || c.Delivered+c.DeadLettered < int64(len(ids)) {
			t.Fatalf("counters %+v: every path (delivered, dead-lettered, handed back) should have been taken", c)
		}
	})

	t.Run("through RocketMQ retry", func(t *testing.T) {
		sink := newSink(t, coin)
		a := startAdapter(t, srv, Config{Topics: []string{"work"}, ConsumerGroup: "g-half-retry", Sink: sink.url, MaxInFlight: 16,
			RetryDelayLevel: 1})
		waitFor(t, 45*time.Second, func() string {
			if m := sink.has(ids); len(m) > 0 {
				return fmt.Sprintf("%d of %d not delivered yet (counters %+v)", len(m), len(ids), a.Counters())
			}
			return ""
		})
		if c := a.Counters(); c.Retried == 0 || c.Delivered < int64(len(ids)) {
			t.Fatalf("counters %+v", c)
		}
	})
}

// outage is how long TestSinkDownThenBack keeps the sink down;
// `go test -run TestSinkDownThenBack ./eventing/rocketmqsource -outage=1m` runs the full minute.
var outage = flag.Duration("outage", 2*time.Second, "sink outage in TestSinkDownThenBack")

// TestSinkDownThenBack: the sink answers 503 for a while (-outage); everything arrives once it is back.
func TestSinkDownThenBack(t *testing.T) {
	srv := startBroker(t)
	createTopic(t, srv, "work", 2)
	ids := sendMany(t, newProducer(t, srv), "work", 2, 50)
	var down atomic.Bool
	down.Store(true)
	sink := newSink(t, func(cloudevents.Event, int64) int {
		if down.Load() {
			return 503
		}
		return 202
	})
	a := startAdapter(t, srv, Config{Topics: []string{"work"}, ConsumerGroup: "g-down", Sink: sink.url, RetryDelayLevel: 1,
		MaxReconsumeTimes: 1000, Delivery: delivery.Spec{Retry: 2, BackoffDelay: 50 * time.Millisecond}})
	waitFor(t, 20*time.Second, func() string {
		if a.Counters().Retried < int64(len(ids)) {
			return fmt.Sprintf("not every message failed once yet: %+v", a.Counters())
		}
		return ""
	})
	time.Sleep(*outage) // the outage: a stretch of time, not a wait for a condition
	if sink.unique() != 0 {
		t.Fatalf("sink accepted events while down")
	}
	down.Store(false)
	waitFor(t, 30*time.Second, func() string {
		if m := sink.has(ids); len(m) > 0 {
			return fmt.Sprintf("%d of %d missing after the sink came back (counters %+v)", len(m), len(ids), a.Counters())
		}
		return ""
	})
}

// TestOrderedPerQueueOrder: ordered delivery keeps each queue's order under random failures, and a message that
// keeps failing blocks its own queue only.
func TestOrderedPerQueueOrder(t *testing.T) {
	srv := startBroker(t)
	createTopic(t, srv, "seq", 4)
	const queues, per = 4, 40
	sendMany(t, newProducer(t, srv), "seq", queues, per)
	var mu sync.Mutex
	rnd := rand.New(rand.NewSource(2))
	var stuck atomic.Bool
	stuck.Store(true)
	sink := newSink(t, func(ev cloudevents.Event, _ int64) int {
		if string(ev.Data()) == "0:5" && stuck.Load() {
			return 500 // queue 0's sixth message fails until released
		}
		mu.Lock()
		defer mu.Unlock()
		if rnd.Intn(10) < 3 {
			return 500
		}
		return 202
	})
	a := startAdapter(t, srv, Config{Topics: []string{"seq"}, ConsumerGroup: "g-ordered", Sink: sink.url, Ordered: true,
		OrderedRetryInterval: 20 * time.Millisecond, MaxReconsumeTimes: 1000})
	// Map the message's own queue (first number of the body) to the order of acceptance.
	byQueue := func() map[int][]int {
		sink.mu.Lock()
		defer sink.mu.Unlock()
		out := map[int][]int{}
		for _, bodies := range sink.order {
			for _, b := range bodies {
				var q, i int
				fmt.Sscanf(b, "%d:%d", &q, &i)
				out[q] = append(out[q], i)
			}
		}
		return out
	}
	waitFor(t, 30*time.Second, func() string {
		got := byQueue()
		if len(got[0]) > 5 {
			t.Fatalf("queue 0 went past its failing message: %v", got[0])
		}
		if len(got[0]) < 5 {
			return fmt.Sprintf("queue 0 has %d of the 5 before the failing message", len(got[0]))
		}
		for q := 1; q < queues; q++ {
			if len(got[q]) < per {
				return fmt.Sprintf("queue %d has %d of %d", q, len(got[q]), per)
			}
		}
		return ""
	})
	time.Sleep(200 * time.Millisecond) // a stretch during which queue 0 must stay blocked
	if got := byQueue()[0]; len(got) != 5 {
		t.Fatalf("queue 0 went past its failing message: %v", got)
	}
	stuck.Store(false)
	waitFor(t, 30*time.Second, func() string {
		if got := byQueue()[0]; len(got) < per {
			return fmt.Sprintf("queue 0 has %d of %d", len(got), per)
		}
		return ""
	})
	for q, seqs := range byQueue() {
		for i, n := range seqs {
			if n != i {
				t.Fatalf("queue %d out of order: %v", q, seqs)
			}
		}
	}
	if a.Counters().Retried == 0 {
		t.Error("no failures happened; the test proves nothing")
	}
}

// TestRestartResumesFromCommittedOffsets: stop mid-stream with one message stuck in delivery and others done
// after it; a new adapter with the same group redelivers the stuck one (the committed offset never passed it)
// and everything else not yet delivered, with nothing lost.
func TestRestartResumesFromCommittedOffsets(t *testing.T) {
	srv := startBroker(t)
	createTopic(t, srv, "work", 1)
	p := newProducer(t, srv)
	ids := sendMany(t, p, "work", 1, 30)
	var hold atomic.Bool
	hold.Store(true)
	block := make(chan struct{})
	sink := newSink(t, func(ev cloudevents.Event, _ int64) int {
		if string(ev.Data()) == "0:3" && hold.Load() {
			select { // stuck until the first adapter gives up on it
			case <-block:
			case <-time.After(10 * time.Second):
			}
			return 503
		}
		return 202
	})
	cfg := Config{Topics: []string{"work"}, ConsumerGroup: "g-restart", Sink: sink.url, MaxInFlight: 8}
	a1, err := New(withBroker(cfg, srv))
	if err != nil {
		t.Fatal(err)
	}
	if err := a1.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 20*time.Second, func() string {
		if c := a1.Counters(); c.Delivered < int64(len(ids)-1) {
			return fmt.Sprintf("first adapter delivered %d", c.Delivered)
		}
		return ""
	})
	stopCtx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	_ = a1.Stop(stopCtx) // "0:3" is still in flight: abandoned, not acknowledged
	cancel()
	// The offset the client committed on shutdown stops exactly at the unfinished message (queue offset 3), although
	// the 26 messages after it were delivered: the process queue's minimum, verified at the broker.
	// The client commits with a oneway request, so poll for it.
	waitFor(t, 5*time.Second, func() string {
		st := srv.ConsumeStats("g-restart", "work")
		if len(st) == 1 && st[0].ConsumerOffset > 3 {
			t.Fatalf("committed offset %d passed the unfinished message at 3", st[0].ConsumerOffset)
		}
		if len(st) != 1 || st[0].ConsumerOffset != 3 {
			return fmt.Sprintf("committed offsets %+v, want queue 0 at 3", st)
		}
		return ""
	})
	close(block)
	hold.Store(false)
	if sink.has(ids[3:4]) == nil {
		t.Fatal("stuck message delivered by the first adapter")
	}
	more := sendMany(t, p, "work", 1, 10) // produced while no adapter runs
	startAdapter(t, srv, cfg)
	all := append(append([]string{}, ids...), more...)
	waitFor(t, 20*time.Second, func() string {
		if m := sink.has(all); len(m) > 0 {
			return fmt.Sprintf("after restart %d missing: %v", len(m), m)
		}
		return ""
	})
}

func withBroker(cfg Config, srv *mq.Server) Config {
	cfg.NameServers = []string{srv.NameServerAddr()}
	cfg.SourceNamespace, cfg.SourceName, cfg.InitialOffset, cfg.Logger = "ns", "src", "earliest", quiet
	return cfg
}

func TestStartReportsReasons(t *testing.T) {
	srv := startBroker(t)
	sink := newSink(t, nil)
	a, err := New(withBroker(Config{Topics: []string{"no-such-topic"}, ConsumerGroup: "g-x", Sink: sink.url}, srv))
	if err != nil {
		t.Fatal(err)
	}
	if err := a.Start(context.Background()); err == nil || a.Status().Reason != "TopicNotFound" {
		t.Errorf("missing topic: %v, status %+v", err, a.Status())
	}
	if msg := a.Status().Message; !strings.Contains(msg, "tide mq topic create no-such-topic") {
		t.Errorf("missing topic: the message %q does not say how to create it", msg)
	}
	_ = a.Stop(context.Background())

	// A port nothing listens on.
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	cfg := withBroker(Config{Topics: []string{"t"}, ConsumerGroup: "g-y", Sink: sink.url}, srv)
	cfg.NameServers = []string{addr}
	a, _ = New(cfg)
	if err := a.Start(context.Background()); err == nil || a.Status().Reason != "NameServerUnreachable" || !strings.Contains(err.Error(), addr) {
		t.Errorf("unreachable: %v, status %+v", err, a.Status())
	}
}

// TestTideRestartMidStream: the whole of tide restarts mid-stream (adapter stopped, broker shut down and started
// again on the same data directory, a new adapter with the same group): every message is delivered, the ones the
// first run finished are not all redelivered (the offsets survived), nothing is lost.
func TestTideRestartMidStream(t *testing.T) {
	dir := t.TempDir()
	startOn := func() *mq.Server { return mqtest.RunServer(t, mq.Options{DataDir: dir}) }
	srv := startOn()
	createTopic(t, srv, "work", 2)
	p := newProducer(t, srv)
	ids := sendMany(t, p, "work", 2, 100)
	_ = p.Shutdown()

	var slow atomic.Bool
	slow.Store(true)
	sink := newSink(t, func(ev cloudevents.Event, n int64) int {
		if slow.Load() && n > 60 {
			return 503 // the first run gets through about 60, then the sink stalls until the restart
		}
		return 202
	})
	cfg := Config{Topics: []string{"work"}, ConsumerGroup: "g-tide-restart", Sink: sink.url, MaxInFlight: 8, RetryDelayLevel: 1}
	a1, err := New(withBroker(cfg, srv))
	if err != nil {
		t.Fatal(err)
	}
	if err := a1.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 20*time.Second, func() string {
		if c := a1.Counters(); c.Delivered < 50 {
			return fmt.Sprintf("first run delivered %d", c.Delivered)
		}
		return ""
	})
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	_ = a1.Stop(ctx)
	cancel()
	firstRun := sink.unique()
	ctx, cancel = context.WithTimeout(context.Background(), 10*time.Second)
	if err := srv.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	cancel()

	srv = startOn()
	slow.Store(false)
	before := sink.calls.Load()
	a2 := startAdapter(t, srv, cfg)
	waitFor(t, 30*time.Second, func() string {
		if m := sink.has(ids); len(m) > 0 {
			return fmt.Sprintf("after the restart %d of %d missing (counters %+v)", len(m), len(ids), a2.Counters())
		}
		return ""
	})
	if redone := sink.calls.Load() - before; redone >= int64(len(ids)) {
		t.Errorf("second run made %d deliveries for %d messages after %d were done: offsets did not survive", redone, len(ids), firstRun)
	}
}

// TestTagSelector: spec.selector reaches the broker and the client; only matching tags are delivered, and the
// others are acknowledged without a delivery (they are not this source's).
func TestTagSelector(t *testing.T) {
	srv := startBroker(t)
	createTopic(t, srv, "orders", 2)
	p := newProducer(t, srv)
	var want []string
	for i, tag := range []string{"paid", "created", "refunded", "paid", "shipped"} {
		id := send(t, p, primitive.NewMessage("orders", []byte(fmt.Sprintf(`{"i":%d}`, i))).WithTag(tag))
		if tag == "paid" || tag == "refunded" {
			want = append(want, id)
		}
	}
	sink := newSink(t, nil)
	a := startAdapter(t, srv, Config{Topics: []string{"orders"}, ConsumerGroup: "g-tags", Sink: sink.url,
		Selector: v1alpha1.Selector{Type: v1alpha1.SelectorTag, Expression: "paid || refunded"}})
	waitFor(t, 20*time.Second, func() string {
		if m := sink.has(want); len(m) > 0 {
			return fmt.Sprintf("%d matching messages missing", len(m))
		}
		return ""
	})
	// A marker sent last: once it is delivered, everything before it in its queue has been filtered or delivered.
	for q := 0; q < 2; q++ {
		m := primitive.NewMessage("orders", []byte(`{"marker":true}`)).WithTag("paid")
		m.WithProperty("q", strconv.Itoa(q))
		want = append(want, send(t, p, m))
	}
	waitFor(t, 20*time.Second, func() string {
		if m := sink.has(want); len(m) > 0 {
			return "markers not delivered"
		}
		return ""
	})
	if n := sink.unique(); n != len(want) || a.Counters().Delivered != int64(len(want)) {
		t.Fatalf("delivered %d events (%+v), want exactly the %d matching", n, a.Counters(), len(want))
	}
}
