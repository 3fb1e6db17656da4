package mqtest_test

import (
	"context"
	"testing"
	"time"

	"github.com/tide-run/tide/mq"
	"github.com/tide-run/tide/mq/admin"
	"github.com/tide-run/tide/mq/mqmeta"
	"github.com/tide-run/tide/mq/mqtest"
)

func TestRunServer(t *testing.T) {
	var srv *mq.Server
	t.Run("inner", func(t *testing.T) {
		srv = mqtest.RunServer(t, mq.Options{DelayLevels: mqtest.DelayLevels(10 * time.Millisecond)})
		c, err := admin.Dial(context.Background(), srv.NameServerAddr())
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		if err := c.CreateTopic(context.Background(), "t", 2); err != nil {
			t.Fatal(err)
		}
		if !srv.Ready() {
			t.Fatal("not ready")
		}
	})
	if srv.Ready() {
		t.Fatal("the server still runs after its test ended")
	}
}

func TestRestart(t *testing.T) {
	dir := t.TempDir()
	srv := mqtest.RunServer(t, mq.Options{DataDir: dir})
	if err := srv.CreateTopic(mqmeta.TopicConfig{TopicName: "kept", ReadQueueNums: 2, WriteQueueNums: 2, Perm: mqmeta.PermRW}); err != nil {
		t.Fatal(err)
	}
	srv2 := mqtest.Restart(t, srv, mq.Options{DataDir: dir})
	if srv.Ready() {
		t.Fatal("the first server still runs")
	}
	if srv2.NameServerAddr() != srv.NameServerAddr() || srv2.BrokerAddr() != srv.BrokerAddr() {
		t.Fatalf("addresses changed: %s %s -> %s %s", srv.NameServerAddr(), srv.BrokerAddr(), srv2.NameServerAddr(), srv2.BrokerAddr())
	}
	if _, ok := srv2.Topic("kept"); !ok {
		t.Fatal("the topic did not survive the restart: not the same data dir")
	}
}
