package mq_test

import (
	"context"
	"testing"
	"time"

	"github.com/apache/rocketmq-client-go/v2/consumer"
	"github.com/apache/rocketmq-client-go/v2/primitive"

	"github.com/tide-run/tide/mq"
)

// TestRequestReply: producer.Request blocks until a consumer answers with consumer.CreateReplyMessage; the broker
// stamps CLUSTER on the request and pushes the reply to the requester's connection (PUSH_REPLY_MESSAGE_TO_CLIENT).
func TestRequestReply(t *testing.T) {
	srv := start(t, mq.Options{})
	createTopic(t, srv, "rpc", 1)
	replier := newProducer(t, srv)
	// The callback reports on a channel, not through t: it may still run after the test returns.
	replied := make(chan error, 16)
	c := newPushConsumer(t, srv, "g-rpc", consumer.WithConsumeFromWhere(consumer.ConsumeFromFirstOffset))
	c.Subscribe("rpc", consumer.MessageSelector{}, func(_ context.Context, msgs ...*primitive.MessageExt) (consumer.ConsumeResult, error) {
		for _, m := range msgs {
			reply, err := consumer.CreateReplyMessage(m, nil)
			if err != nil {
				replied <- err
				continue
			}
			// v2.1.2's CreateReplyMessage parses its body argument as properties instead of using it as the body.
			reply.Body = []byte("pong:" + string(m.Body))
			_, err = replier.SendSync(context.Background(), reply)
			replied <- err
		}
		return consumer.ConsumeSuccess, nil
	})
	if err := c.Start(); err != nil {
		t.Fatal(err)
	}
	defer c.Shutdown()
	requester := newProducer(t, srv)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	resp, err := requester.Request(ctx, 15*time.Second, primitive.NewMessage("rpc", []byte("ping")))
	if err != nil {
		t.Fatal(err)
	}
	if string(resp.Body) != "pong:ping" {
		t.Fatalf("reply %q", resp.Body)
	}
	select {
	case err := <-replied:
		if err != nil {
			t.Fatalf("replier: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("replier's send never returned")
	}
}
