package bus

import (
	"context"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/tide-run/tide/mq"
	"github.com/tide-run/tide/mq/admin"
	"github.com/tide-run/tide/mq/message"
	"github.com/tide-run/tide/mq/mqtest"
)

// These run the native bus (tide's own remoting client) against tide's embedded broker over real sockets; the
// Apache RocketMQ half is native_apache_test.go.

// startNative starts an embedded broker with fast delay levels and a native bus on it.
func startNative(t *testing.T, o RocketMQOptions) (*Native, *mq.Server, mq.Options) {
	t.Helper()
	opts := mq.Options{DelayLevels: mqtest.DelayLevels(50 * time.Millisecond), DataDir: t.TempDir()}
	s := mqtest.RunServer(t, opts, mqtest.SkipInvariantCheck("topics are deleted and created again"))
	return newNativeOn(t, s.NameServerAddr(), o), s, opts
}

func newNativeOn(t *testing.T, ns string, o RocketMQOptions) *Native {
	t.Helper()
	o.NameServers, o.Logger = []string{ns}, quiet()
	b, err := NewNative(o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = b.Close() })
	return b
}

// counter records what a handler saw, by the message's "id" property.
type counter struct {
	mu    sync.Mutex
	seen  map[string]int
	order map[string][]string // by "key": ids in consumption order
	by    map[string]map[int]bool
}

func newCounter() *counter {
	return &counter{seen: map[string]int{}, order: map[string][]string{}, by: map[string]map[int]bool{}}
}

func (c *counter) note(m *Message) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	id := m.Properties["id"]
	c.seen[id]++
	if k := m.Properties["key"]; k != "" && m.ReconsumeTimes == 0 { // a redelivery through %RETRY% has its queue
		c.order[k] = append(c.order[k], id)
		if c.by[k] == nil {
			c.by[k] = map[int]bool{}
		}
		c.by[k][m.QueueID] = true
	}
	return c.seen[id]
}

func (c *counter) count(id string) int { c.mu.Lock(); defer c.mu.Unlock(); return c.seen[id] }
func (c *counter) distinct() int       { c.mu.Lock(); defer c.mu.Unlock(); return len(c.seen) }

func sendN(t *testing.T, b Bus, topic string, from, n int, keys int) {
	t.Helper()
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for i := from; i < from+n; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			id := strconv.Itoa(i)
			m := &Message{Topic: topic, Body: []byte("body-" + id), Properties: map[string]string{"id": id}}
			if keys > 0 {
				m.ShardingKey = "k" + strconv.Itoa(i%keys)
				m.Properties["key"] = m.ShardingKey
			}
			errs <- b.Send(t.Context(), m)
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
}

// TestNativeBatchingKeepsMessagesAndQueues: concurrent sends are batched (fewer round trips than messages), every
// message arrives once with its properties and body, and a key's messages share the queue its hash picks.
func TestNativeBatchingKeepsMessagesAndQueues(t *testing.T) {
	b, _, _ := startNative(t, RocketMQOptions{})
	ctx := t.Context()
	c := newCounter()
	bodies := sync.Map{}
	sub, err := b.Subscribe(ctx, SubscribeOptions{Topic: "nbatch", Group: "nb", From: FromFirst}, func(_ context.Context, m *Message) Action {
		c.note(m)
		bodies.Store(m.Properties["id"], string(m.Body))
		if m.Topic != "nbatch" || m.MsgID == "" || m.BornTime.IsZero() {
			t.Errorf("message fields: topic %q id %q born %v", m.Topic, m.MsgID, m.BornTime)
		}
		return Ack
	})
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Close()
	const n = 600
	before := b.roundTrips.Load()
	sendN(t, b, "nbatch", 0, n, 40)
	if rt := b.roundTrips.Load() - before; rt >= n {
		t.Errorf("%d round trips for %d messages: nothing was batched", rt, n)
	} else {
		t.Logf("%d messages in %d round trips", n, rt)
	}
	waitUntil(t, "all consumed", func() bool { return c.distinct() == n })
	c.mu.Lock()
	defer c.mu.Unlock()
	for id, k := range c.seen {
		if k != 1 {
			t.Errorf("message %s consumed %d times", id, k)
		}
		if body, _ := bodies.Load(id); body != "body-"+id {
			t.Errorf("message %s body %q", id, body)
		}
	}
	queues, _ := b.selector.queues.Load("nbatch")
	for k, qs := range c.by {
		if want := int(keyHash(k)) % queues.(int); len(qs) != 1 || !qs[want] {
			t.Errorf("key %s in queues %v, want only queue %d", k, qs, want)
		}
	}
}

