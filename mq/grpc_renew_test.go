package mq_test

import (
	"context"
	"slices"
	"sync"
	"testing"
	"time"

	rmq "github.com/apache/rocketmq-clients/golang/v5"

	"github.com/tide-run/tide/mq/mqmeta"
)

// A push consumer that takes longer than its receive's invisible time over a message does not see it again while
// it works: the endpoint renews the deliveries of auto_renew receives while the consumer is connected, as Apache's
// proxy does (here the invisible time is 1 s and the listener takes 3 s).
func TestGRPCPushConsumerRenewal(t *testing.T) {
	t.Parallel() // its own server on free ports; most of the time is the listener sleeping
	opts := grpcOpts(t)
	opts.GRPCAutoRenewInvisible = time.Second
	srv := start(t, opts)
	createTopic5(t, srv, "renew5", mqmeta.MessageTypeNormal, 1)
	p := newProducer5(t, srv, rmq.WithTopics("renew5"))
	var (
		mu       sync.Mutex
		attempts []int32
		done     = make(chan struct{})
	)
	pc, err := rmq.NewPushConsumer(&rmq.Config{Endpoint: srv.GRPCAddr(), ConsumerGroup: "g-renew5"},
		rmq.WithPushAwaitDuration(time.Second),
		rmq.WithPushSubscriptionExpressions(map[string]*rmq.FilterExpression{"renew5": rmq.SUB_ALL}),
		rmq.WithPushMessageListener(&rmq.FuncMessageListener{Consume: func(mv *rmq.MessageView) rmq.ConsumerResult {
			mu.Lock()
			attempts = append(attempts, mv.GetDeliveryAttempt())
			first := len(attempts) == 1
			mu.Unlock()
			if first {
				time.Sleep(3 * time.Second)
				close(done)
			}
			return rmq.SUCCESS
		}}))
	if err != nil {
		t.Fatal(err)
	}
	if err := pc.Start(); err != nil {
		t.Fatal(err)
	}
	// GracefulStop waits out the consumer's in-flight long polls (~7 s); the server's shutdown ends them instead.
	t.Cleanup(func() { go pc.GracefulStop() })
	if _, err := p.Send(context.Background(), &rmq.Message{Topic: "renew5", Body: []byte("slow")}); err != nil {
		t.Fatal(err)
	}
	select {
	case <-done:
	case <-time.After(30 * time.Second):
		t.Fatal("the message was not consumed within 30 s")
	}
	time.Sleep(1500 * time.Millisecond) // a redelivery, had there been one, would have come by now (lapse: 1 s)
	mu.Lock()
	defer mu.Unlock()
	if !slices.Equal(attempts, []int32{1}) {
		t.Fatalf("deliveries %v, want one (renewed while the listener worked)", attempts)
	}
}
