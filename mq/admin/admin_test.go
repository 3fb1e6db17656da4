package admin_test

import (
	"context"
	"slices"
	"testing"

	"github.com/tide-run/tide/mq"
	"github.com/tide-run/tide/mq/admin"
	"github.com/tide-run/tide/mq/mqmeta"
	"github.com/tide-run/tide/mq/mqtest"
)

// startWithClient starts an embedded broker on free ports and dials an admin client to it; both stop with the test.
func startWithClient(t *testing.T) (*mq.Server, *admin.Client) {
	t.Helper()
	ctx := context.Background()
	srv := mqtest.RunServer(t, mq.Options{})
	c, err := admin.Dial(ctx, srv.NameServerAddr())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return srv, c
}

func TestAdminThroughProtocol(t *testing.T) {
	ctx := context.Background()
	srv, c := startWithClient(t)
	if err := c.CreateTopic(ctx, "adm", 3); err != nil {
		t.Fatal(err)
	}
	if err := c.CreateTopic(ctx, "bad topic!", 3); err == nil {
		t.Fatal("invalid topic name accepted")
	}
	list, err := c.TopicList(ctx)
	if err != nil || !slices.Contains(list, "adm") {
		t.Fatalf("topic list %v %v", list, err)
	}
	topics, err := c.Topics(ctx)
	if err != nil || topics["adm"].WriteQueueNums != 3 {
		t.Fatalf("topics %v %v", topics["adm"], err)
	}
	// Send three messages to queue 1, then read offsets, lag, reset and raw pulls over the wire.
	for i := 0; i < 3; i++ {
		if _, err := c.Send(ctx, admin.SendRequest{Topic: "adm", QueueID: 1, Body: []byte{byte(i)}}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := c.ResetOffset(ctx, "g-adm", "adm", admin.ResetToFirst); err != nil {
		t.Fatal(err)
	}
	stats, err := c.ConsumeStats(ctx, "g-adm", "adm")
	if err != nil || len(stats) != 3 || stats[1].Lag != 3 {
		t.Fatalf("stats %+v %v", stats, err)
	}
	if _, err := c.ResetOffset(ctx, "g-adm", "adm", admin.ResetToLast); err != nil {
		t.Fatal(err)
	}
	stats, _ = c.ConsumeStats(ctx, "g-adm", "adm")
	if stats[1].Lag != 0 || stats[1].ConsumerOffset != 3 {
		t.Fatalf("after reset to last %+v", stats[1])
	}
	msgs, next, err := c.Pull(ctx, "reader", "adm", 1, 0, 10)
	if err != nil || len(msgs) != 3 || next != 3 {
		t.Fatalf("pull %d next %d %v", len(msgs), next, err)
	}
	if dl, err := c.DeadLetters(ctx, "nobody", 10); err != nil || len(dl) != 0 {
		t.Fatalf("dead letters %v %v", dl, err)
	}
	if err := c.DeleteTopic(ctx, "adm"); err != nil {
		t.Fatal(err)
	}
	if list, _ := c.TopicList(ctx); slices.Contains(list, "adm") {
		t.Fatal("deleted topic still listed")
	}
	if err := c.DeleteTopic(ctx, mqmeta.DefaultTopic); err == nil {
		t.Fatal("system topic deleted")
	}
	if err := srv.Check(); err != nil {
		t.Fatal(err)
	}
}

// TestDeleteGroupOnEveryMaster: DeleteGroup finds the master through the name server's cluster info (a dead name
// server listed first is skipped) and removes the group's config and offsets over the wire; other groups stay.
func TestDeleteGroupOnEveryMaster(t *testing.T) {
	ctx := context.Background()
	srv, c := startWithClient(t)
	if err := c.CreateTopic(ctx, "dg", 2); err != nil {
		t.Fatal(err)
	}
	for _, g := range []string{"g-drop", "g-keep"} {
		if err := c.CreateGroup(ctx, mqmeta.GroupConfig{GroupName: g, ConsumeEnable: true}); err != nil {
			t.Fatal(err)
		}
		if err := c.UpdateOffset(ctx, g, "dg", 1, 0); err != nil {
			t.Fatal(err)
		}
	}
	b := srv
	b.Topic(mqmeta.RetryPrefix + "g-drop") // as a consumer's heartbeat creates them
	b.Topic(mqmeta.RetryPrefix + "g-keep")
	masters, err := admin.MasterBrokers(ctx, []string{srv.NameServerAddr()})
	if err != nil || !slices.Equal(masters, []string{srv.BrokerAddr()}) {
		t.Fatalf("masters %v %v, want [%s]", masters, err, srv.BrokerAddr())
	}
	dead := "127.0.0.1:1" // nothing listens there
	if err := admin.DeleteGroup(ctx, []string{dead, srv.NameServerAddr()}, "g-drop"); err != nil {
		t.Fatal(err)
	}
	if _, ok := b.GroupConfigs()["g-drop"]; ok {
		t.Error("g-drop still configured")
	}
	if offs := b.GroupOffsets("g-drop"); len(offs) != 0 {
		t.Errorf("g-drop offsets left: %v", offs)
	}
	if _, ok := b.Topics()[mqmeta.RetryPrefix+"g-drop"]; ok {
		t.Error("retry topic of g-drop left")
	}
	if _, ok := b.GroupConfigs()["g-keep"]; !ok || len(b.GroupOffsets("g-keep")) != 1 {
		t.Error("g-keep touched")
	}
	if _, ok := b.Topics()[mqmeta.RetryPrefix+"g-keep"]; !ok {
		t.Error("retry topic of g-keep deleted")
	}
	// A group that never existed (no config, offsets or retry topic) deletes cleanly.
	if err := admin.DeleteGroup(ctx, []string{srv.NameServerAddr()}, "g-never"); err != nil {
		t.Errorf("never-existing group: %v", err)
	}
	if _, ok := b.Topics()[mqmeta.RetryPrefix+"g-never"]; ok {
		t.Error("deleting a never-existing group left its retry topic behind")
	}
	if err := admin.DeleteGroup(ctx, []string{dead}, "g-keep"); err == nil {
		t.Error("no reachable name server, no error")
	}
}