// TestNativeRetryAndDeadLetter: exact counts. Retry once then Ack: two deliveries, the second with ReconsumeTimes
// 1 and the original topic; DeadLetter: one delivery, then in %DLQ%<group>; always Retry with MaxReconsumeTimes 2:
// three deliveries, then in %DLQ%. Nothing else is delivered twice.
func TestNativeRetryAndDeadLetter(t *testing.T) {
	b, srv, _ := startNative(t, RocketMQOptions{})
	ctx := t.Context()
	c := newCounter()
	var mu sync.Mutex
	reconsume := map[string][]int32{}
	const group = "nretry"
	sub, err := b.Subscribe(ctx, SubscribeOptions{Topic: "nr", Group: group, From: FromFirst, MaxReconsumeTimes: 2}, func(_ context.Context, m *Message) Action {
		n := c.note(m)
		id := m.Properties["id"]
		mu.Lock()
		reconsume[id] = append(reconsume[id], m.ReconsumeTimes)
		mu.Unlock()
		if m.Topic != "nr" {
			t.Errorf("message %s consumed with topic %q, want the original nr", id, m.Topic)
		}
		i, _ := strconv.Atoi(id)
		switch i % 4 {
		case 1:
			if n == 1 {
				return Retry
			}
		case 2:
			return DeadLetter
		case 3:
			return Retry
		}
		return Ack
	})
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Close()
	const n = 40
	sendN(t, b, "nr", 0, n, 0)
	want := func(i int) int { return []int{1, 2, 1, 3}[i%4] }
	waitUntil(t, "every delivery", func() bool {
		for i := range n {
			if c.count(strconv.Itoa(i)) < want(i) {
				return false
			}
		}
		return true
	})
	ac, err := admin.Dial(ctx, srv.NameServerAddr())
	if err != nil {
		t.Fatal(err)
	}
	defer ac.Close()
	var dlq []*message.Message
	waitUntil(t, "dead letters", func() bool {
		dlq, _ = ac.DeadLetters(ctx, group, 100)
		return len(dlq) >= n/2
	})
	time.Sleep(300 * time.Millisecond) // longer than a redelivery's delay: nothing more may come
	for i := range n {
		if got := c.count(strconv.Itoa(i)); got != want(i) {
			t.Errorf("message %d delivered %d times, want %d", i, got, want(i))
		}
	}
	mu.Lock()
	if r := reconsume["1"]; !slices.Equal(r, []int32{0, 1}) {
		t.Errorf("message 1 reconsume times %v, want [0 1]", r)
	}
	if r := reconsume["3"]; !slices.Equal(r, []int32{0, 1, 2}) {
		t.Errorf("message 3 reconsume times %v, want [0 1 2]", r)
	}
	mu.Unlock()
	if len(dlq) != n/2 {
		t.Errorf("%d dead letters, want %d", len(dlq), n/2)
	}
	for _, m := range dlq {
		i, _ := strconv.Atoi(message.Property(m.Properties, "id"))
		if i%4 != 2 && i%4 != 3 {
			t.Errorf("message %d dead-lettered", i)
		}
	}
}

