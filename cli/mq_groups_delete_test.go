package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/apache/rocketmq-client-go/v2/rlog"

	"github.com/tide-run/tide/mq"
	"github.com/tide-run/tide/mq/admin"
	"github.com/tide-run/tide/mq/mqmeta"
)

func groupNames(t *testing.T, srv *mq.Server) []string {
	t.Helper()
	var rows []groupRow
	if err := json.Unmarshal([]byte(mustMQ(t, srv, "", "groups", "-o", "json")), &rows); err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, r := range rows {
		out = append(out, r.Group)
	}
	return out
}

func TestMQGroupsDelete(t *testing.T) {
	srv := startMQ(t)
	mustMQ(t, srv, "", "topic", "create", "orders", "--queues", "2")
	mustMQ(t, srv, "", "send", "orders", "one")
	for _, g := range []string{"audit", "billing"} {
		mustMQ(t, srv, "", "consume", "orders", "--group", g, "--from", "first", "--timeout", "300ms")
	}
	adm, err := admin.Dial(context.Background(), srv.NameServerAddr())
	if err != nil {
		t.Fatal(err)
	}
	defer adm.Close()
	for _, tp := range []string{mqmeta.RetryPrefix + "audit", mqmeta.DLQPrefix + "audit"} {
		if err := adm.CreateTopic(context.Background(), tp, 1); err != nil {
			t.Fatal(err)
		}
	}
	if g := groupNames(t, srv); !slices.Contains(g, "audit") || !slices.Contains(g, "billing") {
		t.Fatalf("groups before: %v", g)
	}

	r := runMQ(t, srv, "", "groups", "delete", "audit")
	if r.code != 0 || !strings.Contains(r.out, "group/audit deleted") || !strings.Contains(r.out, srv.BrokerAddr()) ||
		!strings.Contains(r.out, "%RETRY%audit") || !strings.Contains(r.out, "dead letters kept in %DLQ%audit") || r.errOut != "" {
		t.Fatalf("delete: exit %d\nstdout: %s\nstderr: %s", r.code, r.out, r.errOut)
	}
	if g := groupNames(t, srv); slices.Contains(g, "audit") || !slices.Contains(g, "billing") {
		t.Fatalf("groups after deleting audit: %v", g)
	}
	if stats, err := adm.ConsumeStats(context.Background(), "audit", ""); err != nil || len(stats) != 0 {
		t.Fatalf("audit's offsets after delete: %v %v", stats, err)
	}
	topics := mustMQ(t, srv, "", "topic", "list", "--all")
	if strings.Contains(topics, "%RETRY%audit") || !strings.Contains(topics, "%DLQ%audit") {
		t.Fatalf("topics after delete (want %%RETRY%%audit gone, %%DLQ%%audit kept):\n%s", topics)
	}
	if r := runMQ(t, srv, "", "groups", "delete", "audit"); r.code != 1 || !strings.Contains(r.errOut, `group "audit" not found`) {
		t.Fatalf("delete again: exit %d %q", r.code, r.errOut)
	}

	// Bad names are refused before anything is sent.
	for _, bad := range [][]string{{"groups", "delete", "bad group!"}, {"groups", "delete", strings.Repeat("g", 256)},
		{"groups", "delete", "%DLQ%billing"}, {"groups", "delete"}, {"groups", "delete", "a", "b"}} {
		r := runMQ(t, srv, "", bad...)
		if r.code != 2 || !strings.HasPrefix(r.errOut, "error: ") {
			t.Fatalf("%v: exit %d %q", bad, r.code, r.errOut)
		}
	}
	if r := runMQ(t, srv, "", "groups", "delete", "%DLQ%billing"); !strings.Contains(r.errOut, `topic of group "billing"`) {
		t.Fatalf("DLQ name: %q", r.errOut)
	}
	if g := groupNames(t, srv); !slices.Contains(g, "billing") {
		t.Fatalf("billing gone after refused deletes: %v", g)
	}
	// `tide mq groups GROUP` still shows one group.
	if out := mustMQ(t, srv, "", "groups", "billing"); !strings.Contains(out, "Group: billing") {
		t.Fatalf("groups billing: %q", out)
	}
	var out, errOut bytes.Buffer
	if code := Main([]string{"mq", "groups", "delete", "--help"}, strings.NewReader(""), &out, &errOut); code != 0 ||
		!strings.Contains(out.String(), "Examples:") || !strings.Contains(out.String(), "tide mq groups delete audit") {
		t.Fatalf("--help: exit %d %q", code, out.String())
	}
}

// Deleting a group whose consumer runs works, with a warning that the consumer's heartbeat brings the group back.
func TestMQGroupsDeleteWarnsAboutRunningConsumers(t *testing.T) {
	rlog.SetLogLevel("error")
	srv := startMQ(t)
	mustMQ(t, srv, "", "topic", "create", "orders", "--queues", "1")
	startNoopConsumer(t, srv, "busy", "orders")
	for deadline := time.Now().Add(20 * time.Second); len(srv.ConsumerIDs("busy")) == 0; {
		if time.Now().After(deadline) {
			t.Fatal("the push consumer never connected")
		}
		time.Sleep(20 * time.Millisecond)
	}
	r := runMQ(t, srv, "", "groups", "delete", "busy")
	if r.code != 0 || !strings.Contains(r.out, "group/busy deleted") || !strings.Contains(r.errOut, "warning: 1 consumer(s) of busy are connected") {
		t.Fatalf("delete busy: exit %d\nstdout: %s\nstderr: %s", r.code, r.out, r.errOut)
	}
}
