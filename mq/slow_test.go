package mq_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net"
	"testing"
	"time"

	"github.com/apache/rocketmq-client-go/v2/consumer"
	"github.com/apache/rocketmq-client-go/v2/primitive"

	"github.com/tide-run/tide/mq"
	"github.com/tide-run/tide/mq/remoting"
)

// TestSlowConsumerBlocksNobody: a client that asks for large pulls and never reads its socket fills its TCP
// buffers; producers and another group must keep going at full speed meanwhile.
func TestSlowConsumerBlocksNobody(t *testing.T) {
	srv := start(t, mq.Options{})
	createTopic(t, srv, "wide", 1)
	p := newProducer(t, srv)
	big := make([]byte, 100<<10) // random: the client would compress zeros to nothing
	r := rand.New(rand.NewPCG(1, 2))
	for i := range big {
		big[i] = byte(r.Uint32())
	}
	for i := 0; i < 40; i++ {
		if _, err := p.SendSync(context.Background(), primitive.NewMessage("wide", big)); err != nil {
			t.Fatal(err)
		}
	}
	nc, err := net.Dial("tcp", srv.BrokerAddr())
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	for i := 0; i < 200; i++ { // ~800 MB of answers requested, none read
		req := remoting.NewRequest(remoting.PullMessage, map[string]string{"consumerGroup": "stuck", "topic": "wide",
			"queueId": "0", "queueOffset": "0", "maxMsgNums": "40", "sysFlag": "0"}, nil)
		req.Opaque = int32(i)
		nc.SetWriteDeadline(time.Now().Add(time.Second))
		if _, err := nc.Write(req.Encode()); err != nil {
			break // the broker may already have dropped us
		}
	}
	col := newCollector()
	c := newPushConsumer(t, srv, "g-healthy", consumer.WithConsumeFromWhere(consumer.ConsumeFromLastOffset))
	createTopic(t, srv, "narrow", 1)
	c.Subscribe("narrow", consumer.MessageSelector{}, col.fn)
	if err := c.Start(); err != nil {
		t.Fatal(err)
	}
	defer c.Shutdown()
	start := time.Now()
	for i := 0; i < 200; i++ {
		if _, err := p.SendSync(context.Background(), primitive.NewMessage("narrow", []byte(fmt.Sprint(i)))); err != nil {
			t.Fatal(err)
		}
	}
	if d := time.Since(start); d > 8*time.Second {
		t.Fatalf("200 sends took %v while a consumer was stuck", d)
	}
	waitFor(t, 10*time.Second, "the healthy group to get 200", func() bool { return col.count() == 200 })
}
