package mq_test

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/apache/rocketmq-client-go/v2/consumer"
	"github.com/apache/rocketmq-client-go/v2/primitive"
	clocktesting "k8s.io/utils/clock/testing"

	"github.com/tide-run/tide/mq"
	"github.com/tide-run/tide/mq/mqtest"
)

type collector struct {
	mu   sync.Mutex
	seen map[string]int
}

func newCollector() *collector { return &collector{seen: map[string]int{}} }

func (c *collector) fn(_ context.Context, msgs ...*primitive.MessageExt) (consumer.ConsumeResult, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, m := range msgs {
		c.seen[string(m.Body)]++
	}
	return consumer.ConsumeSuccess, nil
}

func (c *collector) count() int { c.mu.Lock(); defer c.mu.Unlock(); return len(c.seen) }

func (c *collector) has(body string) bool { c.mu.Lock(); defer c.mu.Unlock(); return c.seen[body] > 0 }

func sendBodies(t *testing.T, srv *mq.Server, topic string, from, to int) {
	t.Helper()
	p := newProducer(t, srv)
	for i := from; i < to; i++ {
		if _, err := p.SendSync(context.Background(), primitive.NewMessage(topic, []byte(fmt.Sprintf("b-%d", i)))); err != nil {
			t.Fatal(err)
		}
	}
}

func TestOffsetsSurviveRestart(t *testing.T) {
	dir := t.TempDir()
	srv := start(t, mq.Options{DataDir: dir})
	if err := srv.CreateTopic(brokerTopic("durable", 2)); err != nil {
		t.Fatal(err)
	}
	sendBodies(t, srv, "durable", 0, 50)
	col := newCollector()
	c := newPushConsumer(t, srv, "g-durable", consumer.WithConsumeFromWhere(consumer.ConsumeFromFirstOffset))
	c.Subscribe("durable", consumer.MessageSelector{}, col.fn)
	if err := c.Start(); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 20*time.Second, "50 messages", func() bool { return col.count() == 50 })
	// Shutdown persists the consumer's offsets to the broker (UPDATE_CONSUMER_OFFSET), the broker to disk.
	c.Shutdown()
	waitFor(t, 10*time.Second, "committed offsets", func() bool {
		total := int64(0)
		for _, q := range srv.ConsumeStats("g-durable", "durable") {
			total += q.ConsumerOffset
		}
		return total == 50
	})
	if err := srv.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}

	srv2 := start(t, mq.Options{DataDir: dir})
	for _, q := range srv2.ConsumeStats("g-durable", "durable") {
		if q.Lag != 0 {
			t.Fatalf("queue %d lag %d after restart: offsets lost", q.QueueID, q.Lag)
		}
	}
	sendBodies(t, srv2, "durable", 50, 60)
	col2 := newCollector()
	c2 := newPushConsumer(t, srv2, "g-durable", consumer.WithConsumeFromWhere(consumer.ConsumeFromFirstOffset))
	c2.Subscribe("durable", consumer.MessageSelector{}, col2.fn)
	if err := c2.Start(); err != nil {
		t.Fatal(err)
	}
	defer c2.Shutdown()
	waitFor(t, 20*time.Second, "10 new messages", func() bool { return col2.count() == 10 })
	if col2.has("b-0") || col2.has("b-49") {
		t.Fatal("old messages redelivered after restart")
	}
}

