package interop_test

import (
	"fmt"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/apache/rocketmq-client-go/v2/consumer"
	"github.com/apache/rocketmq-client-go/v2/primitive"

	tideadmin "github.com/tide-run/tide/mq/admin"
	"github.com/tide-run/tide/mq/mqmeta"
)

// The timer scenario: RocketMQ 5's arbitrary-time messages over the 4.x protocol (TIMER_DELAY_SEC,
// TIMER_DELAY_MS, TIMER_DELIVER_MS: what Java's Message.setDelayTimeSec / setDelayTimeMs / setDeliverTimeMs set),
// on a topic whose message.type is DELAY. Both brokers refuse a time beyond 3 days with the same remark, take a
// normal message on the DELAY topic (the broker does not check types; only the 5.x proxy does), and deliver each
// timer message not before its time (Apache to the next second, tide to the millisecond). About 2.5 s.
const timerWant = "beyond 3 days: refused (max delay 259200000ms); a normal message on a DELAY topic: SEND_OK; 3 timer messages received, none before its time"

func init() {
	scenarios = append(scenarios, scenario{name: "timer", want: timerWant, run: goTimer})
	topicSetup["timer"] = func(t *testing.T, tg target, topic string) { setTopicType(t, tg, topic, 1, mqmeta.MessageTypeDelay) }
}

// setTopicType sets topic's message.type as mqadmin's `updateTopic -a +message.type=...` does and checks that the
// broker's GET_TOPIC_CONFIG reports it.
func setTopicType(t *testing.T, tg target, topic string, queues int, typ string) {
	t.Helper()
	c, err := tideadmin.Dial(ctx(t), tg.nameServer)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := c.CreateTopicWithAttributes(ctx(t), topic, queues, "+"+mqmeta.AttrMessageType+"="+typ); err != nil {
		t.Fatalf("%s: set message.type: %v", tg.name, err)
	}
	tc, err := c.TopicConfig(ctx(t), topic)
	if err != nil || tc.MessageType() != typ {
		t.Errorf("%s: GET_TOPIC_CONFIG after setting message.type=%s: %+v %v", tg.name, typ, tc, err)
	}
}

func goTimer(t *testing.T, tg target, id string) string {
	topic := createTopic(t, tg, id, 1)
	setTopicType(t, tg, topic, 1, mqmeta.MessageTypeDelay)
	p := newProducer(t, tg, id)
	far := primitive.NewMessage(topic, []byte("far"))
	far.WithProperty("TIMER_DELAY_SEC", strconv.Itoa(3*24*3600+1))
	refused := "accepted"
	if _, err := p.SendSync(ctx(t), far); err != nil {
		refused = "error: " + err.Error()
		if strings.Contains(err.Error(), "max delay 259200000ms") {
			refused = "refused (max delay 259200000ms)"
		}
	}
	normal := "error"
	if r, err := p.SendSync(ctx(t), primitive.NewMessage(topic, []byte("now"))); err == nil {
		normal = statusName(r.Status)
	}
	due := map[string]time.Time{}
	for _, s := range []struct {
		body, prop string
		delay      time.Duration
	}{{"sec", "TIMER_DELAY_SEC", time.Second}, {"ms", "TIMER_DELAY_MS", 1500 * time.Millisecond}, {"abs", "TIMER_DELIVER_MS", 2 * time.Second}} {
		m := primitive.NewMessage(topic, []byte(s.body))
		// The broker reads a relative delay from when it receives the send, at or after this, in whole milliseconds:
		// truncated here too, or a message delivered at its due millisecond looks up to 1 ms early.
		before := time.Now().Truncate(time.Millisecond)
		switch s.prop {
		case "TIMER_DELAY_SEC":
			m.WithProperty(s.prop, strconv.Itoa(int(s.delay/time.Second)))
		case "TIMER_DELAY_MS":
			m.WithProperty(s.prop, strconv.FormatInt(s.delay.Milliseconds(), 10))
		default:
			m.WithProperty(s.prop, strconv.FormatInt(before.Add(s.delay).UnixMilli(), 10))
		}
		due[s.body] = before.Add(s.delay)
		if _, err := p.SendSync(ctx(t), m); err != nil {
			return fmt.Sprintf("send %s: %v", s.body, err)
		}
	}
	var mu sync.Mutex
	early := []string{}
	got := consumeAll(t, tg, id, topic, consumer.MessageSelector{}, 4, func(m *primitive.MessageExt) {
		mu.Lock()
		defer mu.Unlock()
		if at, ok := due[string(m.Body)]; ok && time.Now().Before(at) {
			early = append(early, fmt.Sprintf("%s %v early", m.Body, at.Sub(time.Now()).Round(time.Millisecond)))
		}
	})
	mu.Lock()
	defer mu.Unlock()
	timers := 0
	for b := range due {
		if got[b] {
			timers++
		}
	}
	verdict := "none before its time"
	if len(early) > 0 {
		verdict = "delivered early: " + strings.Join(early, ", ")
	}
	if got["far"] {
		verdict += "; the refused one arrived"
	}
	return fmt.Sprintf("beyond 3 days: %s; a normal message on a DELAY topic: %s; %d timer messages received, %s", refused, normal, timers, verdict)
}
