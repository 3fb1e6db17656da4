package mq_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	rmq "github.com/apache/rocketmq-clients/golang/v5"

	"github.com/tide-run/tide/mq/mqmeta"
)

func asRPC(err error, target **rmq.ErrRpcStatus) bool { return errors.As(err, target) }

func TestGRPCSendReceiveAck(t *testing.T) {
	t.Parallel() // each test has its own server on free ports; most of the time is the clients waiting
	srv := runGRPC(t)
	createTopic5(t, srv, "orders5", mqmeta.MessageTypeNormal, 4)
	p := newProducer5(t, srv, rmq.WithTopics("orders5"))
	c := newSimpleConsumer5(t, srv, "g5", map[string]*rmq.FilterExpression{"orders5": rmq.SUB_ALL})
	ctx := context.Background()
	var want []string
	for i := 0; i < 5; i++ {
		msg := &rmq.Message{Topic: "orders5", Body: []byte(fmt.Sprintf("sync-%d", i))}
		msg.SetTag("created")
		msg.SetKeys("k", fmt.Sprint(i))
		msg.AddProperty("tenant", "acme")
		res, err := p.Send(ctx, msg)
		if err != nil {
			t.Fatalf("send: %v", err)
		}
		if len(res) != 1 || res[0].MessageID == "" {
			t.Fatalf("send receipt %+v", res)
		}
		want = append(want, string(msg.Body))
	}
	var wg sync.WaitGroup
	var mu sync.Mutex
	var asyncErr error
	for i := 0; i < 5; i++ {
		wg.Add(1)
		body := fmt.Sprintf("async-%d", i)
		want = append(want, body)
		p.SendAsync(ctx, &rmq.Message{Topic: "orders5", Body: []byte(body)}, func(_ context.Context, _ []*rmq.SendReceipt, err error) {
			mu.Lock()
			asyncErr = errors.Join(asyncErr, err)
			mu.Unlock()
			wg.Done()
		})
	}
	wg.Wait()
	if asyncErr != nil {
		t.Fatal(asyncErr)
	}
	got := receiveN(t, c, 10, 20*time.Second, true, 20*time.Second)
	var bodies []string
	for _, mv := range got {
		bodies = append(bodies, string(mv.GetBody()))
		if mv.GetDeliveryAttempt() != 1 {
			t.Errorf("%s: delivery attempt %d, want 1", mv.GetBody(), mv.GetDeliveryAttempt())
		}
		if string(mv.GetBody())[:4] == "sync" {
			if mv.GetTag() == nil || *mv.GetTag() != "created" || mv.GetProperties()["tenant"] != "acme" || len(mv.GetKeys()) != 2 {
				t.Errorf("%s: tag %v keys %v properties %v", mv.GetBody(), mv.GetTag(), mv.GetKeys(), mv.GetProperties())
			}
		}
	}
	slices.Sort(bodies)
	slices.Sort(want)
	if !slices.Equal(bodies, want) {
		t.Fatalf("received %v, want %v", bodies, want)
	}
	// Everything acked: nothing more comes.
	mvs, err := c.Receive(ctx, 16, 20*time.Second)
	if len(mvs) != 0 || !isNotFound(err) {
		t.Fatalf("after acking all: %d messages, err %v; want none and MESSAGE_NOT_FOUND", len(mvs), err)
	}
}
