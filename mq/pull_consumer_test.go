package mq_test

import (
	"context"
	"testing"
	"time"

	"github.com/apache/rocketmq-client-go/v2"
	"github.com/apache/rocketmq-client-go/v2/consumer"

	"github.com/tide-run/tide/mq"
)

func TestPullConsumerPollAndAck(t *testing.T) {
	srv := start(t, mq.Options{})
	createTopic(t, srv, "polled", 2)
	sendBodies(t, srv, "polled", 0, 20)
	pc, err := rocketmq.NewPullConsumer(consumer.WithGroupName("g-polled"), consumer.WithNameServer([]string{srv.NameServerAddr()}),
		consumer.WithInstance(uniq("pull")), consumer.WithConsumeFromWhere(consumer.ConsumeFromFirstOffset))
	if err != nil {
		t.Fatal(err)
	}
	if err := pc.Subscribe("polled", consumer.MessageSelector{}); err != nil {
		t.Fatal(err)
	}
	if err := pc.Start(); err != nil {
		t.Fatal(err)
	}
	defer pc.Shutdown()
	got := map[string]bool{}
	deadline := time.Now().Add(20 * time.Second)
	for len(got) < 20 && time.Now().Before(deadline) {
		cr, err := pc.Poll(context.Background(), time.Second)
		if err != nil {
			continue
		}
		for _, m := range cr.GetMsgList() {
			got[string(m.Body)] = true
		}
		pc.ACK(context.Background(), cr, consumer.ConsumeSuccess)
	}
	if len(got) != 20 {
		t.Fatalf("polled %d of 20", len(got))
	}
}
