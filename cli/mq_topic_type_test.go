package cli

import (
	"context"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/tide-run/tide/mq/admin"
	"github.com/tide-run/tide/mq/mqmeta"
)

// TestMQTopicCreateType: --type sets the message.type attribute, which the broker keeps with the topic, returns in
// its topic configs (GET_ALL_TOPIC_CONFIG, GET_TOPIC_CONFIG) and the list shows; a bad type is a usage error and
// nothing is sent; re-creating without --type keeps it.
func TestMQTopicCreateType(t *testing.T) {
	srv := startMQ(t)
	if out := mustMQ(t, srv, "", "topic", "create", "reminders", "--queues", "2", "--type", "delay"); !strings.Contains(out, "topic/reminders created (2 queues, type DELAY)") {
		t.Fatalf("create: %q", out)
	}
	mustMQ(t, srv, "", "topic", "create", "plain")
	list := rows(t, mustMQ(t, srv, "", "topic", "list"))
	for name, want := range map[string]string{"reminders": "DELAY", "plain": "NORMAL"} {
		i := slices.IndexFunc(list, func(r map[string]string) bool { return r["NAME"] == name })
		if i < 0 || list[i]["TYPE"] != want {
			t.Fatalf("list: %s type want %s: %v", name, want, list)
		}
	}
	if r := runMQ(t, srv, "", "topic", "create", "x", "--type", "MIXED"); r.code != 2 || !strings.Contains(r.errOut, "want one of NORMAL, FIFO, DELAY, TRANSACTION") {
		t.Fatalf("--type MIXED: exit %d %q", r.code, r.errOut)
	}
	mustMQ(t, srv, "", "topic", "create", "reminders", "--queues", "4") // an update without --type
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := admin.Dial(ctx, srv.NameServerAddr())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	tc, err := c.TopicConfig(ctx, "reminders")
	if err != nil || tc.WriteQueueNums != 4 || tc.Attributes[mqmeta.AttrMessageType] != "DELAY" {
		t.Fatalf("GET_TOPIC_CONFIG: %+v %v", tc, err)
	}
	all, err := c.Topics(ctx)
	if err != nil || all["reminders"].MessageType() != "DELAY" {
		t.Fatalf("GET_ALL_TOPIC_CONFIG: %+v %v", all["reminders"], err)
	}
	if _, err := c.TopicConfig(ctx, "nope"); err == nil || !strings.Contains(err.Error(), "No topic in this broker") {
		t.Fatalf("unknown topic: %v", err)
	}
}
