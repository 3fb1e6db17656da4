package bus

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/apache/rocketmq-client-go/v2/primitive"
	"github.com/apache/rocketmq-client-go/v2/rlog"

	"github.com/tide-run/tide/internal/gcfloor"
	"github.com/tide-run/tide/mq"
	"github.com/tide-run/tide/mq/admin"
	"github.com/tide-run/tide/mq/mqtest"
	"github.com/tide-run/tide/mq/remoting"
)

// These run the official client against tide's embedded broker over real
// sockets (test code may import mq; eventing's production code may not).

func quiet() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

func startBus(t *testing.T) *RocketMQ { return startBusWith(t, RocketMQOptions{}) }

func startBusWith(t *testing.T, o RocketMQOptions) *RocketMQ {
	t.Helper()
	b, _ := startBusServer(t, o)
	return b
}

// startBusServer starts an embedded broker and a bus on it, and returns both.
func startBusServer(t *testing.T, o RocketMQOptions) (*RocketMQ, *mq.Server) {
	t.Helper()
	rlog.SetLogLevel("error")
	delays := make([]time.Duration, 18)
	for i := range delays {
		delays[i] = time.Duration(i+1) * 20 * time.Millisecond
	}
	// TestDeleteTopic deletes a topic and creates it again: its old records stay in the commit log with no index
	// entry, which the store check counts as a violation (invariant 3).
	s := mqtest.RunServer(t, mq.Options{DelayLevels: delays}, mqtest.SkipInvariantCheck("topics are deleted and created again"))
	o.NameServers, o.Logger = []string{s.NameServerAddr()}, quiet()
	b, err := NewRocketMQ(o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = b.Close() })
	return b, s
}

// captureClientErrors makes the official client's process-global logger record its error lines (and print
// nothing) for the rest of the test binary; the returned func reports those logged since the call.
func captureClientErrors(t *testing.T) func() []string {
	l := &errorLog{}
	rlog.SetLogger(l)
	return func() []string {
		l.mu.Lock()
		defer l.mu.Unlock()
		return append([]string(nil), l.errors...)
	}
}

type errorLog struct {
	mu     sync.Mutex
	errors []string
}

func (l *errorLog) Debug(string, map[string]interface{})   {}
func (l *errorLog) Info(string, map[string]interface{})    {}
func (l *errorLog) Warning(string, map[string]interface{}) {}
func (l *errorLog) Error(msg string, fields map[string]interface{}) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.errors = append(l.errors, fmt.Sprint(msg, " ", fields))
}
func (l *errorLog) Fatal(msg string, fields map[string]interface{}) { l.Error(msg, fields) }
func (l *errorLog) Level(string)                                    {}
func (l *errorLog) OutputPath(string) error                         { return nil }

// TestDeleteTopic: DeleteTopic removes the topic from the broker and the name server, a missing topic is no
// error, and a later EnsureTopic and Send create it again (the bus forgets it had ensured it).
func TestDeleteTopic(t *testing.T) {
	b, srv := startBusServer(t, RocketMQOptions{})
	ctx := t.Context()
	const topic = "doomed"
	if err := b.EnsureTopic(ctx, topic); err != nil {
		t.Fatal(err)
	}
	if err := b.Send(ctx, &Message{Topic: topic, Body: []byte("x")}); err != nil {
		t.Fatal(err)
	}
	if _, ok := srv.Topic(topic); !ok {
		t.Fatal("topic not created")
	}
	errs := captureClientErrors(t)
	if err := b.DeleteTopic(ctx, topic); err != nil {
		t.Fatalf("DeleteTopic: %v", err)
	}
	if logged := errs(); len(logged) > 0 {
		t.Errorf("the client logged errors for a deletion that worked: %v", logged)
	}
	if _, ok := srv.Topic(topic); ok {
		t.Fatal("topic still on the broker after DeleteTopic")
	}
	if err := b.DeleteTopic(ctx, topic); err != nil {
		t.Errorf("DeleteTopic of a missing topic: %v, want nil", err)
	}
	if err := b.DeleteTopic(ctx, "never-existed"); err != nil {
		t.Errorf("DeleteTopic of a topic that never existed: %v, want nil", err)
	}
	if err := b.EnsureTopic(ctx, topic); err != nil {
		t.Fatal(err)
	}
	if _, ok := srv.Topic(topic); !ok {
		t.Fatal("EnsureTopic after DeleteTopic did not create the topic again")
	}
}

