package interop_test

import (
	"context"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/apache/rocketmq-client-go/v2/primitive"

	"github.com/tide-run/tide/mq/admin"
)

// The official Go client v2.1.2 has no query or view calls (its admin API lacks them), so the Go side of the
// "query by key" and "view by id" scenarios sends with the official client and asks with tide's protocol-level
// admin client (mq/admin: QUERY_MESSAGE and VIEW_MESSAGE_BY_ID with Java's headers); the Java side uses the Java
// client's own queryMessage and viewMessage.
func init() {
	scenarios = append(scenarios,
		scenario{name: "query by key", want: "by key qk: [q1 q2], by key nope: none", run: queryByKeyScenario},
		scenario{name: "view by id", want: "by offset id: v1 in the topic, by message id: v1", run: viewByIDScenario},
	)
}

func dialAdmin(t *testing.T, tg target) *admin.Client {
	t.Helper()
	c, err := admin.Dial(ctx(t), tg.nameServer)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// eventually retries fn for up to 10 s: Apache's broker indexes a message a moment after it answered the send.
func eventually(fn func() bool) {
	for deadline := time.Now().Add(10 * time.Second); !fn() && time.Now().Before(deadline); {
		time.Sleep(100 * time.Millisecond)
	}
}

func queryByKeyScenario(t *testing.T, tg target, id string) string {
	topic := createTopic(t, tg, id, 1)
	p := newProducer(t, tg, id)
	for _, m := range []struct {
		body string
		keys []string
	}{{"q1", []string{"qk"}}, {"q2", []string{"x", "qk"}}, {"q3", []string{"qkk"}}} {
		if _, err := p.SendSync(ctx(t), primitive.NewMessage(topic, []byte(m.body)).WithKeys(m.keys)); err != nil {
			t.Fatalf("send: %v", err)
		}
	}
	c := dialAdmin(t, tg)
	var bodies []string
	eventually(func() bool {
		msgs, err := c.QueryByKey(ctx(t), topic, "qk", 32, time.Time{}, time.Time{})
		if err != nil {
			t.Fatalf("query: %v", err)
		}
		bodies = bodies[:0]
		for _, m := range msgs {
			bodies = append(bodies, string(m.Body))
		}
		return len(bodies) >= 2
	})
	sort.Strings(bodies)
	none, err := c.QueryByKey(ctx(t), topic, "nope", 32, time.Time{}, time.Time{})
	if err != nil {
		t.Fatalf("query nope: %v", err)
	}
	nope := "none"
	if len(none) > 0 {
		nope = "found " + string(none[0].Body)
	}
	return "by key qk: [" + strings.Join(bodies, " ") + "], by key nope: " + nope
}

func viewByIDScenario(t *testing.T, tg target, id string) string {
	topic := createTopic(t, tg, id, 1)
	p := newProducer(t, tg, id)
	r, err := p.SendSync(ctx(t), primitive.NewMessage(topic, []byte("v1")))
	if err != nil {
		t.Fatalf("send: %v", err)
	}
	c := dialAdmin(t, tg)
	byOffset := "nothing"
	if m, err := c.ViewMessage(context.Background(), r.OffsetMsgID); err != nil {
		byOffset = "error " + err.Error()
	} else if m.Topic == topic {
		byOffset = string(m.Body) + " in the topic"
	} else {
		byOffset = string(m.Body) + " in " + m.Topic
	}
	byID := "nothing"
	eventually(func() bool {
		msgs, err := c.QueryByUniqKey(ctx(t), topic, r.MsgID, time.Time{}, time.Time{})
		if err != nil {
			t.Fatalf("query by id: %v", err)
		}
		if len(msgs) > 0 {
			byID = string(msgs[0].Body)
		}
		return len(msgs) > 0
	})
	return "by offset id: " + byOffset + ", by message id: " + byID
}
