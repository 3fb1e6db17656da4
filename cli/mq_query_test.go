package cli

import (
	"context"
	"encoding/json"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/apache/rocketmq-client-go/v2"
	"github.com/apache/rocketmq-client-go/v2/consumer"
	"github.com/apache/rocketmq-client-go/v2/primitive"
	"github.com/apache/rocketmq-client-go/v2/producer"
	"github.com/apache/rocketmq-client-go/v2/rlog"
)

// TestMQQueryAndTrace: the official Go client v2.1.2 with tracing on (its producer_trace / consumer_trace
// examples' options) produces and consumes through the embedded broker; `tide mq query` finds the messages by key,
// by either id and by time, and `tide mq trace` shows the producer's record and each delivery to the consumer
// group, a failed first attempt and the retry included. This is the only test in this package that turns client
// tracing on: v2.1.2 keeps one trace client per process, bound to the first name server it saw.
func TestMQQueryAndTrace(t *testing.T) {
	rlog.SetLogLevel("error")
	srv := startMQ(t)
	ns := []string{srv.NameServerAddr()}
	mustMQ(t, srv, "", "topic", "create", "orders", "--queues", "2")
	trace := &primitive.TraceConfig{GroupName: "trace-pg", NamesrvAddrs: ns, Access: primitive.Local}
	p, err := rocketmq.NewProducer(producer.WithNameServer(ns), producer.WithGroupName("trace-pg"),
		producer.WithInstanceName("mqcli-trace"), producer.WithTrace(trace))
	if err != nil {
		t.Fatal(err)
	}
	if err := p.Start(); err != nil {
		t.Fatal(err)
	}
	defer p.Shutdown()
	start := time.Now()
	type sent struct{ id, offID string }
	var order1 []sent
	var other sent
	for i, keys := range [][]string{{"order-1"}, {"order-2", "vip"}, {"order-1", "again"}} {
		m := primitive.NewMessage("orders", []byte(`{"n":`+string(rune('0'+i))+`}`)).WithKeys(keys).WithTag("created")
		m.WithProperty("tenant", "acme")
		r, err := p.SendSync(context.Background(), m)
		if err != nil {
			t.Fatal(err)
		}
		if keys[0] == "order-1" {
			order1 = append(order1, sent{r.MsgID, r.OffsetMsgID})
		} else {
			other = sent{r.MsgID, r.OffsetMsgID}
		}
	}

	// By key: both order-1 messages, oldest first, with properties and body.
	out := mustMQ(t, srv, "", "query", "--key", "order-1", "--topic", "orders")
	if strings.Count(out, "Topic:") != 2 || strings.Index(out, order1[1].id) < strings.Index(out, order1[0].id) ||
		!strings.Contains(out, "tenant=acme") || !strings.Contains(out, `{"n":2}`) || strings.Contains(out, other.id) {
		t.Fatalf("query --key order-1:\n%s", out)
	}
	if got := jsonLines(t, mustMQ(t, srv, "", "query", "--key", "vip", "--topic", "orders", "-o", "json")); len(got) != 1 ||
		got[0].MsgID != other.id || got[0].OffsetMsgID != other.offID || got[0].Properties["tenant"] != "acme" {
		t.Fatalf("query --key vip: %+v", got)
	}
	// By id: the producer's id (looked up in every topic) and the broker's offset id (read directly).
	for _, id := range []string{other.id, other.offID} {
		got := jsonLines(t, mustMQ(t, srv, "", "query", "--id", id, "-o", "json"))
		if len(got) != 1 || got[0].MsgID != other.id || got[0].Keys != "order-2 vip" {
			t.Fatalf("query --id %s: %+v", id, got)
		}
	}
	// By time: all three, oldest first.
	if got := jsonLines(t, mustMQ(t, srv, "", "query", "--topic", "orders", "--from", start.Add(-time.Second).UTC().Format(time.RFC3339), "-o", "json")); len(got) != 3 {
		t.Fatalf("query by time: %+v", got)
	}
	for _, bad := range [][]string{{"query"}, {"query", "--key", "k"}, {"query", "--topic", "orders"}, {"query", "--id", "x", "--key", "k", "--topic", "t"},
		{"query", "--topic", "orders", "--from", "yesterday"}} {
		if r := runMQ(t, srv, "", bad...); r.code != 2 {
			t.Fatalf("%v: exit %d, want 2 (%s)", bad, r.code, r.errOut)
		}
	}
	if r := runMQ(t, srv, "", "query", "--key", "nope", "--topic", "orders"); r.code != 1 || !strings.Contains(r.errOut, "no message found") {
		t.Fatalf("unknown key: exit %d %q", r.code, r.errOut)
	}

	// A traced consumer: the first delivery of the first order-1 message fails, the retry (1 s later) succeeds.
	c, err := rocketmq.NewPushConsumer(consumer.WithNameServer(ns), consumer.WithGroupName("trace-cg"),
		consumer.WithInstance("mqcli-trace"), consumer.WithConsumeFromWhere(consumer.ConsumeFromFirstOffset), consumer.WithTrace(trace))
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	seen := map[string]int{}
	if err := c.Subscribe("orders", consumer.MessageSelector{}, func(ctx context.Context, msgs ...*primitive.MessageExt) (consumer.ConsumeResult, error) {
		mu.Lock()
		defer mu.Unlock()
		for _, m := range msgs {
			seen[m.MsgId]++
			if m.MsgId == order1[0].id && seen[m.MsgId] == 1 {
				if cc, ok := primitive.GetConcurrentlyCtx(ctx); ok {
					cc.DelayLevelWhenNextConsume = 1
				}
				return consumer.ConsumeRetryLater, nil
			}
		}
		return consumer.ConsumeSuccess, nil
	}); err != nil {
		t.Fatal(err)
	}
	if err := c.Start(); err != nil {
		t.Fatal(err)
	}
	defer c.Shutdown()

	// The trace records arrive asynchronously (the client batches them every few ms); poll.
	var tr traceOut
	deadline := time.Now().Add(30 * time.Second)
	for {
		r := runMQ(t, srv, "", "trace", order1[0].id, "-o", "json")
		tr = traceOut{}
		if r.code == 0 {
			if err := json.Unmarshal([]byte(strings.SplitN(r.out, "\n", 2)[0]), &tr); err != nil {
				t.Fatal(err)
			}
		}
		if len(tr.Published) == 1 && len(tr.Consumed) == 1 && len(tr.Consumed[0].Attempts) == 2 &&
			tr.Consumed[0].Attempts[0].Done && tr.Consumed[0].Attempts[1].Done {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("trace of %s incomplete after 30 s: %+v (%s)", order1[0].id, tr, r.errOut)
		}
		time.Sleep(200 * time.Millisecond)
	}
	pub := tr.Published[0]
	if pub.Group != "trace-pg" || pub.Topic != "orders" || pub.OffsetMsgID != order1[0].offID || pub.StoreHost != srv.BrokerAddr() || !pub.Success {
		t.Fatalf("Pub record: %+v", pub)
	}
	if tr.Stored == nil || tr.Stored.OffsetMsgID != order1[0].offID || tr.Stored.Topic != "orders" {
		t.Fatalf("stored: %+v", tr.Stored)
	}
	g := tr.Consumed[0]
	if a0, a1 := g.Attempts[0], g.Attempts[1]; g.Group != "trace-cg" || a0.Success || a0.RetryTimes != 0 || !a1.Success || a1.RetryTimes != 1 ||
		a1.Result != "SUCCESS" || a1.Start < a0.Start {
		t.Fatalf("deliveries: %+v", g)
	}
	// The text form, by key: both order-1 messages, each with its producer and its deliveries.
	text := mustMQ(t, srv, "", "trace", "order-1")
	for _, want := range []string{"message " + order1[0].id, "message " + order1[1].id, "by group trace-pg", "group trace-cg", "2 deliveries, 1 succeeded", "attempt 2"} {
		if !strings.Contains(text, want) {
			t.Fatalf("trace order-1 lacks %q:\n%s", want, text)
		}
	}
	// The broker's offset id works as well; something never sent is exit 1.
	if out := mustMQ(t, srv, "", "trace", order1[0].offID); !strings.Contains(out, "message "+order1[0].id) {
		t.Fatalf("trace by offset id:\n%s", out)
	}
	if r := runMQ(t, srv, "", "trace", "never-sent"); r.code != 1 {
		t.Fatalf("trace never-sent: exit %d %q", r.code, r.out)
	}
}
