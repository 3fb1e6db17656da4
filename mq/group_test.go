package mq_test

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/apache/rocketmq-client-go/v2"
	"github.com/apache/rocketmq-client-go/v2/consumer"
	"github.com/apache/rocketmq-client-go/v2/primitive"

	"github.com/tide-run/tide/mq"
	"github.com/tide-run/tide/mq/message"
	"github.com/tide-run/tide/mq/remoting"
)

// settle waits until a group of n consumers has rebalanced with its final membership: every member asked for the
// consumer list at least twice (one rebalance covers the topic and the group's retry topic) since the membership
// last changed. Each rebalance drops the queues a member lost right after its consumer-list call returns, so
// messages sent after this are not at risk of the in-flight duplicates a rebalance may cause.
func settle(t *testing.T, srv *mq.Server, group string, n int) {
	t.Helper()
	b := srv
	waitFor(t, 20*time.Second, fmt.Sprintf("%d members in %s", n, group), func() bool { return len(b.ConsumerIDs(group)) == n })
	waitFor(t, 20*time.Second, "members to rebalance", func() bool {
		calls := b.ConsumerListCalls(group)
		for _, id := range b.ConsumerIDs(group) {
			if calls[id] < 2 {
				return false
			}
		}
		return true
	})
}

func TestTenThousandExactlyOnceAcrossThreeConsumers(t *testing.T) {
	srv := start(t, mq.Options{})
	const topic, group, total = "ten-k", "g-ten-k", 10000
	createTopic(t, srv, topic, 4)
	var mu sync.Mutex
	got := map[string]int{}
	perConsumer := make([]int, 3)
	var consumers []rocketmq.PushConsumer
	for i := 0; i < 3; i++ {
		i := i
		c := newPushConsumer(t, srv, group, consumer.WithConsumeFromWhere(consumer.ConsumeFromFirstOffset),
			consumer.WithConsumeMessageBatchMaxSize(16))
		if err := c.Subscribe(topic, consumer.MessageSelector{}, func(_ context.Context, msgs ...*primitive.MessageExt) (consumer.ConsumeResult, error) {
			mu.Lock()
			defer mu.Unlock()
			for _, m := range msgs {
				got[string(m.Body)]++
			}
			perConsumer[i] += len(msgs)
			return consumer.ConsumeSuccess, nil
		}); err != nil {
			t.Fatal(err)
		}
		if err := c.Start(); err != nil {
			t.Fatal(err)
		}
		consumers = append(consumers, c)
	}
	defer func() {
		for _, c := range consumers {
			c.Shutdown()
		}
	}()
	settle(t, srv, group, 3)

	p := newProducer(t, srv)
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for w := 0; w < 8; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			for i := w; i < total; i += 8 {
				if _, err := p.SendSync(context.Background(), primitive.NewMessage(topic, []byte(fmt.Sprintf("m-%05d", i)))); err != nil {
					errs <- err
					return
				}
			}
		}(w)
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatalf("send: %v", err)
	}
	waitFor(t, 60*time.Second, "10,000 distinct messages", func() bool { mu.Lock(); defer mu.Unlock(); return len(got) == total })
	mu.Lock()
	defer mu.Unlock()
	dups := 0
	for _, n := range got {
		if n != 1 {
			dups++
		}
	}
	if dups > 0 {
		t.Fatalf("%d messages delivered more than once", dups)
	}
	for i, n := range perConsumer {
		if n == 0 {
			t.Fatalf("consumer %d got nothing: %v", i, perConsumer)
		}
	}
}

func TestTagFilteringServerSide(t *testing.T) {
	srv := start(t, mq.Options{})
	createTopic(t, srv, "tags", 2)
	p := newProducer(t, srv)
	for i := 0; i < 60; i++ {
		tag := []string{"TagA", "TagB", "TagC"}[i%3]
		m := primitive.NewMessage("tags", []byte(fmt.Sprintf("%s-%d", tag, i))).WithTag(tag)
		if _, err := p.SendSync(context.Background(), m); err != nil {
			t.Fatal(err)
		}
	}
	c := newPushConsumer(t, srv, "g-tags", consumer.WithConsumeFromWhere(consumer.ConsumeFromFirstOffset))
	rec := consume(t, c, "tags", consumer.MessageSelector{Type: consumer.TAG, Expression: "TagA || TagC"})
	waitFor(t, 20*time.Second, "40 TagA/TagC messages", func() bool { return rec.count() >= 40 })
	msgs := rec.snapshot()
	for _, m := range msgs {
		if tg := m.GetTags(); tg != "TagA" && tg != "TagC" {
			t.Fatalf("got tag %q", tg)
		}
	}
	if len(msgs) != 40 {
		t.Fatalf("got %d messages, want 40", len(msgs))
	}
	// The broker itself filtered by the heartbeat's subscription: a raw pull as the group gets no TagB.
	raw := dial(t, srv.BrokerAddr())
	for q := 0; q < 2; q++ {
		r := invoke(t, raw, remoting.NewRequest(remoting.PullMessage, map[string]string{"consumerGroup": "g-tags", "topic": "tags",
			"queueId": fmt.Sprint(q), "queueOffset": "0", "maxMsgNums": "32", "sysFlag": "0"}, nil))
		if r.Code != remoting.Success {
			t.Fatalf("raw pull: %d %s", r.Code, r.Remark)
		}
		for b := r.Body; len(b) > 0; {
			m, n, err := message.Decode(b)
			if err != nil {
				t.Fatal(err)
			}
			if tg := message.Property(m.Properties, message.PropTags); tg == "TagB" {
				t.Fatal("broker returned a TagB message to a TagA||TagC group")
			}
			b = b[n:]
		}
	}
}
