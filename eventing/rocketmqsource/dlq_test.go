package rocketmqsource

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/apache/rocketmq-client-go/v2"
	"github.com/apache/rocketmq-client-go/v2/consumer"
	"github.com/apache/rocketmq-client-go/v2/primitive"
	cloudevents "github.com/cloudevents/sdk-go/v2"
)

// TestPoisonMessageEndsInDLQ: a message no sink ever accepts, with no dead-letter sink, is not lost: after
// maxReconsumeTimes it sits in %DLQ%<group> (where `tide mq dlq` lists and replays it), and the rest of the
// stream is delivered. Both orderings.
func TestPoisonMessageEndsInDLQ(t *testing.T) {
	for _, ordered := range []bool{false, true} {
		t.Run(fmt.Sprintf("ordered=%v", ordered), func(t *testing.T) {
			srv := startBroker(t)
			createTopic(t, srv, "work", 2)
			p := newProducer(t, srv)
			ids := sendMany(t, p, "work", 2, 10)
			poison := primitive.NewMessage("work", []byte("poison"))
			poison.WithProperty("q", "0")
			poisonID := send(t, p, poison)
			after := sendMany(t, p, "work", 2, 5)
			sink := newSink(t, func(ev cloudevents.Event, _ int64) int {
				if string(ev.Data()) == "poison" {
					return 500
				}
				return 202
			})
			group := fmt.Sprintf("g-poison-%v", ordered)
			a := startAdapter(t, srv, Config{Topics: []string{"work"}, ConsumerGroup: group, Sink: sink.url, Ordered: ordered,
				MaxReconsumeTimes: 2, RetryDelayLevel: 1, OrderedRetryInterval: 20 * time.Millisecond})
			all := append(append([]string{}, ids...), after...)
			waitFor(t, 30*time.Second, func() string {
				if m := sink.has(all); len(m) > 0 {
					return fmt.Sprintf("%d not delivered (counters %+v)", len(m), a.Counters())
				}
				return ""
			})

			var mu sync.Mutex
			var dlq []*primitive.MessageExt
			// The DLQ topic appears when the first message is moved there; a consumer cannot start before (its
			// Start fails without a route), so try with a fresh consumer until it can.
			var c rocketmq.PushConsumer
			waitFor(t, 30*time.Second, func() string {
				var err error
				c, err = rocketmq.NewPushConsumer(consumer.WithNameServer([]string{srv.NameServerAddr()}), consumer.WithGroupName(group+"-dlq-reader"),
					consumer.WithInstance(fmt.Sprintf("dlq-%d", seq.Add(1))), consumer.WithConsumeFromWhere(consumer.ConsumeFromFirstOffset))
				if err != nil {
					t.Fatal(err)
				}
				_ = c.Subscribe("%DLQ%"+group, consumer.MessageSelector{}, func(_ context.Context, msgs ...*primitive.MessageExt) (consumer.ConsumeResult, error) {
					mu.Lock()
					dlq = append(dlq, msgs...)
					mu.Unlock()
					return consumer.ConsumeSuccess, nil
				})
				if err := c.Start(); err != nil {
					return "DLQ topic not there yet: " + err.Error()
				}
				return ""
			})
			defer c.Shutdown()
			waitFor(t, 30*time.Second, func() string {
				mu.Lock()
				defer mu.Unlock()
				for _, m := range dlq {
					if string(m.Body) == "poison" && m.MsgId == poisonID {
						return ""
					}
				}
				return fmt.Sprintf("poison message not in %%DLQ%%%s (%d there; counters %+v)", group, len(dlq), a.Counters())
			})
			if c := a.Counters(); c.Retried < 3 {
				t.Errorf("counters %+v: expected the poison message handed back at least 3 times", c)
			}
		})
	}
}