// TestNativeRebalanceCloseRestart: a second member joins a group while messages flow and leaves again; every
// message is consumed (duplicates only around the rebalances), both members got some. Close commits the offsets
// (the group's committed offsets reach the queues' ends) and unregisters (the broker lists no member at once); a
// member started afterwards resumes from the committed offsets: only new messages.
func TestNativeRebalanceCloseRestart(t *testing.T) {
	b, srv, _ := startNative(t, RocketMQOptions{})
	b2 := newNativeOn(t, srv.NameServerAddr(), RocketMQOptions{})
	ctx := t.Context()
	const topic, group = "nreb", "nreb-g"
	c1, c2 := newCounter(), newCounter()
	all := newCounter()
	h := func(c *counter) Handler {
		return func(_ context.Context, m *Message) Action { c.note(m); all.note(m); return Ack }
	}
	s1, err := b.Subscribe(ctx, SubscribeOptions{Topic: topic, Group: group, From: FromFirst}, h(c1))
	if err != nil {
		t.Fatal(err)
	}
	sendN(t, b, topic, 0, 100, 0)
	s2, err := b2.Subscribe(ctx, SubscribeOptions{Topic: topic, Group: group, From: FromFirst}, h(c2))
	if err != nil {
		t.Fatal(err)
	}
	waitUntil(t, "both members listed", func() bool { return len(srv.ConsumerIDs(group)) == 2 })
	// Messages sent once both hold queues reach both (the queues are split 4/4 by average allocation).
	next := 100
	deadline := time.Now().Add(20 * time.Second)
	for c2.distinct() == 0 {
		if time.Now().After(deadline) {
			t.Fatal("the second member consumed nothing in 20 s")
		}
		sendN(t, b, topic, next, 8, 0)
		next += 8
		time.Sleep(20 * time.Millisecond)
	}
	if err := s2.Close(); err != nil {
		t.Fatal(err)
	}
	if ids := srv.ConsumerIDs(group); len(ids) != 1 {
		t.Errorf("members listed right after the second's Close: %v, want 1 (UNREGISTER_CLIENT)", ids)
	}
	sendN(t, b, topic, 2000, 100, 0)
	waitUntil(t, "every message consumed", func() bool {
		for i := range next {
			if all.count(strconv.Itoa(i)) == 0 {
				return false
			}
		}
		for i := range 100 {
			if all.count(strconv.Itoa(2000+i)) == 0 {
				return false
			}
		}
		return true
	})
	if c1.distinct() == 0 || c2.distinct() == 0 {
		t.Errorf("member 1 consumed %d, member 2 %d: want both some", c1.distinct(), c2.distinct())
	}
	if err := s1.Close(); err != nil {
		t.Fatal(err)
	}
	if ids := srv.ConsumerIDs(group); len(ids) != 0 {
		t.Errorf("members listed right after Close: %v (UNREGISTER_CLIENT)", ids)
	}
	for _, st := range srv.ConsumeStats(group, topic) {
		if st.ConsumerOffset != st.BrokerOffset {
			t.Errorf("queue %d: committed %d, end %d after Close", st.QueueID, st.ConsumerOffset, st.BrokerOffset)
		}
	}
	sendN(t, b, topic, 5000, 20, 0)
	c3 := newCounter()
	s3, err := b.Subscribe(ctx, SubscribeOptions{Topic: topic, Group: group, From: FromFirst}, func(_ context.Context, m *Message) Action {
		c3.note(m)
		return Ack
	})
	if err != nil {
		t.Fatal(err)
	}
	defer s3.Close()
	waitUntil(t, "the new messages after a restart", func() bool { return c3.distinct() == 20 })
	time.Sleep(200 * time.Millisecond)
	c3.mu.Lock()
	defer c3.mu.Unlock()
	for id, k := range c3.seen {
		if i, _ := strconv.Atoi(id); i < 5000 || k != 1 {
			t.Errorf("after the restart message %s consumed %d times (want only the 20 new ones, once)", id, k)
		}
	}
}

// TestNativeBrokerRestart: the broker restarts (same ports and data); sends after it succeed and the running
// subscription consumes them without being restarted (its connections are dialled again).
func TestNativeBrokerRestart(t *testing.T) {
	b, srv, opts := startNative(t, RocketMQOptions{})
	ctx := t.Context()
	c := newCounter()
	sub, err := b.Subscribe(ctx, SubscribeOptions{Topic: "nrestart", Group: "nrestart-g", From: FromFirst}, func(_ context.Context, m *Message) Action {
		c.note(m)
		return Ack
	})
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Close()
	sendN(t, b, "nrestart", 0, 10, 0)
	waitUntil(t, "before the restart", func() bool { return c.distinct() == 10 })
	mqtest.Restart(t, srv, opts, mqtest.SkipInvariantCheck("topics are deleted and created again"))
	deadline := time.Now().Add(15 * time.Second)
	for i := 10; i < 20; {
		err := b.Send(ctx, &Message{Topic: "nrestart", Body: []byte("x"), Properties: map[string]string{"id": strconv.Itoa(i)}})
		if err == nil {
			i++
			continue
		}
		if time.Now().After(deadline) {
			t.Fatalf("send after the restart: %v", err)
		}
		time.Sleep(50 * time.Millisecond)
	}
	waitUntil(t, "after the restart", func() bool { return c.distinct() == 20 })
}

