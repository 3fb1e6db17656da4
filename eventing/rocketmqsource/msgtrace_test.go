package rocketmqsource

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/apache/rocketmq-client-go/v2/primitive"
	cloudevents "github.com/cloudevents/sdk-go/v2"

	"github.com/tide-run/tide/mq/admin"
)

// TestMessageTraceRecords: with MessageTrace the source's deliveries show in RocketMQ's message trace (admin.Trace,
// what `tide mq trace` runs), found by the message's key: the first delivery, refused by the sink (503) and sent
// back to RocketMQ, and the redelivery through %RETRY% that the sink accepts, each with the CloudEvent's id, the
// sink, its status, the attempt count and the producer's OpenTelemetry trace id (the message's traceparent).
func TestMessageTraceRecords(t *testing.T) {
	srv := startBroker(t)
	createTopic(t, srv, "traced", 1)
	p := newProducer(t, srv)
	var orderCalls atomic.Int32
	sink := newSink(t, func(ev cloudevents.Event, _ int64) int {
		if string(ev.Data()) == "poison" || orderCalls.Add(1) == 1 {
			return 503
		}
		return 202
	})
	const traceID = "4bf92f3577b34da6a3ce929d0e0e4736"
	m := primitive.NewMessage("traced", []byte(`{"order":1}`))
	m.WithKeys([]string{"order-1"})
	m.WithProperty("traceparent", "00-"+traceID+"-00f067aa0ba902b7-01")
	id := send(t, p, m)
	poison := send(t, p, primitive.NewMessage("traced", []byte("poison")).WithKeys([]string{"poison-1"}))
	startAdapter(t, srv, Config{Topics: []string{"traced"}, ConsumerGroup: "g-traced", Sink: sink.url, MessageTrace: true,
		RetryDelayLevel: 1, MaxReconsumeTimes: 1})

	c, err := admin.Dial(context.Background(), srv.NameServerAddr())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	var got []admin.MessageTrace
	waitFor(t, 30*time.Second, func() string {
		got, err = c.Trace(context.Background(), "order-1", "", time.Time{}, time.Time{})
		if err != nil || len(got) != 1 || len(got[0].Groups) != 1 || len(got[0].Groups[0].Attempts) != 2 || !got[0].Groups[0].Attempts[1].Done {
			return fmt.Sprintf("trace of order-1: %+v, %v", got, err)
		}
		return ""
	})
	tr := got[0]
	if tr.MsgID != id || tr.Stored == nil || tr.Stored.Topic != "traced" {
		t.Fatalf("message %s stored %+v; want %s", tr.MsgID, tr.Stored, id)
	}
	g := tr.Groups[0]
	a0, a1 := g.Attempts[0], g.Attempts[1]
	if g.Group != "g-traced" {
		t.Errorf("group %q", g.Group)
	}
	if !a0.Done || a0.Success || a0.Result != "FAILED" || a0.Outcome != "Failed" || a0.Status != 503 || a0.RetryTimes != 0 || a0.Then != "retry" {
		t.Errorf("first delivery %+v: want FAILED with the sink's 503, then a retry", a0)
	}
	if !a1.Success || a1.Result != "SUCCESS" || a1.Outcome != "Delivered" || a1.Status != 202 || a1.Attempts != 1 || a1.RetryTimes != 1 || a1.Then != "" {
		t.Errorf("redelivery %+v: want Delivered with 202 on its first attempt", a1)
	}
	for i, a := range g.Attempts {
		if a.Event != id || a.TraceID != traceID || a.Sink != sink.url.String() || a.Start == 0 || a.End < a.Start {
			t.Errorf("attempt %d %+v: want event %s, trace %s, sink %s and its times", i, a, id, traceID, sink.url)
		}
	}

	// A message the sink never takes: retried once, then (MaxReconsumeTimes 1) moved to %DLQ%g-traced.
	waitFor(t, 30*time.Second, func() string {
		got, err = c.Trace(context.Background(), "poison-1", "", time.Time{}, time.Time{})
		if err != nil || len(got) != 1 || len(got[0].Groups) != 1 || len(got[0].Groups[0].Attempts) != 2 || !got[0].Groups[0].Attempts[1].Done {
			return fmt.Sprintf("trace of poison-1: %+v, %v", got, err)
		}
		return ""
	})
	if pa := got[0].Groups[0].Attempts; got[0].MsgID != poison || pa[0].Then != "retry" || pa[1].Then != "dlq" || pa[1].Status != 503 {
		t.Errorf("poison message %s: %+v; want a retry, then the DLQ", got[0].MsgID, pa)
	}
}
