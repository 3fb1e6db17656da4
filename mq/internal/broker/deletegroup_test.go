package broker

import (
	"io"
	"net"
	"testing"
	"time"

	clocktesting "k8s.io/utils/clock/testing"

	"github.com/tide-run/tide/mq/mqmeta"
	"github.com/tide-run/tide/mq/remoting"
)

// TestDeleteSubscriptionGroup: request 207 removes the group's config; with cleanOffset its offsets on every topic
// go too; both survive a restart (persisted); other groups are untouched; an unknown group answers SUCCESS.
func TestDeleteSubscriptionGroup(t *testing.T) {
	dir := t.TempDir()
	b, closeB := openBroker(t, dir, clocktesting.NewFakeClock(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)))
	for _, tp := range []string{"a", "b"} {
		if err := b.CreateTopic(mqmeta.TopicConfig{TopicName: tp, ReadQueueNums: 2, WriteQueueNums: 2, Perm: mqmeta.PermRW}); err != nil {
			t.Fatal(err)
		}
	}
	for _, g := range []string{"keep", "drop", "drop-config-only"} {
		if _, err := b.cfg.ensureGroup(g); err != nil {
			t.Fatal(err)
		}
		b.cfg.setOffset("a", g, 0, 5)
		b.cfg.setOffset("b", g, 1, 7)
		b.cfg.setOffset(mqmeta.RetryPrefix+g, g, 0, 1)
	}
	if err := b.cfg.persistOffsets(true); err != nil {
		t.Fatal(err)
	}
	server, client := net.Pipe()
	go io.Copy(io.Discard, client)
	conn := remoting.NewConn(server, b.log)
	defer func() { conn.Close(); client.Close() }()
	del := func(group string, clean string) *remoting.Command {
		ext := map[string]string{"groupName": group}
		if clean != "" {
			ext["cleanOffset"] = clean
		}
		return b.Handle(conn, remoting.NewRequest(remoting.DeleteSubscriptionGroup, ext, nil))
	}
	for _, c := range []struct{ group, clean string }{{"drop", "true"}, {"drop-config-only", "false"}, {"never-existed", "true"}} {
		if resp := del(c.group, c.clean); resp.Code != remoting.Success {
			t.Fatalf("delete %s: code %d %s", c.group, resp.Code, resp.Remark)
		}
	}
	if resp := b.Handle(conn, remoting.NewRequest(remoting.DeleteSubscriptionGroup, map[string]string{}, nil)); resp.Code == remoting.Success {
		t.Fatal("delete without groupName succeeded")
	}
	check := func(b *Broker, when string) {
		t.Helper()
		groups := b.GroupConfigs()
		if _, ok := groups["keep"]; !ok {
			t.Errorf("%s: group keep gone", when)
		}
		for _, g := range []string{"drop", "drop-config-only"} {
			if _, ok := groups[g]; ok {
				t.Errorf("%s: group %s still configured", when, g)
			}
		}
		if n := len(b.GroupOffsets("drop")); n != 0 {
			t.Errorf("%s: group drop still has offsets on %d topics", when, n)
		}
		if n := len(b.GroupOffsets("drop-config-only")); n != 3 {
			t.Errorf("%s: without cleanOffset the offsets stay (Java): %d topics, want 3", when, n)
		}
		if offs := b.GroupOffsets("keep"); offs["a"][0] != 5 || offs["b"][1] != 7 || len(offs) != 3 {
			t.Errorf("%s: group keep offsets %v", when, offs)
		}
	}
	check(b, "before restart")
	closeB()
	b2, closeB2 := openBroker(t, dir, clocktesting.NewFakeClock(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)))
	defer closeB2()
	check(b2, "after restart")
}
