package interop_test

import (
	"bytes"
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/apache/rocketmq-client-go/v2/consumer"
	"github.com/apache/rocketmq-client-go/v2/primitive"

	"github.com/tide-run/tide/cli"
)

// tideMQ runs every `tide mq` command against each target, in-process through the CLI's command tree, and checks
// what each one reports: topics, sends, consumption with the group's offsets, lag per queue (Apache's broker answers
// GET_CONSUME_STATS in fastjson's layout, not tide's), reset-offset, and the dead-letter list and replay.
func tideMQ(t *testing.T, targets []target) {
	for _, tg := range targets {
		t.Run(tg.name, func(t *testing.T) {
			t.Parallel()
			id := fmt.Sprintf("%s%d", tg.name, time.Now().UnixNano()%1e6)
			topic, group := "mq-"+id, "g-"+id
			try := func(args ...string) (string, error) {
				var out, errOut bytes.Buffer
				cmd := cli.NewRootCommand(strings.NewReader(""), &out, &errOut)
				cmd.SetArgs(append([]string{"mq", "--namesrv", tg.nameServer}, args...))
				err := cmd.Execute()
				return out.String() + errOut.String(), err
			}
			run := func(args ...string) string {
				t.Helper()
				out, err := try(args...)
				if err != nil {
					t.Fatalf("tide mq %s against %s: %v\n%s", strings.Join(args, " "), tg.name, err, out)
				}
				return out
			}
			mustContain := func(what, out string, subs ...string) {
				t.Helper()
				for _, s := range subs {
					if !strings.Contains(out, s) {
						t.Fatalf("%s against %s: output lacks %q:\n%s", what, tg.name, s, out)
					}
				}
			}

			run("topic", "create", topic, "--queues", "2")
			waitRoute(t, tg, topic)
			mustContain("topic list", run("topic", "list"), topic)
			sent := run("send", topic, "first-body", "--tag", "created", "--keys", "order-1")
			mustContain("send", sent, topic)
			run("send", topic, "second-body")
			// query by key (Apache's broker indexes a message a moment after answering its send), by the broker's
			// offset message id and by the producer's message id.
			ids := strings.Fields(strings.Split(strings.TrimSpace(sent), "\n")[1]) // MSGID TOPIC QUEUE OFFSET OFFSETMSGID
			var out string
			eventually(func() bool {
				out, _ = try("query", "--key", "order-1", "--topic", topic)
				return strings.Contains(out, "first-body")
			})
			mustContain("query --key", out, "first-body", "Keys:", "order-1", "TAGS=created")
			mustContain("query --id OFFSETMSGID", run("query", "--id", ids[4]), "first-body", ids[0])
			mustContain("query --id MSGID", run("query", "--id", ids[0], "--topic", topic), "first-body", ids[4])
			mustContain("query --topic --from", run("query", "--topic", topic, "--from", "1h"), "first-body", "second-body")
			// Nothing traced it: trace still finds the message and says so.
			mustContain("trace", run("trace", ids[4]), "message "+ids[0], "topic "+topic, "no trace records")
			mustContain("consume", run("consume", topic, "--group", group, "--from", "first", "--max", "10"), "first-body", "second-body", "order-1")
			out = run("groups", group)
			mustContain("groups G", out, topic, "Total lag: 0")
			mustContain("groups", run("groups"), group)
			mustContain("reset-offset", run("reset-offset", "--group", group, "--topic", topic, "--to", "first"), topic)
			mustContain("groups G after reset", run("groups", group), "Total lag: 2")

			// A dead letter: a consumer that always asks for a retry, with one reconsume allowed.
			dlqGroup := "d-" + id
			var mu sync.Mutex
			attempts := 0
			c := newPushConsumer(t, tg, dlqGroup, consumer.WithMaxReconsumeTimes(1))
			if err := c.Subscribe(topic, consumer.MessageSelector{Type: consumer.TAG, Expression: "created"},
				func(_ context.Context, msgs ...*primitive.MessageExt) (consumer.ConsumeResult, error) {
					mu.Lock()
					attempts += len(msgs)
					mu.Unlock()
					return consumer.ConsumeRetryLater, nil
				}); err != nil {
				t.Fatal(err)
			}
			if err := c.Start(); err != nil {
				t.Fatal(err)
			}
			waitRoute(t, tg, "%DLQ%"+dlqGroup)
			deadline := time.Now().Add(90 * time.Second)
			for {
				out := run("dlq", "--group", dlqGroup)
				if strings.Contains(out, "first-body") || strings.Contains(out, topic) {
					break
				}
				if time.Now().After(deadline) {
					t.Fatalf("dlq against %s: no dead letter after 90 s:\n%s", tg.name, out)
				}
				time.Sleep(time.Second)
			}
			_ = c.Shutdown()
			mustContain("dlq replay", run("dlq", "replay", "--group", dlqGroup), topic)
			// The replayed message is back on its topic: a fresh group reads it there a second time.
			out = run("consume", topic, "--group", "r-"+id, "--from", "first", "--max", "10")
			if n := strings.Count(out, "first-body"); n != 2 {
				t.Fatalf("after the replay against %s, %q appears %d times on %s, want 2 (original and replay):\n%s", tg.name, "first-body", n, topic, out)
			}
			mustContain("topic delete", run("topic", "delete", topic), "deleted")
		})
	}
}