func TestConsumeFromFirstLastTimestamp(t *testing.T) {
	// DisableZeroOffsetForNewGroups makes CONSUME_FROM_LAST_OFFSET skip history even on a young topic (by default
	// the broker answers 0 like Java, which reads a topic whose first message is still stored from the start).
	// The broker's clock is fake so store timestamps are exact: batch one at t0, batch two an hour later.
	t0 := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	fc := clocktesting.NewFakeClock(t0)
	srv := start(t, mq.Options{DisableZeroOffsetForNewGroups: true, Clock: fc})
	createTopic(t, srv, "from", 1)
	sendBodies(t, srv, "from", 0, 10)
	fc.Step(time.Hour)
	sendBodies(t, srv, "from", 10, 20)

	first := newCollector()
	c1 := newPushConsumer(t, srv, "g-first", consumer.WithConsumeFromWhere(consumer.ConsumeFromFirstOffset))
	c1.Subscribe("from", consumer.MessageSelector{}, first.fn)
	last := newCollector()
	c2 := newPushConsumer(t, srv, "g-last", consumer.WithConsumeFromWhere(consumer.ConsumeFromLastOffset))
	c2.Subscribe("from", consumer.MessageSelector{}, last.fn)
	ts := newCollector()
	c3 := newPushConsumer(t, srv, "g-ts", consumer.WithConsumeFromWhere(consumer.ConsumeFromTimestamp),
		consumer.WithConsumeTimestamp(t0.Add(30*time.Minute).Format("20060102150405")))
	c3.Subscribe("from", consumer.MessageSelector{}, ts.fn)
	for _, c := range []interface {
		Start() error
		Shutdown() error
	}{c1, c2, c3} {
		if err := c.Start(); err != nil {
			t.Fatal(err)
		}
		defer c.Shutdown()
	}
	waitFor(t, 20*time.Second, "first: 20", func() bool { return first.count() == 20 })
	waitFor(t, 20*time.Second, "timestamp: 10", func() bool { return ts.count() == 10 })
	sendBodies(t, srv, "from", 20, 21)
	waitFor(t, 20*time.Second, "last: the new message", func() bool { return last.has("b-20") })
	if last.count() != 1 {
		t.Fatalf("from-last consumer got %d messages, want only the new one", last.count())
	}
	if ts.has("b-9") || !ts.has("b-10") {
		t.Fatal("timestamp consumer started at the wrong offset")
	}
}

// TestConsumerResumesSoonAfterRestart: a running push consumer of the official Go client goes on consuming within
// seconds after the broker restarts on the same ports. Its pulls were parked at the broker when it shut down;
// answered "no new message", the client pulled again at once on the closing connection and that pull waited out
// the client's 30 s timeout (the client does not fail the requests of a closed connection). Answered "busy", it
// retries after its 3 s pull-error delay on a new connection.
func TestConsumerResumesSoonAfterRestart(t *testing.T) {
	opts := mq.Options{DataDir: t.TempDir()}
	srv := start(t, opts)
	if err := srv.CreateTopic(brokerTopic("resume", 2)); err != nil {
		t.Fatal(err)
	}
	col := newCollector()
	c := newPushConsumer(t, srv, "g-resume", consumer.WithConsumeFromWhere(consumer.ConsumeFromFirstOffset))
	c.Subscribe("resume", consumer.MessageSelector{}, col.fn)
	if err := c.Start(); err != nil {
		t.Fatal(err)
	}
	defer c.Shutdown()
	sendBodies(t, srv, "resume", 0, 10)
	waitFor(t, 20*time.Second, "10 messages before the restart", func() bool { return col.count() == 10 })
	// The topic's two queues' pulls (and the retry queue's) are parked now, nothing being left to read: the case
	// the restart must not strand.
	waitFor(t, 10*time.Second, "parked pulls", func() bool { return srv.Suspended() >= 2 })

	srv = mqtest.Restart(t, srv, opts)
	restarted := time.Now()
	sendBodies(t, srv, "resume", 10, 20)
	// 33 s before the fix; 3 s pull-error delay plus a rebalance after it. 20 s leaves room for a loaded machine
	// and still fails the old behaviour.
	waitFor(t, 20*time.Second, "the 10 messages sent after the restart", func() bool { return col.count() == 20 })
	t.Logf("consuming again %v after the restart", time.Since(restarted).Round(100*time.Millisecond))
}
