package cli

import (
	"slices"
	"strings"
	"testing"
)

// --type sets the topic's message.type attribute, which RocketMQ 5 clients are checked against; listing shows it
// and a later create without --type keeps it.
func TestMQTopicCreateType(t *testing.T) {
	srv := startMQ(t)
	mustMQ(t, srv, "", "topic", "create", "payments", "--type", "fifo", "--queues", "2")
	mustMQ(t, srv, "", "topic", "create", "plain")
	list := rows(t, mustMQ(t, srv, "", "topic", "list"))
	typeOf := func(name string) string {
		i := slices.IndexFunc(list, func(r map[string]string) bool { return r["NAME"] == name })
		if i < 0 {
			t.Fatalf("%s not listed: %v", name, list)
		}
		return list[i]["TYPE"]
	}
	if typeOf("payments") != "FIFO" || typeOf("plain") != "NORMAL" {
		t.Fatalf("types: %v", list)
	}
	mustMQ(t, srv, "", "topic", "create", "payments", "--queues", "4")
	if tc, _ := srv.Topic("payments"); tc.MessageType() != "FIFO" || tc.WriteQueueNums != 4 {
		t.Fatalf("after an update without --type: %+v", tc)
	}
	if r := runMQ(t, srv, "", "topic", "create", "x", "--type", "FAST"); r.code != 2 || !strings.Contains(r.errOut, "NORMAL, FIFO, DELAY") {
		t.Fatalf("bad --type: exit %d %q", r.code, r.errOut)
	}
}