// TestNativeOrdered: an ordered subscription consumes each key's messages in send order, one at a time per queue;
// a message retried in place comes again after OrderedRetryPause with ReconsumeTimes counting up and holds its
// queue; a poisoned one goes to %DLQ% once ReconsumeTimes exceeds MaxReconsumeTimes (4 calls for 2, as the Go
// client's orderly consumer) and the queue goes on.
func TestNativeOrdered(t *testing.T) {
	b, srv, _ := startNative(t, RocketMQOptions{})
	ctx := t.Context()
	const topic, group = "nord", "nord-g"
	c := newCounter()
	var mu sync.Mutex
	active := map[int]bool{}
	var reconsume []int32
	sub, err := b.Subscribe(ctx, SubscribeOptions{Topic: topic, Group: group, From: FromFirst, Ordered: true,
		MaxReconsumeTimes: 2, OrderedRetryPause: 20 * time.Millisecond}, func(_ context.Context, m *Message) Action {
		mu.Lock()
		if active[m.QueueID] {
			t.Errorf("two messages of queue %d at once", m.QueueID)
		}
		active[m.QueueID] = true
		mu.Unlock()
		defer func() { mu.Lock(); active[m.QueueID] = false; mu.Unlock() }()
		n := c.note(m)
		switch m.Properties["id"] {
		case "5": // retried twice in place, then done
			mu.Lock()
			reconsume = append(reconsume, m.ReconsumeTimes)
			mu.Unlock()
			if n <= 2 {
				return Retry
			}
		case "7": // poisoned
			return Retry
		}
		return Ack
	})
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Close()
	const n = 60
	for i := range n { // sequential sends: the order per key is the send order
		id := strconv.Itoa(i)
		key := "k" + strconv.Itoa(i%3)
		if err := b.Send(ctx, &Message{Topic: topic, Body: []byte(id), ShardingKey: key, Properties: map[string]string{"id": id, "key": key}}); err != nil {
			t.Fatal(err)
		}
	}
	waitUntil(t, "all consumed", func() bool { return c.distinct() == n && c.count("7") == 4 })
	c.mu.Lock()
	for k, ids := range c.order {
		var last = -1
		for _, id := range ids {
			i, _ := strconv.Atoi(id)
			if i < last {
				t.Errorf("key %s consumed out of order: %v", k, ids)
				break
			}
			last = i
		}
	}
	c.mu.Unlock()
	if got := c.count("5"); got != 3 {
		t.Errorf("message 5 consumed %d times, want 3", got)
	}
	mu.Lock()
	if !slices.Equal(reconsume, []int32{0, 1, 2}) {
		t.Errorf("message 5 reconsume times %v, want [0 1 2]", reconsume)
	}
	mu.Unlock()
	ac, err := admin.Dial(ctx, srv.NameServerAddr())
	if err != nil {
		t.Fatal(err)
	}
	defer ac.Close()
	waitUntil(t, "the poisoned message in the DLQ", func() bool {
		dlq, _ := ac.DeadLetters(ctx, group, 10)
		return len(dlq) == 1 && message.Property(dlq[0].Properties, "id") == "7"
	})
}

