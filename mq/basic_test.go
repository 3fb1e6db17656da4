package mq_test

import (
	"testing"
	"time"

	"github.com/apache/rocketmq-client-go/v2/consumer"
	clocktesting "k8s.io/utils/clock/testing"

	"github.com/tide-run/tide/mq"
	"github.com/tide-run/tide/mq/mqmeta"
)

func brokerTopic(name string, queues int) mqmeta.TopicConfig {
	return mqmeta.TopicConfig{TopicName: name, ReadQueueNums: queues, WriteQueueNums: queues, Perm: mqmeta.PermRW}
}

func TestSyncSendPushReceive(t *testing.T) {
	// The broker's clock is fake and never stepped: a suspended pull cannot expire, so the message sent after the
	// consumer went idle can only arrive through the long poll being woken by its arrival (see the end).
	srv := start(t, mq.Options{Clock: clocktesting.NewFakeClock(time.Now())})
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
	// A message sent after the consumer is idle arrives through a long poll woken by the arrival: with the broker's
	// time frozen no hold can expire, and the client's own pull times out only after its 20 s suspend timeout, so
	// arrival within 10 s is the wake, however slow the machine (no elapsed-time threshold to flake on).
	sendN(t, p, "hello", 1, "")
	waitFor(t, 10*time.Second, "21st message, woken by its arrival", func() bool { return len(byID()) == 21 })
}
