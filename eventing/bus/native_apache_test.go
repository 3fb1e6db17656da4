package bus

import (
	"context"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tide-run/tide/internal/apachetest"
	"github.com/tide-run/tide/mq/admin"
	"github.com/tide-run/tide/mq/message"
)

// TestNativeOnApache runs the native bus against Apache RocketMQ 5.5 (internal/apachetest; skipped with one line
// without a JDK and Maven, failing under CI=true): a topic auto-created by EnsureTopic, batched sends with keys,
// exact delivery counts with Retry (through %RETRY%) and DeadLetter (to %DLQ%), an ordered subscription keeping
// each key's order with an in-place retry, Close committing the offsets and unregistering the member at once, and
// (with TIDE_TEST_APACHE_RESTART=1) a restart of the whole cluster under a running producer and subscription.
func TestNativeOnApache(t *testing.T) {
	levels := strings.TrimSpace(strings.Repeat("1s ", 18))
	began := time.Now()
	apache := apachetest.StartWith(t, apachetest.Options{BrokerConf: []string{"messageDelayLevel=" + levels}})
	t.Logf("Apache RocketMQ started in %v", time.Since(began).Round(time.Millisecond))
	began = time.Now()
	defer func() { t.Logf("the test itself took %v", time.Since(began).Round(time.Millisecond)) }()
	b := newNativeOn(t, apache.NameServer, RocketMQOptions{})
	ctx := t.Context()
	ac, err := admin.Dial(ctx, apache.NameServer)
	if err != nil {
		t.Fatal(err)
	}
	defer ac.Close()

	const topic, group = "native-apache", "native-apache-g"
	c := newCounter()
	sub, err := b.Subscribe(ctx, SubscribeOptions{Topic: topic, Group: group, From: FromFirst, MaxReconsumeTimes: 1}, func(_ context.Context, m *Message) Action {
		n := c.note(m)
		if m.Topic != topic {
			t.Errorf("consumed with topic %q, want %s", m.Topic, topic)
		}
		i, _ := strconv.Atoi(m.Properties["id"])
		switch {
		case i%3 == 1 && n == 1:
			return Retry
		case i%3 == 2:
			return DeadLetter
		}
		return Ack
	})
	if err != nil {
		t.Fatal(err)
	}
	const n = 60
	sendN(t, b, topic, 0, n, 8)
	want := func(i int) int { return []int{1, 2, 1}[i%3] }
	waitUntil(t, "every delivery on Apache", func() bool {
		for i := range n {
			if c.count(strconv.Itoa(i)) < want(i) {
				return false
			}
		}
		return true
	})
	var dead []*message.Message
	waitUntil(t, "dead letters on Apache", func() bool {
		dead, _ = ac.DeadLetters(ctx, group, 100)
		return len(dead) >= n/3
	})
	time.Sleep(1500 * time.Millisecond) // longer than a redelivery's delay: nothing more may come
	for i := range n {
		if got := c.count(strconv.Itoa(i)); got != want(i) {
			t.Errorf("message %d delivered %d times, want %d", i, got, want(i))
		}
	}
	if len(dead) != n/3 {
		t.Errorf("%d dead letters, want %d", len(dead), n/3)
	}
	c.mu.Lock()
	for k, qs := range c.by {
		if len(qs) != 1 {
			t.Errorf("key %s in queues %v, want one", k, qs)
		}
	}
	c.mu.Unlock()
	if err := sub.Close(); err != nil {
		t.Fatal(err)
	}
	if ids, _ := ac.ConsumerIDs(ctx, group); len(ids) != 0 {
		t.Errorf("members listed right after Close: %v (UNREGISTER_CLIENT)", ids)
	}
	stats, err := ac.ConsumeStats(ctx, group, topic)
	if err != nil {
		t.Fatal(err)
	}
	for _, st := range stats {
		if st.Topic == topic && st.ConsumerOffset != st.BrokerOffset {
			t.Errorf("queue %d: committed %d, end %d after Close", st.QueueID, st.ConsumerOffset, st.BrokerOffset)
		}
	}

	// Ordered.
	oc := newCounter()
	var mu sync.Mutex
	var reconsume []int32
	osub, err := b.Subscribe(ctx, SubscribeOptions{Topic: "native-apache-ord", Group: "native-apache-ord-g", From: FromFirst,
		Ordered: true, OrderedRetryPause: 20 * time.Millisecond}, func(_ context.Context, m *Message) Action {
		k := oc.note(m)
		if m.Properties["id"] == "4" {
			mu.Lock()
			reconsume = append(reconsume, m.ReconsumeTimes)
			mu.Unlock()
			if k == 1 {
				return Retry
			}
		}
		return Ack
	})
	if err != nil {
		t.Fatal(err)
	}
	defer osub.Close()
	for i := range 30 {
		id := strconv.Itoa(i)
		key := "k" + strconv.Itoa(i%3)
		if err := b.Send(ctx, &Message{Topic: "native-apache-ord", Body: []byte(id), ShardingKey: key,
			Properties: map[string]string{"id": id, "key": key}}); err != nil {
			t.Fatal(err)
		}
	}
	waitUntil(t, "ordered consumption on Apache", func() bool { return oc.distinct() == 30 })
	oc.mu.Lock()
	for k, ids := range oc.order {
		last := -1
		for _, id := range ids {
			i, _ := strconv.Atoi(id)
			if i < last {
				t.Errorf("key %s out of order: %v", k, ids)
				break
			}
			last = i
		}
	}
	oc.mu.Unlock()
	mu.Lock()
	if len(reconsume) != 2 || reconsume[1] != 1 {
		t.Errorf("message 4 reconsume times %v, want [0 1]", reconsume)
	}
	mu.Unlock()

	// The whole cluster restarts: the producer and the running ordered subscription go on by themselves. A restart
	// costs ~20 s of Apache start-up on a 2-core machine, over this package's CI budget: it runs with
	// TIDE_TEST_APACHE_RESTART=1 (passed 2026-12-08, Apache restarted in 21.6 s).
	if os.Getenv("TIDE_TEST_APACHE_RESTART") != "1" {
		t.Log("not restarting Apache (set TIDE_TEST_APACHE_RESTART=1 to)")
		return
	}
	restarted := time.Now()
	if err := apache.Restart(); err != nil {
		t.Fatal(err)
	}
	t.Logf("Apache RocketMQ restarted in %v", time.Since(restarted).Round(time.Millisecond))
	deadline := time.Now().Add(30 * time.Second)
	for i := 30; i < 40; {
		id := strconv.Itoa(i)
		key := "k" + strconv.Itoa(i%3)
		err := b.Send(ctx, &Message{Topic: "native-apache-ord", Body: []byte(id), ShardingKey: key, Properties: map[string]string{"id": id, "key": key}})
		if err == nil {
			i++
			continue
		}
		if time.Now().After(deadline) {
			t.Fatalf("send after Apache's restart: %v", err)
		}
		time.Sleep(100 * time.Millisecond)
	}
	waitUntil(t, "consumption after Apache's restart", func() bool { return oc.distinct() == 40 })
}
