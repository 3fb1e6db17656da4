package mq_test

import (
	"testing"
	"time"

	"github.com/apache/rocketmq-client-go/v2/consumer"

	"github.com/tide-run/tide/mq"
	"github.com/tide-run/tide/mq/mqmeta"
)

func brokerTopic(name string, queues int) mqmeta.TopicConfig {
	return mqmeta.TopicConfig{TopicName: name, ReadQueueNums: queues, WriteQueueNums: queues, Perm: mqmeta.PermRW}
}

func TestSyncSendPushReceive(t *testing.T) {
	srv := start(t, mq.Options{})
	p := newProducer(t, srv)
	// Unknown topic: the producer goes through TBW102 and the broker auto-creates the topic.
	ids := sendN(t, p, "hello", 20, "")
	c := newPushConsumer(t, srv, "g-hello", consumer.WithConsumeFromWhere(consumer.ConsumeFromFirstOffset))
	rec := consume(t, c, "hello", consumer.MessageSelector{})
	byID := func() map[string]int {
		n := map[string]int{}
		for _, m := range rec.snapshot() {
			n[m.MsgId]++
		}
		return n
	}
	waitFor(t, 20*time.Second, "20 messages", func() bool { return len(byID()) == 20 })
	got := byID()
	for _, id := range ids {
		if got[id] != 1 {
			t.Fatalf("message %s delivered %d times", id, got[id])
		}
	}
	// A message sent after the consumer is idle arrives through a long poll.
	start := time.Now()
	sendN(t, p, "hello", 1, "")
	waitFor(t, 5*time.Second, "21st message", func() bool { return len(byID()) == 21 })
	if d := time.Since(start); d > 2*time.Second {
		t.Fatalf("long poll woke after %v", d)
	}
}