// TestDeleteGroup: with the DeleteGroup hook (mq/admin.DeleteGroup, as the server wires it) a group whose consumer
// has been closed disappears from the broker with its offsets and retry topic; without the hook the bus says it
// cannot (ErrUnsupported) and touches nothing.
func TestDeleteGroup(t *testing.T) {
	b, srv := startBusServer(t, RocketMQOptions{DeleteGroup: admin.DeleteGroup})
	ctx := t.Context()
	const topic, group = "grouped", "g-deleted"
	if err := b.EnsureTopic(ctx, topic); err != nil {
		t.Fatal(err)
	}
	got := make(chan struct{}, 1)
	sub, err := b.Subscribe(ctx, SubscribeOptions{Topic: topic, Group: group, From: FromFirst}, func(context.Context, *Message) Action {
		select {
		case got <- struct{}{}:
		default:
		}
		return Ack
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := b.Send(ctx, &Message{Topic: topic, Body: []byte("x")}); err != nil {
		t.Fatal(err)
	}
	select {
	case <-got:
	case <-time.After(20 * time.Second):
		t.Fatal("nothing consumed")
	}
	if err := sub.Close(); err != nil {
		t.Fatal(err)
	}
	// The client commits offsets every 5 s and on shutdown, and the message above may not have been acknowledged
	// yet when Close ran; commit one over the wire so the group surely has offsets to lose.
	adm, err := admin.Dial(ctx, srv.NameServerAddr())
	if err != nil {
		t.Fatal(err)
	}
	defer adm.Close()
	if err := adm.UpdateOffset(ctx, group, topic, 0, 1); err != nil {
		t.Fatal(err)
	}
	br := srv
	if _, ok := br.GroupConfigs()[group]; !ok || len(br.GroupOffsets(group)) == 0 {
		t.Fatalf("group not on the broker before DeleteGroup: config %v offsets %v", br.GroupConfigs(), br.GroupOffsets(group))
	}
	if err := b.DeleteGroup(ctx, group); err != nil {
		t.Fatal(err)
	}
	if _, ok := br.GroupConfigs()[group]; ok {
		t.Error("group config left")
	}
	if offs := br.GroupOffsets(group); len(offs) != 0 {
		t.Errorf("offsets left: %v", offs)
	}
	if _, ok := br.Topics()["%RETRY%"+group]; ok {
		t.Error("retry topic left")
	}

	plain, _ := startBusServer(t, RocketMQOptions{})
	if err := plain.DeleteGroup(ctx, group); !errors.Is(err, ErrUnsupported) || !errors.Is(err, errors.ErrUnsupported) {
		t.Fatalf("without the hook: %v", err)
	}
}

// TestDeleteGroupAfterLateHeartbeat: a heartbeat of the group's closed consumer that reaches the broker after
// DeleteGroup (rocketmq-client-go can send one after Shutdown returned, see lateHeartbeat) re-creates the group's
// config; the bus deletes it a second time once the window has passed. A group subscribed again within the window
// is left alone.
func TestDeleteGroupAfterLateHeartbeat(t *testing.T) {
	b, srv := startBusServer(t, RocketMQOptions{DeleteGroup: admin.DeleteGroup})
	b.late.window = 500 * time.Millisecond
	ctx := t.Context()
	const topic = "late"
	if err := b.EnsureTopic(ctx, topic); err != nil {
		t.Fatal(err)
	}
	subscribe := func(group string) Subscription {
		t.Helper()
		sub, err := b.Subscribe(ctx, SubscribeOptions{Topic: topic, Group: group}, func(context.Context, *Message) Action { return Ack })
		if err != nil {
			t.Fatal(err)
		}
		return sub
	}
	// heartbeat is the late heartbeat, sent as the client sends it (HEART_BEAT, 34, with the group's consumer data).
	heartbeat := func(group string) {
		t.Helper()
		c, err := remoting.Dial(ctx, srv.BrokerAddr())
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		body := fmt.Sprintf(`{"clientID":"127.0.0.1@late","producerDataSet":[],"consumerDataSet":[{"groupName":%q,`+
			`"consumeType":"CONSUME_PASSIVELY","messageModel":"CLUSTERING","consumeFromWhere":"CONSUME_FROM_LAST_OFFSET",`+
			`"unitMode":false,"subscriptionDataSet":[]}]}`, group)
		resp, err := c.Invoke(ctx, remoting.NewRequest(remoting.HeartBeat, nil, []byte(body)))
		if err != nil || resp.Code != remoting.Success {
			t.Fatalf("heartbeat: %v %v", err, resp)
		}
	}
	has := func(group string) bool { _, ok := srv.GroupConfigs()[group]; return ok }

	const gone = "g-late"
	if err := subscribe(gone).Close(); err != nil {
		t.Fatal(err)
	}
	if err := b.DeleteGroup(ctx, gone); err != nil {
		t.Fatal(err)
	}
	heartbeat(gone)
	if !has(gone) {
		t.Fatal("the late heartbeat did not re-create the group: the test no longer shows the race")
	}
	deadline := time.Now().Add(10 * time.Second)
	for has(gone) {
		if time.Now().After(deadline) {
			t.Fatal("the group re-created by a late heartbeat is still on the broker 10 s later")
		}
		time.Sleep(50 * time.Millisecond)
	}

	const back = "g-back"
	if err := subscribe(back).Close(); err != nil {
		t.Fatal(err)
	}
	if err := b.DeleteGroup(ctx, back); err != nil {
		t.Fatal(err)
	}
	again := subscribe(back) // a new consumer of the same group within the window
	defer again.Close()
	time.Sleep(3 * b.late.window)
	if !has(back) {
		t.Fatal("a group subscribed again was deleted by the second deletion")
	}
}

// TestBatchingKeepsMessagesAndQueues: with Batching, concurrent sends are
// grouped into batch sends; every message arrives once with its properties,
// and all messages of one key share a queue (what ordered Triggers rely on).
func TestBatchingKeepsMessagesAndQueues(t *testing.T) {
	b := startBus(t)
	ctx := t.Context()
	var mu sync.Mutex
	seen := map[string]int{}
	queueOf := map[string]map[int]bool{}
	sub, err := b.Subscribe(ctx, SubscribeOptions{Topic: "batch", Group: "gb", From: FromFirst}, func(_ context.Context, m *Message) Action {
		mu.Lock()
		defer mu.Unlock()
		seen[m.Properties["id"]]++
		k := m.Properties["key"]
		if queueOf[k] == nil {
			queueOf[k] = map[int]bool{}
		}
		queueOf[k][m.QueueID] = true
		return Ack
	})
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Close()
	const n = 600
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			key := "k" + strconv.Itoa(i%40) // more keys than queues: batches group keys by queue
			id := strconv.Itoa(i)
			errs <- b.Send(ctx, &Message{Topic: "batch", Body: []byte(id), ShardingKey: key,
				Properties: map[string]string{"id": id, "key": key}})
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	if rt := b.roundTrips.Load(); rt >= n {
		t.Errorf("%d round trips for %d messages: nothing was batched", rt, n)
	} else {
		t.Logf("%d messages in %d round trips", n, rt)
	}
	waitUntil(t, "all consumed", func() bool { mu.Lock(); defer mu.Unlock(); return len(seen) == n })
	mu.Lock()
	defer mu.Unlock()
	for id, c := range seen {
		if c != 1 {
			t.Errorf("message %s consumed %d times", id, c)
		}
	}
	queues, _ := b.selector.queues.Load("batch")
	for k, qs := range queueOf {
		if len(qs) != 1 {
			t.Errorf("key %s spread over queues %v", k, qs)
		}
		// Batched or not, a key's queue is the one Select picks for it alone.
		if want := int(keyHash(k)) % queues.(int); !qs[want] {
			t.Errorf("key %s in queues %v, want queue %d", k, qs, want)
		}
	}
}

func waitUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestSendSubscribeRetry(t *testing.T) {
	b := startBus(t)
	ctx := t.Context()
	var mu sync.Mutex
	seen := map[string]int{}
	first := true
	sub, err := b.Subscribe(ctx, SubscribeOptions{Topic: "bus-test", Group: "g1", From: FromFirst}, func(_ context.Context, m *Message) Action {
		mu.Lock()
		defer mu.Unlock()
		seen[m.Properties["k"]]++
		if m.Properties["k"] == "retry-me" && first {
			first = false
			return Retry
		}
		return Ack
	})
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Close()
	for _, k := range []string{"a", "b", "retry-me"} {
		if err := b.Send(ctx, &Message{Topic: "bus-test", Body: []byte(k), Properties: map[string]string{"k": k}, ShardingKey: k}); err != nil {
			t.Fatal(err)
		}
	}
	waitUntil(t, "redelivery through %RETRY%", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return seen["a"] == 1 && seen["b"] == 1 && seen["retry-me"] == 2
	})
	mu.Lock()
	defer mu.Unlock()
	if _, marker := seen[""]; marker {
		t.Fatal("the topic-creation marker reached the handler")
	}
}

func TestOptionsErrors(t *testing.T) {
	if _, err := NewRocketMQ(RocketMQOptions{}); !errors.Is(err, ErrInvalidOptions) {
		t.Fatal(err)
	}
	if _, err := NewRocketMQ(RocketMQOptions{NameServers: []string{"no-port"}}); !errors.Is(err, ErrInvalidOptions) {
		t.Fatal(err)
	}
	b := startBus(t)
	for _, o := range []SubscribeOptions{{Group: "g"}, {Topic: "t"}, {Topic: "t", Group: "a/b"}} {
		if _, err := b.Subscribe(t.Context(), o, func(context.Context, *Message) Action { return Ack }); !errors.Is(err, ErrInvalidOptions) {
			t.Fatalf("%+v: %v", o, err)
		}
	}
	_ = b.Close()
	if err := b.Send(t.Context(), &Message{Topic: "x"}); !errors.Is(err, ErrClosed) {
		t.Fatal(err)
	}
}

// BenchmarkSend measures synchronous sends (the ingress's storage step) from
// 32 goroutines: go test ./eventing/bus -run '^$' -bench Send -benchtime 20000x
func BenchmarkSend(b *testing.B) {
	gcfloor.InstallForBenchmark(b) // as the tide binary runs the bus
	for _, producers := range []int{1, 4} {
		b.Run("producers="+string(rune('0'+producers)), func(b *testing.B) {
			rlog.SetLogLevel("error")
			s := mqtest.RunServer(b, mq.Options{})
			bus, err := NewRocketMQ(RocketMQOptions{NameServers: []string{s.NameServerAddr()}, Logger: quiet(), Producers: producers})
			if err != nil {
				b.Fatal(err)
			}
			defer bus.Close()
			_ = bus.EnsureTopic(context.Background(), "bench")
			body := make([]byte, 100)
			b.SetParallelism(16)
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				i := 0
				for pb.Next() {
					i++
					if err := bus.Send(context.Background(), &Message{Topic: "bench", Body: body,
						Properties: map[string]string{"CE_id": "x"}, ShardingKey: string(rune('a' + i%8))}); err != nil {
						b.Error(err)
						return
					}
				}
			})
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "sends/s")
		})
	}
}

