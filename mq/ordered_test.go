package mq_test

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/apache/rocketmq-client-go/v2/consumer"
	"github.com/apache/rocketmq-client-go/v2/primitive"
	"github.com/apache/rocketmq-client-go/v2/producer"

	"github.com/tide-run/tide/mq"
)

type byKey struct{}

// Select sends every message of an order (key) to the same queue, as the orderly example's selector does.
func (byKey) Select(m *primitive.Message, mqs []*primitive.MessageQueue, _ string) *primitive.MessageQueue {
	var h int
	for _, c := range m.GetKeys() {
		h = h*31 + int(c)
	}
	if h < 0 {
		h = -h
	}
	return mqs[h%len(mqs)]
}

type seen struct {
	queue  int
	offset int64
	body   string
}

func TestOrderedConsumptionAcrossRebalance(t *testing.T) {
	t.Parallel() // mostly waiting on the client's own timers
	srv := start(t, mq.Options{LockLease: 5 * time.Second})
	createTopic(t, srv, "orders", 4)
	p := newProducer(t, srv, producer.WithQueueSelector(byKey{}))
	const perKey, keys = 20, 8
	send := func(from, to int) {
		for i := from; i < to; i++ {
			for k := 0; k < keys; k++ {
				m := primitive.NewMessage("orders", []byte(fmt.Sprintf("k%d-%04d", k, i))).WithKeys([]string{fmt.Sprintf("order-%d", k)})
				if _, err := p.SendSync(context.Background(), m); err != nil {
					t.Fatal(err)
				}
			}
		}
	}
	var mu sync.Mutex
	got := map[int][]seen{} // consumer -> in consumption order
	all := map[string]bool{}
	mk := func(i int) func(context.Context, ...*primitive.MessageExt) (consumer.ConsumeResult, error) {
		return func(_ context.Context, msgs ...*primitive.MessageExt) (consumer.ConsumeResult, error) {
			mu.Lock()
			defer mu.Unlock()
			for _, m := range msgs {
				got[i] = append(got[i], seen{m.Queue.QueueId, m.QueueOffset, string(m.Body)})
				all[string(m.Body)] = true
			}
			return consumer.ConsumeSuccess, nil
		}
	}
	opts := []consumer.Option{consumer.WithConsumeFromWhere(consumer.ConsumeFromFirstOffset), consumer.WithConsumerOrder(true),
		consumer.WithRebalanceLockInterval(time.Second)}
	a := newPushConsumer(t, srv, "g-orders", opts...)
	a.Subscribe("orders", consumer.MessageSelector{}, mk(0))
	if err := a.Start(); err != nil {
		t.Fatal(err)
	}
	defer a.Shutdown()
	send(0, perKey/2)
	waitFor(t, 30*time.Second, "consumer A to start consuming", func() bool { mu.Lock(); defer mu.Unlock(); return len(all) > 0 })
	b := newPushConsumer(t, srv, "g-orders", opts...)
	b.Subscribe("orders", consumer.MessageSelector{}, mk(1))
	if err := b.Start(); err != nil {
		t.Fatal(err)
	}
	defer b.Shutdown()
	send(perKey/2, perKey)
	waitFor(t, 60*time.Second, "every message", func() bool { mu.Lock(); defer mu.Unlock(); return len(all) == perKey*keys })
	waitFor(t, 60*time.Second, "consumer B to take over queues", func() bool { mu.Lock(); defer mu.Unlock(); return len(got[1]) > 0 })
	mu.Lock()
	defer mu.Unlock()
	for c, list := range got {
		last := map[int]int64{}
		lastBody := map[string]string{}
		for _, s := range list {
			if prev, ok := last[s.queue]; ok && s.offset <= prev {
				t.Fatalf("consumer %d: queue %d offset %d after %d", c, s.queue, s.offset, prev)
			}
			last[s.queue] = s.offset
			key := s.body[:2]
			if pb, ok := lastBody[key]; ok && s.body <= pb {
				t.Fatalf("consumer %d: %s after %s", c, s.body, pb)
			}
			lastBody[key] = s.body
		}
	}
}

func TestBroadcastingDeliversToAll(t *testing.T) {
	srv := start(t, mq.Options{})
	createTopic(t, srv, "news", 2)
	var cols []*collector
	for i := 0; i < 3; i++ {
		col := newCollector()
		cols = append(cols, col)
		c := newPushConsumer(t, srv, "g-news", consumer.WithConsumerModel(consumer.BroadCasting),
			consumer.WithConsumeFromWhere(consumer.ConsumeFromFirstOffset))
		c.Subscribe("news", consumer.MessageSelector{}, col.fn)
		if err := c.Start(); err != nil {
			t.Fatal(err)
		}
		defer c.Shutdown()
	}
	sendBodies(t, srv, "news", 0, 30)
	for i, col := range cols {
		waitFor(t, 20*time.Second, fmt.Sprintf("consumer %d to get all 30", i), func() bool { return col.count() == 30 })
	}
}
