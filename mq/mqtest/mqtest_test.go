package mqtest_test

import (
	"context"
	"testing"
	"time"

	"github.com/tide-run/tide/mq"
	"github.com/tide-run/tide/mq/admin"
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