// TestBatchGroupsByQueue: once a topic's queue count is known, a batch is split by the queue each key picks (not
// by key), in arrival order within a group, and the hint of each group picks that same queue; before, by key.
func TestBatchGroupsByQueue(t *testing.T) {
	s := &keySelector{}
	mk := func(topic, key string) *pending {
		m := primitive.NewMessage(topic, []byte(key))
		if key != "" {
			m.WithShardingKey(key) // as Send does
		}
		return &pending{msg: m, topic: topic, key: key}
	}
	var batch []*pending
	for i := range 64 {
		batch = append(batch, mk("t", "source-"+strconv.Itoa(i)))
	}
	batch = append(batch, mk("t", ""), mk("other", "source-1"), mk("t", ""))
	hints, groups := s.group(batch)
	if len(groups) != 64+2 {
		t.Fatalf("queue count unknown: %d groups, want one per key and topic (66)", len(groups))
	}
	mqs := make([]*primitive.MessageQueue, 8)
	for i := range mqs {
		mqs[i] = &primitive.MessageQueue{Topic: "t", BrokerName: "b", QueueId: i}
	}
	s.Select(primitive.NewMessage("t", nil), mqs, "")
	hints, groups = s.group(batch)
	if len(groups) > 8+2 {
		t.Fatalf("%d groups for 8 queues, the keyless and another topic's message; want at most 10", len(groups))
	}
	total := 0
	for i, g := range groups {
		total += len(g)
		hint := &primitive.Message{Topic: g[0].msg.Topic}
		hint.Queue = &primitive.MessageQueue{QueueId: int(keyHash(hints[i]))}
		want := s.Select(hint, mqs, "").QueueId
		last := -1
		for _, q := range g {
			if q.msg.Topic != g[0].msg.Topic {
				t.Fatalf("group %d mixes topics", i)
			}
			if q.key != "" && g[0].msg.Topic == "t" {
				if got := s.Select(q.msg, mqs, "").QueueId; got != want {
					t.Errorf("key %s picks queue %d alone but goes in a batch to queue %d", q.key, got, want)
				}
			}
			pos := slices.Index(batch, q)
			if pos < last {
				t.Errorf("group %d out of arrival order", i)
			}
			last = pos
		}
	}
	if total != len(batch) {
		t.Fatalf("groups hold %d messages, batch %d", total, len(batch))
	}
}
