package bus

import (
	"context"
	"net/url"
	"sync"
	"testing"
	"time"

	"github.com/tide-run/tide/mq/admin"
)

// With MessageTrace, a subscription's deliveries show in RocketMQ's message trace, found by the event's id (the
// CE_id property): the failed first delivery and the redelivery through %RETRY%, with their results.
func TestMessageTraceRecords(t *testing.T) {
	b, srv := startBusServer(t, RocketMQOptions{MessageTrace: true})
	testMessageTraceRecords(t, b, srv.NameServerAddr())
}

// TestMessageTraceRecordsNative is TestMessageTraceRecords on the native bus.
func TestMessageTraceRecordsNative(t *testing.T) {
	b, srv, _ := startNative(t, RocketMQOptions{MessageTrace: true})
	testMessageTraceRecords(t, b, srv.NameServerAddr())
}

func testMessageTraceRecords(t *testing.T, b Bus, nameServer string) {
	ctx := t.Context()
	var mu sync.Mutex
	calls := 0
	sink, _ := url.Parse("http://user:secret@subscriber.example/path")
	sub, err := b.Subscribe(ctx, SubscribeOptions{Topic: "traced", Group: "trigger-g", From: FromFirst}, func(hctx context.Context, m *Message) Action {
		mu.Lock()
		defer mu.Unlock()
		calls++
		if calls == 1 {
			NoteDelivery(hctx, Delivery{Sink: sink, Outcome: "Failed", Status: 503, Attempts: 3})
			return Retry
		}
		NoteDelivery(hctx, Delivery{Sink: sink, Outcome: "Delivered", Status: 200, Attempts: 1})
		return Ack
	})
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Close()
	if err := b.Send(ctx, &Message{Topic: "traced", Body: []byte("e"), Properties: map[string]string{"CE_id": "evt-1",
		"traceparent": "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"}}); err != nil {
		t.Fatal(err)
	}
	c, err := admin.Dial(ctx, nameServer)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	var got []admin.MessageTrace
	deadline := time.Now().Add(20 * time.Second)
	for {
		got, err = c.Trace(ctx, "evt-1", "", time.Time{}, time.Time{})
		if err == nil && len(got) == 1 && len(got[0].Groups) == 1 && len(got[0].Groups[0].Attempts) == 2 &&
			got[0].Groups[0].Attempts[1].Done {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("trace of evt-1: %+v, %v", got, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
	g := got[0].Groups[0]
	a0, a1 := g.Attempts[0], g.Attempts[1]
	if g.Group != "trigger-g" || !a0.Done || a0.Success || a0.Result != "FAILED" || !a1.Success || a1.Result != "SUCCESS" || a1.RetryTimes != 1 {
		t.Fatalf("deliveries: %+v", g)
	}
	// tide's extension: what the handler noted, the event and the trace; the sink's password left out.
	if a0.Outcome != "Failed" || a0.Status != 503 || a0.Attempts != 3 || a0.Then != "retry" || a1.Then != "" || a1.Outcome != "Delivered" || a1.Status != 200 {
		t.Errorf("noted deliveries: %+v", g)
	}
	for _, a := range g.Attempts {
		if a.Event != "evt-1" || a.TraceID != "4bf92f3577b34da6a3ce929d0e0e4736" || a.Sink != "http://user:xxxxx@subscriber.example/path" {
			t.Errorf("attempt %+v: want event evt-1, the traceparent's trace and the redacted sink", a)
		}
	}
	if got[0].Stored == nil || got[0].Stored.Topic != "traced" {
		t.Fatalf("stored: %+v", got[0].Stored)
	}
}
