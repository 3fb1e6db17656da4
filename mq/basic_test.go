package mq_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/apache/rocketmq-client-go/v2/consumer"
	"github.com/apache/rocketmq-client-go/v2/primitive"

	"github.com/tide-run/tide/mq"
	"github.com/tide-run/tide/mq/broker"
)

func brokerTopic(name string, queues int) broker.TopicConfig {
	return broker.TopicConfig{TopicName: name, ReadQueueNums: queues, WriteQueueNums: queues, Perm: broker.PermRW}
}

func TestSyncSendPushReceive(t *testing.T) {
	srv := start(t, mq.Options{})
	p := newProducer(t, srv)
	// Unknown topic: the producer goes through TBW102 and the broker auto-creates the topic.
	ids := sendN(t, p, "hello", 20, "")
	c := newPushConsumer(t, srv, "g-hello", consumer.WithConsumeFromWhere(consumer.ConsumeFromFirstOffset))
	var mu sync.Mutex
	got := map[string]int{}
	if err := c.Subscribe("hello", consumer.MessageSelector{}, func(_ context.Context, msgs ...*primitive.MessageExt) (consumer.ConsumeResult, error) {
		mu.Lock()
		defer mu.Unlock()
		for _, m := range msgs {
			got[m.MsgId]++
		}
		return consumer.ConsumeSuccess, nil
	}); err != nil {
		t.Fatal(err)
	}
	if err := c.Start(); err != nil {
		t.Fatal(err)
	}
	defer c.Shutdown()
	waitFor(t, 20*time.Second, "20 messages", func() bool { mu.Lock(); defer mu.Unlock(); return len(got) == 20 })
	for _, id := range ids {
		if got[id] != 1 {
			t.Fatalf("message %s delivered %d times", id, got[id])
		}
	}
	// A message sent after the consumer is idle arrives through a long poll.
	start := time.Now()
	sendN(t, p, "hello", 1, "")
	waitFor(t, 5*time.Second, "21st message", func() bool { mu.Lock(); defer mu.Unlock(); return len(got) == 21 })
	if d := time.Since(start); d > 2*time.Second {
		t.Fatalf("long poll woke after %v", d)
	}
}
