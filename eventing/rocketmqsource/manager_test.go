package rocketmqsource

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/apache/rocketmq-client-go/v2/primitive"
)

func TestManagerAppliesReplacesRemoves(t *testing.T) {
	srv := startBroker(t)
	createTopic(t, srv, "a", 1)
	createTopic(t, srv, "b", 1)
	p := newProducer(t, srv)
	sink := newSink(t, nil)
	m := NewManager(nil, quiet)
	defer m.Shutdown(context.Background())
	cfg := withBroker(Config{Topics: []string{"a"}, ConsumerGroup: "g-mgr", Sink: sink.url}, srv)

	st, err := m.Apply(context.Background(), "ns/src", cfg)
	if err != nil || !st.Deployed {
		t.Fatalf("%+v %v", st, err)
	}
	first := m.adapters["ns/src"].adapter
	if _, err := m.Apply(context.Background(), "ns/src", cfg); err != nil || m.adapters["ns/src"].adapter != first {
		t.Fatal("unchanged config restarted the adapter")
	}
	idA := send(t, p, msgOn("a"))
	waitFor(t, 20*time.Second, func() string {
		if sink.has([]string{idA}) != nil {
			return "topic a not delivered"
		}
		return ""
	})

	cfg.Topics = []string{"b"}
	if _, err := m.Apply(context.Background(), "ns/src", cfg); err != nil || m.adapters["ns/src"].adapter == first {
		t.Fatalf("changed config not applied: %v", err)
	}
	if first.Status().Deployed {
		t.Error("replaced adapter still deployed")
	}
	idB := send(t, p, msgOn("b"))
	waitFor(t, 20*time.Second, func() string {
		if sink.has([]string{idB}) != nil {
			return "topic b not delivered after the change"
		}
		return ""
	})

	bad := cfg
	bad.Topics = []string{"missing"}
	st, err = m.Apply(context.Background(), "ns/other", bad)
	if !errors.Is(err, ErrTopicNotFound) || st.Reason != "TopicNotFound" || st.Deployed {
		t.Fatalf("missing topic: %+v %v", st, err)
	}
	if err := m.Remove(context.Background(), "ns/src"); err != nil {
		t.Fatal(err)
	}
	if len(m.adapters) != 0 || m.Counters("ns/src") != (Counters{}) {
		t.Fatal("adapter not removed")
	}
}

func msgOn(topic string) *primitive.Message {
	return primitive.NewMessage(topic, []byte(fmt.Sprintf("m-%d", seq.Add(1))))
}
