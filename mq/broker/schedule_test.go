package broker

import (
	"context"
	"io"
	"log/slog"
	"testing"
	"time"

	clocktesting "k8s.io/utils/clock/testing"

	"github.com/tide-run/tide/mq/message"
	"github.com/tide-run/tide/mq/store"
)

func newTestBroker(t testing.TB, fc *clocktesting.FakeClock) *Broker {
	t.Helper()
	dir := t.TempDir()
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	st, err := store.Open(store.Options{Dir: dir, Clock: fc, Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	b, err := New(Options{Store: st, DataDir: dir, Addr: "127.0.0.1:10911", Clock: fc, Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		b.Close(context.Background())
		if err := st.Check(); err != nil {
			t.Errorf("store consistency: %v", err)
		}
		st.Close()
	})
	return b
}

func TestSchedulerHonoursEveryLevelWithFakeClock(t *testing.T) {
	fc := clocktesting.NewFakeClock(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
	b := newTestBroker(t, fc)
	if err := b.CreateTopic(TopicConfig{TopicName: "t", ReadQueueNums: 1, WriteQueueNums: 1}); err != nil {
		t.Fatal(err)
	}
	for level := 1; level <= 18; level++ {
		m := &message.Message{Topic: "t", Body: []byte{byte(level)},
			Properties: message.FormatProperties(map[string]string{message.PropDelayLevel: itoa(int64(level))})}
		b.applyDelay(m)
		if m.Topic != ScheduleTopic || m.QueueID != int32(level-1) {
			t.Fatalf("level %d routed to %s/%d", level, m.Topic, m.QueueID)
		}
		if _, _, err := b.st.Put([]*message.Message{m}); err != nil {
			t.Fatal(err)
		}
	}
	start := fc.Now()
	for level := 1; level <= 18; level++ {
		d := DefaultDelayLevels[level-1]
		// Just before the level's delay nothing new is due; at the delay exactly one more message lands.
		next := b.sched.deliverDue(start.Add(d - time.Millisecond))
		if got := b.st.MaxOffset("t", 0); got != int64(level-1) {
			t.Fatalf("before level %d (%v): %d delivered, want %d", level, d, got, level-1)
		}
		if !next.Equal(start.Add(d)) {
			t.Fatalf("level %d: next due %v, want %v", level, next, start.Add(d))
		}
		b.sched.deliverDue(start.Add(d))
		if got := b.st.MaxOffset("t", 0); got != int64(level) {
			t.Fatalf("at level %d (%v): %d delivered, want %d", level, d, got, level)
		}
		m, err := b.st.Entry("t", 0, int64(level-1))
		if err != nil {
			t.Fatal(err)
		}
		if m.Body[0] != byte(level) || message.Property(m.Properties, message.PropDelayLevel) != "" ||
			message.Property(m.Properties, message.PropRealTopic) != "t" {
			t.Fatalf("delivered message %v props %q", m.Body, m.Properties)
		}
	}
	if next := b.sched.deliverDue(start.Add(3 * time.Hour)); !next.IsZero() {
		t.Fatalf("nothing left, but next due %v", next)
	}
}
