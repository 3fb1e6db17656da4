package mq_test

import (
	"context"
	"testing"
	"time"

	"github.com/apache/rocketmq-client-go/v2/consumer"
	"github.com/apache/rocketmq-client-go/v2/primitive"

	"github.com/tide-run/tide/mq"
	"github.com/tide-run/tide/mq/admin"
)

// TestResetOffsetReachesRunningConsumers: the broker pushes RESET_CONSUMER_CLIENT_OFFSET to the running group in
// the layout the Go client parses, and the consumer re-reads from the new offset (the client pauses 10 s first).
func TestResetOffsetReachesRunningConsumers(t *testing.T) {
	t.Parallel() // mostly waiting on the client's own timers
	srv := start(t, mq.Options{})
	createTopic(t, srv, "again", 1)
	sendBodies(t, srv, "again", 0, 5)
	var mu = make(chan struct{}, 1)
	mu <- struct{}{}
	deliveries := 0
	c := newPushConsumer(t, srv, "g-again", consumer.WithConsumeFromWhere(consumer.ConsumeFromFirstOffset))
	c.Subscribe("again", consumer.MessageSelector{}, func(_ context.Context, ms ...*primitive.MessageExt) (consumer.ConsumeResult, error) {
		<-mu
		deliveries += len(ms)
		mu <- struct{}{}
		return consumer.ConsumeSuccess, nil
	})
	if err := c.Start(); err != nil {
		t.Fatal(err)
	}
	defer c.Shutdown()
	count := func() int { <-mu; defer func() { mu <- struct{}{} }(); return deliveries }
	waitFor(t, 20*time.Second, "5 deliveries", func() bool { return count() == 5 })
	ac, err := admin.Dial(context.Background(), srv.NameServerAddr())
	if err != nil {
		t.Fatal(err)
	}
	defer ac.Close()
	if _, err := ac.ResetOffset(context.Background(), "g-again", "again", admin.ResetToFirst); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 30*time.Second, "the 5 messages again", func() bool { return count() == 10 })
}
