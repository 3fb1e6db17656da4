package mq_test

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/apache/rocketmq-client-go/v2/consumer"
	"github.com/apache/rocketmq-client-go/v2/primitive"

	"github.com/tide-run/tide/mq"
)

func shortLevels(d time.Duration) []time.Duration {
	l := make([]time.Duration, 18)
	for i := range l {
		l[i] = d
	}
	return l
}

func TestRetryThenDeadLetter(t *testing.T) {
	srv := start(t, mq.Options{DelayLevels: shortLevels(100 * time.Millisecond)})
	createTopic(t, srv, "work", 1)
	p := newProducer(t, srv)
	r, err := p.SendSync(context.Background(), primitive.NewMessage("work", []byte("poison")).WithKeys([]string{"k1"}))
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var attempts []int32
	var wrong []string // the callback may outlive the test, so it reports here rather than through t
	c := newPushConsumer(t, srv, "g-retry", consumer.WithConsumeFromWhere(consumer.ConsumeFromFirstOffset), consumer.WithMaxReconsumeTimes(2))
	c.Subscribe("work", consumer.MessageSelector{}, func(_ context.Context, msgs ...*primitive.MessageExt) (consumer.ConsumeResult, error) {
		mu.Lock()
		defer mu.Unlock()
		for _, m := range msgs {
			if m.Topic != "work" || string(m.Body) != "poison" {
				wrong = append(wrong, fmt.Sprintf("topic %q body %q", m.Topic, m.Body))
			}
			attempts = append(attempts, m.ReconsumeTimes)
		}
		return consumer.ConsumeRetryLater, nil
	})
	if err := c.Start(); err != nil {
		t.Fatal(err)
	}
	defer c.Shutdown()
	waitFor(t, 30*time.Second, "three attempts", func() bool { mu.Lock(); defer mu.Unlock(); return len(attempts) >= 3 })

	dlq := newCollector()
	var dlqMsg *primitive.MessageExt
	var dmu sync.Mutex
	d := newPushConsumer(t, srv, "g-dlq-reader", consumer.WithConsumeFromWhere(consumer.ConsumeFromFirstOffset))
	d.Subscribe("%DLQ%g-retry", consumer.MessageSelector{}, func(ctx context.Context, msgs ...*primitive.MessageExt) (consumer.ConsumeResult, error) {
		dmu.Lock()
		dlqMsg = msgs[0]
		dmu.Unlock()
		return dlq.fn(ctx, msgs...)
	})
	if err := d.Start(); err != nil {
		t.Fatal(err)
	}
	defer d.Shutdown()
	waitFor(t, 30*time.Second, "the dead letter", func() bool { return dlq.has("poison") })
	mu.Lock()
	if len(wrong) > 0 {
		t.Fatalf("retries delivered %v", wrong)
	}
	if len(attempts) != 3 || attempts[0] != 0 || attempts[1] != 1 || attempts[2] != 2 {
		t.Fatalf("attempts (reconsume times) %v, want [0 1 2]", attempts)
	}
	mu.Unlock()
	dmu.Lock()
	defer dmu.Unlock()
	if dlqMsg.GetProperty("RETRY_TOPIC") != "work" || dlqMsg.GetKeys() != "k1" || dlqMsg.MsgId != r.MsgID {
		t.Fatalf("dead letter lost its identity: props %v msgId %s want %s", dlqMsg.GetProperties(), dlqMsg.MsgId, r.MsgID)
	}
	if !strings.HasPrefix(dlqMsg.Topic, "%DLQ%") {
		t.Fatalf("dead letter topic %q", dlqMsg.Topic)
	}
}

func TestDelayLevelsRealTime(t *testing.T) {
	t.Parallel() // mostly waiting on the client's own timers
	srv := start(t, mq.Options{})
	createTopic(t, srv, "later", 1)
	var mu sync.Mutex
	arrived := map[string]time.Time{}
	scheduled := map[string]time.Duration{} // delivery store time minus born time: the broker's own accuracy
	c := newPushConsumer(t, srv, "g-later", consumer.WithConsumeFromWhere(consumer.ConsumeFromFirstOffset))
	c.Subscribe("later", consumer.MessageSelector{}, func(_ context.Context, msgs ...*primitive.MessageExt) (consumer.ConsumeResult, error) {
		mu.Lock()
		defer mu.Unlock()
		for _, m := range msgs {
			arrived[string(m.Body)] = time.Now()
			scheduled[string(m.Body)] = time.Duration(m.StoreTimestamp-m.BornTimestamp) * time.Millisecond
		}
		return consumer.ConsumeSuccess, nil
	})
	if err := c.Start(); err != nil {
		t.Fatal(err)
	}
	defer c.Shutdown()
	settle(t, srv, "g-later", 1)
	p := newProducer(t, srv)
	sent := time.Now()
	for _, lv := range []int{1, 2} {
		m := primitive.NewMessage("later", []byte{byte('0' + lv)})
		m.WithDelayTimeLevel(lv)
		if _, err := p.SendSync(context.Background(), m); err != nil {
			t.Fatal(err)
		}
	}
	waitFor(t, 10*time.Second, "both delayed messages", func() bool { mu.Lock(); defer mu.Unlock(); return len(arrived) == 2 })
	mu.Lock()
	defer mu.Unlock()
	for body, want := range map[string]time.Duration{"1": time.Second, "2": 5 * time.Second} {
		if got := scheduled[body]; got < want || got > want+time.Second {
			t.Errorf("level %s re-put %v after it was sent, want %v (+1s)", body, got, want)
		}
		// End to end, including the consumer's pull and the test's own scheduling on a busy machine.
		if got := arrived[body].Sub(sent); got < want-50*time.Millisecond || got > want+3*time.Second {
			t.Errorf("level %s consumed after %v, want %v", body, got, want)
		}
	}
}