// TestNativeDeleteTopicAndGroup: DeleteTopic removes the topic (a missing one is no error, EnsureTopic creates it
// again); DeleteGroup goes through the hook, and without one says ErrUnsupported.
func TestNativeDeleteTopicAndGroup(t *testing.T) {
	b, srv, _ := startNative(t, RocketMQOptions{DeleteGroup: admin.DeleteGroup})
	ctx := t.Context()
	if err := b.EnsureTopic(ctx, "ndoomed"); err != nil {
		t.Fatal(err)
	}
	if _, ok := srv.Topic("ndoomed"); !ok {
		t.Fatal("EnsureTopic did not create the topic")
	}
	if err := b.DeleteTopic(ctx, "ndoomed"); err != nil {
		t.Fatal(err)
	}
	if _, ok := srv.Topic("ndoomed"); ok {
		t.Fatal("topic still there after DeleteTopic")
	}
	if err := b.DeleteTopic(ctx, "never-was"); err != nil {
		t.Errorf("DeleteTopic of a missing topic: %v", err)
	}
	if err := b.EnsureTopic(ctx, "ndoomed"); err != nil {
		t.Fatal(err)
	}
	if _, ok := srv.Topic("ndoomed"); !ok {
		t.Fatal("EnsureTopic after DeleteTopic did not create the topic again")
	}
	sub, err := b.Subscribe(ctx, SubscribeOptions{Topic: "ndoomed", Group: "ndel"}, func(context.Context, *Message) Action { return Ack })
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := srv.GroupConfigs()["ndel"]; !ok {
		t.Fatal("the group was not created by the consumer's heartbeat")
	}
	if err := sub.Close(); err != nil {
		t.Fatal(err)
	}
	if err := b.DeleteGroup(ctx, "ndel"); err != nil {
		t.Fatal(err)
	}
	time.Sleep(200 * time.Millisecond)
	if _, ok := srv.GroupConfigs()["ndel"]; ok {
		t.Error("group still there after DeleteGroup of a closed consumer")
	}
	nb := newNativeOn(t, srv.NameServerAddr(), RocketMQOptions{})
	if err := nb.DeleteGroup(ctx, "x"); err == nil {
		t.Error("DeleteGroup without a hook: nil error")
	}
}

// TestNativeOffsetReset: an offset reset pushed by the broker (RESET_CONSUMER_CLIENT_OFFSET, as `tide mq` resets a
// live group) is adopted by a running member: everything is consumed again from the first message, and the member's
// own position does not overwrite the reset.
func TestNativeOffsetReset(t *testing.T) {
	b, srv, _ := startNative(t, RocketMQOptions{})
	ctx := t.Context()
	const topic, group = "nreset", "nreset-g"
	c := newCounter()
	sub, err := b.Subscribe(ctx, SubscribeOptions{Topic: topic, Group: group, From: FromFirst}, func(_ context.Context, m *Message) Action {
		c.note(m)
		return Ack
	})
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Close()
	sendN(t, b, topic, 0, 20, 0)
	waitUntil(t, "first pass", func() bool { return c.distinct() == 20 })
	ac, err := admin.Dial(ctx, srv.NameServerAddr())
	if err != nil {
		t.Fatal(err)
	}
	defer ac.Close()
	if _, err := ac.ResetOffset(ctx, group, topic, admin.ResetToFirst); err != nil {
		t.Fatal(err)
	}
	waitUntil(t, "second pass after the reset", func() bool {
		for i := range 20 {
			if c.count(strconv.Itoa(i)) < 2 {
				return false
			}
		}
		return true
	})
}

// TestNativeInflightBound: behind handlers that do not return (more workers than the bound, so handing messages
// over never blocks the puller), a queue's puller stops once 256 messages are unacknowledged (it may have one pull's
// batch beyond the bound), and goes on when they are acknowledged.
func TestNativeInflightBound(t *testing.T) {
	b, _, _ := startNative(t, RocketMQOptions{})
	ctx := t.Context()
	release := make(chan struct{})
	var once sync.Once
	t.Cleanup(func() { once.Do(func() { close(release) }) }) // before Close, which waits for the handlers
	c := newCounter()
	s, err := b.Subscribe(ctx, SubscribeOptions{Topic: "nbound", Group: "nbound-g", From: FromFirst, Concurrency: 320}, func(_ context.Context, m *Message) Action {
		<-release
		c.note(m)
		return Ack
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	const n = 400
	sendN(t, b, "nbound", 0, n, 1) // one key: one queue
	sub := s.(*nativeSub)
	inflight := func() int {
		sub.mu.Lock()
		defer sub.mu.Unlock()
		most := 0
		for _, pq := range sub.queues {
			pq.mu.Lock()
			most = max(most, len(pq.inflight))
			pq.mu.Unlock()
		}
		return most
	}
	waitUntil(t, "the queue filled to its bound", func() bool { return inflight() >= nativeMaxInflight })
	time.Sleep(200 * time.Millisecond) // time for pulls beyond the bound, were there any
	if got := inflight(); got > nativeMaxInflight+nativePullBatch-1 {
		t.Fatalf("%d messages in flight on one queue, bound %d (+ one pull of %d)", got, nativeMaxInflight, nativePullBatch)
	}
	once.Do(func() { close(release) })
	waitUntil(t, "everything after the release", func() bool { return c.distinct() == n })
}
