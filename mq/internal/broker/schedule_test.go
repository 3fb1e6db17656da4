package broker

import (
	"context"
	"io"
	"log/slog"
	"testing"
	"time"

	clocktesting "k8s.io/utils/clock/testing"

	"github.com/tide-run/tide/mq/internal/store"
	"github.com/tide-run/tide/mq/message"
	"github.com/tide-run/tide/mq/mqmeta"
)

func newTestBroker(t testing.TB, fc *clocktesting.FakeClock) *Broker {
	t.Helper()
	b, closeB := openBroker(t, t.TempDir(), fc)
	t.Cleanup(closeB)
	return b
}

// openBroker opens a broker and its store on dir; the returned func closes both after a store consistency check
// (a second open of dir then sees what was persisted).
func openBroker(t testing.TB, dir string, fc *clocktesting.FakeClock) (*Broker, func()) {
	t.Helper()
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	st, err := store.Open(store.Options{Dir: dir, Clock: fc, Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	b, err := New(Options{Store: st, DataDir: dir, Addr: "127.0.0.1:10911", Clock: fc, Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	return b, func() {
		if err := b.Close(context.Background()); err != nil {
			t.Error(err)
		}
		if err := st.Check(); err != nil {
			t.Errorf("store consistency: %v", err)
		}
		st.Close()
	}
}

func TestSchedulerHonoursEveryLevelWithFakeClock(t *testing.T) {
	fc := clocktesting.NewFakeClock(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
	b := newTestBroker(t, fc)
	if err := b.CreateTopic(mqmeta.TopicConfig{TopicName: "t", ReadQueueNums: 1, WriteQueueNums: 1}); err != nil {
		t.Fatal(err)
	}
	for level := 1; level <= 18; level++ {
		m := &message.Message{Topic: "t", Body: []byte{byte(level)},
			Properties: message.FormatProperties(map[string]string{message.PropDelayLevel: itoa(int64(level))})}
		b.applyDelay(m)
		if m.Topic != mqmeta.ScheduleTopic || m.QueueID != int32(level-1) {
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

func TestConcurrentConfigWrites(t *testing.T) {
	b := newTestBroker(t, clocktesting.NewFakeClock(time.Now()))
	done := make(chan error, 40)
	for i := 0; i < 40; i++ {
		go func(i int) {
			switch i % 3 {
			case 0:
				done <- b.CreateTopic(mqmeta.TopicConfig{TopicName: "c" + itoa(int64(i)), ReadQueueNums: 1, WriteQueueNums: 1})
			case 1:
				_, err := b.cfg.ensureGroup("g" + itoa(int64(i)))
				done <- err
			default:
				b.cfg.setOffset("t", "g", int32(i), int64(i))
				done <- b.cfg.persistOffsets(true)
			}
		}(i)
	}
	for i := 0; i < 40; i++ {
		if err := <-done; err != nil {
			t.Fatal(err)
		}
	}
	reloaded, err := loadConfig(b.opts.FS, b.opts.DataDir)
	if err != nil {
		t.Fatal(err)
	}
	if len(reloaded.topics) != len(b.cfg.topics) || len(reloaded.groups) != len(b.cfg.groups) {
		t.Fatalf("reloaded %d topics %d groups, want %d and %d", len(reloaded.topics), len(reloaded.groups), len(b.cfg.topics), len(b.cfg.groups))
	}
}
