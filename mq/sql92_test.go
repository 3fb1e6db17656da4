package mq_test

import (
	"context"
	"fmt"
	"sort"
	"strconv"
	"testing"
	"time"

	"github.com/apache/rocketmq-client-go/v2/consumer"
	"github.com/apache/rocketmq-client-go/v2/primitive"

	"github.com/tide-run/tide/mq"
	"github.com/tide-run/tide/mq/message"
	"github.com/tide-run/tide/mq/remoting"
)

// sendProps sends one message per value of property a ("" sends none) and returns the bodies.
func sendProps(t *testing.T, srv *mq.Server, topic string, values ...string) {
	t.Helper()
	p := newProducer(t, srv)
	for i, v := range values {
		m := primitive.NewMessage(topic, []byte(fmt.Sprintf("m%d-a=%s", i, v))).WithTag("T")
		if v != "" {
			m.WithProperty("a", v)
		}
		if _, err := p.SendSync(context.Background(), m); err != nil {
			t.Fatal(err)
		}
	}
}

// TestSQL92PushConsumer: the official push consumer with a SQL92 selector gets exactly the matching messages,
// and non-matching ones (leading, interleaved and trailing) do not hold its offset back.
func TestSQL92PushConsumer(t *testing.T) {
	srv := start(t, mq.Options{})
	createTopic(t, srv, "sqlpush", 1)
	values := []string{"9", "8", "0", "", "x", "3", "4", "2.5", "1", "-1", "7", "9"}
	sendProps(t, srv, "sqlpush", values...)
	want := []string{"m2-a=0", "m5-a=3", "m8-a=1"} // "x" and "2.5" cannot be read as Integer: not matched, as in Java

	c := newPushConsumer(t, srv, "g-sqlpush", consumer.WithConsumeFromWhere(consumer.ConsumeFromFirstOffset))
	rec := consume(t, c, "sqlpush", consumer.MessageSelector{Type: consumer.SQL92, Expression: "a BETWEEN 0 AND 3"})

	committed := func() int64 {
		total := int64(0)
		for _, q := range srv.ConsumeStats("g-sqlpush", "sqlpush") {
			total += q.ConsumerOffset
		}
		return total
	}
	waitFor(t, 20*time.Second, "the first matching messages", func() bool { return rec.count() >= len(want) })
	// A later match after more non-matching messages: the consumer gets it, and its offset, persisted on
	// shutdown, covers every message before it. (Trailing non-matching entries are passed on the client's next
	// pull answer; TestSQL92RawPull checks the broker's nextBeginOffset for them.)
	sendProps(t, srv, "sqlpush", "5", "2")
	want = append(want, "m1-a=2")
	waitFor(t, 20*time.Second, "the later matching message", func() bool { return rec.count() >= len(want) })
	c.Shutdown()
	waitFor(t, 10*time.Second, "the persisted offset", func() bool { return committed() == int64(len(values)+2) })
	var got []string
	for _, m := range rec.snapshot() {
		got = append(got, string(m.Body))
	}
	sort.Strings(got)
	sort.Strings(want)
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("received %v, want %v", got, want)
	}
}

// TestSQL92RawPull: a pull carrying its own SQL92 subscription is filtered on properties and TAGS, and
// nextBeginOffset moves past the entries it skipped.
func TestSQL92RawPull(t *testing.T) {
	srv := start(t, mq.Options{})
	createTopic(t, srv, "sqlraw", 1)
	sendProps(t, srv, "sqlraw", "1", "5", "", "2", "6")
	raw := dial(t, srv.BrokerAddr())
	pull := func(offset int, expr string) *remoting.Command {
		return invoke(t, raw, remoting.NewRequest(remoting.PullMessage, map[string]string{"consumerGroup": "g-raw", "topic": "sqlraw",
			"queueId": "0", "queueOffset": strconv.Itoa(offset), "maxMsgNums": "32", "sysFlag": "4", "subscription": expr,
			"expressionType": "SQL92"}, nil))
	}
	r := pull(0, "TAGS = 'T' AND (a < 2 OR a IS NULL)")
	if r.Code != remoting.Success || r.ExtFields["nextBeginOffset"] != "5" {
		t.Fatalf("pull: code %d next %s: %s", r.Code, r.ExtFields["nextBeginOffset"], r.Remark)
	}
	var bodies []string
	for b := r.Body; len(b) > 0; {
		m, n, err := message.Decode(b)
		if err != nil {
			t.Fatal(err)
		}
		bodies = append(bodies, string(m.Body))
		b = b[n:]
	}
	if fmt.Sprint(bodies) != "[m0-a=1 m2-a=]" {
		t.Fatalf("bodies %v", bodies)
	}
	// Nothing matches from offset 3: the answer is "no matched message" with the offset moved to the end.
	if r := pull(3, "a > 100"); r.Code != remoting.PullRetryImmediately || r.ExtFields["nextBeginOffset"] != "5" {
		t.Fatalf("unmatched pull: code %d next %s", r.Code, r.ExtFields["nextBeginOffset"])
	}
	// A bad expression is refused with SUBSCRIPTION_PARSE_FAILED, naming the position.
	if r := pull(0, "a BETWEEN 1"); r.Code != remoting.SubscriptionParseFailed || r.Remark == "" {
		t.Fatalf("bad expression: code %d %q", r.Code, r.Remark)
	} else {
		t.Logf("remark: %s", r.Remark)
	}
}

// TestSQL92InvalidHeartbeatSubscription: a push consumer subscribed with an invalid selector gets
// SUBSCRIPTION_PARSE_FAILED on its pulls instead of every message.
func TestSQL92InvalidHeartbeatSubscription(t *testing.T) {
	srv := start(t, mq.Options{})
	createTopic(t, srv, "sqlbad", 1)
	sendProps(t, srv, "sqlbad", "1")
	c := newPushConsumer(t, srv, "g-sqlbad", consumer.WithConsumeFromWhere(consumer.ConsumeFromFirstOffset))
	rec := consume(t, c, "sqlbad", consumer.MessageSelector{Type: consumer.SQL92, Expression: "a >> 1"})
	raw := dial(t, srv.BrokerAddr())
	waitFor(t, 20*time.Second, "the group's pull to be refused", func() bool {
		r := invoke(t, raw, remoting.NewRequest(remoting.PullMessage, map[string]string{"consumerGroup": "g-sqlbad", "topic": "sqlbad",
			"queueId": "0", "queueOffset": "0", "maxMsgNums": "32", "sysFlag": "0", "expressionType": "TAG"}, nil))
		return r.Code == remoting.SubscriptionParseFailed
	})
	if delivered := rec.count(); delivered != 0 {
		t.Fatalf("an invalid selector delivered %d messages", delivered)
	}
}
