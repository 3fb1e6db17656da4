package broker

import (
	"strconv"
	"testing"
	"time"

	clocktesting "k8s.io/utils/clock/testing"

	"github.com/tide-run/tide/mq/message"
	"github.com/tide-run/tide/mq/mqmeta"
)

func TestTimerMessagesAnyDueTimeWithFakeClock(t *testing.T) {
	start := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	fc := clocktesting.NewFakeClock(start)
	b := newTestBroker(t, fc)
	if err := b.CreateTopic(mqmeta.TopicConfig{TopicName: "t", ReadQueueNums: 1, WriteQueueNums: 1}); err != nil {
		t.Fatal(err)
	}
	// Stored out of due order: 7s, 2s (relative), 4.5s (absolute), 3 days + 1s (refused).
	props := []map[string]string{
		{message.PropTimerDelaySec: "7"},
		{message.PropTimerDelayMS: "2000"},
		{message.PropTimerDeliverMS: strconv.FormatInt(start.Add(4500*time.Millisecond).UnixMilli(), 10)},
	}
	for i, p := range props {
		m := &message.Message{Topic: "t", Body: []byte{byte(i)}, Properties: message.FormatProperties(p)}
		if err := b.applyTimer(m); err != nil || m.Topic != mqmeta.TimerTopic {
			t.Fatalf("message %d: %v, topic %s", i, err, m.Topic)
		}
		if _, _, err := b.st.Put([]*message.Message{m}); err != nil {
			t.Fatal(err)
		}
	}
	tooFar := &message.Message{Topic: "t", Properties: message.FormatProperties(map[string]string{message.PropTimerDelaySec: strconv.Itoa(3*24*3600 + 1)})}
	if err := b.applyTimer(tooFar); err == nil {
		t.Fatal("a timer beyond 3 days was accepted")
	}
	order := []byte{}
	for _, at := range []time.Duration{time.Second, 2 * time.Second, 4 * time.Second, 4500 * time.Millisecond, 6 * time.Second, 7 * time.Second} {
		b.timers.deliverDue(start.Add(at))
		for off := int64(len(order)); off < b.st.MaxOffset("t", 0); off++ {
			m, err := b.st.Entry("t", 0, off)
			if err != nil {
				t.Fatal(err)
			}
			if message.Property(m.Properties, propTimerOut) != "" || message.Property(m.Properties, message.PropTimerDelaySec) != "" {
				t.Fatalf("timer properties left on the delivered message: %q", m.Properties)
			}
			order = append(order, m.Body[0])
		}
	}
	if string(order) != string([]byte{1, 2, 0}) {
		t.Fatalf("delivered in order %v, want [1 2 0] (by due time)", order)
	}
	if p, _ := b.cfg.offset(mqmeta.TimerTopic, timerGroup, 0); p != 3 {
		t.Fatalf("timer progress %d, want 3", p)
	}
}
