package mq_test

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	rmq "github.com/apache/rocketmq-clients/golang/v5"

	"github.com/tide-run/tide/mq"
	"github.com/tide-run/tide/mq/admin"
	"github.com/tide-run/tide/mq/mqmeta"
	"github.com/tide-run/tide/mq/mqtest"
)

// The 5.x client logs to ~/logs/rocketmq at info level from its init: send it to a temporary directory at error
// level before any test runs.
func init() {
	dir := filepath.Join(os.TempDir(), "tide-rocketmq5-client-logs")
	os.Setenv("rocketmq.client.logRoot", dir)
	os.Setenv("rocketmq.client.logLevel", "error")
	rmq.ResetLogger()
}

// grpcOpts are server options for the 5.x tests: short minimum invisible and polling times so redelivery tests
// take seconds (Apache's minimums are 10 s and 5 s).
func grpcOpts(t *testing.T) mq.Options {
	return mq.Options{DataDir: t.TempDir(), GRPCMinInvisible: time.Second, GRPCMinPolling: 200 * time.Millisecond,
		GRPCMaxPolling: 3 * time.Second}
}

func runGRPC(t *testing.T) *mq.Server {
	t.Helper()
	return mqtest.RunServer(t, grpcOpts(t))
}

// createTopic creates a topic with a message type, as `tide mq topic create --type` does.
func createTopic5(t *testing.T, srv *mq.Server, topic, typ string, queues int) {
	t.Helper()
	tc := mqmeta.TopicConfig{TopicName: topic, ReadQueueNums: queues, WriteQueueNums: queues, Perm: mqmeta.PermRW}
	if typ != "" {
		tc.Attributes = map[string]string{mqmeta.AttrMessageType: typ}
	}
	if err := srv.CreateTopic(tc); err != nil {
		t.Fatal(err)
	}
}

func createGroup5(t *testing.T, srv *mq.Server, g mqmeta.GroupConfig) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := admin.Dial(ctx, srv.NameServerAddr())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	g.ConsumeEnable = true
	if err := c.CreateGroup(ctx, g); err != nil {
		t.Fatal(err)
	}
}

func newProducer5(t *testing.T, srv *mq.Server, opts ...rmq.ProducerOption) rmq.Producer {
	t.Helper()
	p, err := rmq.NewProducer(&rmq.Config{Endpoint: srv.GRPCAddr()}, opts...)
	if err != nil {
		t.Fatal(err)
	}
	if err := p.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = p.GracefulStop() })
	return p
}

func newSimpleConsumer5(t *testing.T, srv *mq.Server, group string, subs map[string]*rmq.FilterExpression) rmq.SimpleConsumer {
	t.Helper()
	c, err := rmq.NewSimpleConsumer(&rmq.Config{Endpoint: srv.GRPCAddr(), ConsumerGroup: group},
		rmq.WithSimpleAwaitDuration(2*time.Second), rmq.WithSimpleSubscriptionExpressions(subs))
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.GracefulStop() })
	return c
}

// receiveN receives until n messages arrived (acking each when ack) or the deadline passes.
func receiveN(t *testing.T, c rmq.SimpleConsumer, n int, invisible time.Duration, ack bool, within time.Duration) []*rmq.MessageView {
	t.Helper()
	var out []*rmq.MessageView
	deadline := time.Now().Add(within)
	for len(out) < n && time.Now().Before(deadline) {
		mvs, err := c.Receive(context.Background(), int32(n-len(out)), invisible)
		if err != nil && !isNotFound(err) {
			t.Fatalf("receive: %v", err)
		}
		for _, mv := range mvs {
			if ack {
				if err := c.Ack(context.Background(), mv); err != nil {
					t.Fatalf("ack %s: %v", mv.GetMessageId(), err)
				}
			}
			out = append(out, mv)
		}
	}
	if len(out) < n {
		t.Fatalf("received %d messages within %s, want %d", len(out), within, n)
	}
	return out
}

func isNotFound(err error) bool { return isCode(err, 40401) }

func isCode(err error, code int32) bool {
	var e *rmq.ErrRpcStatus
	return asRPC(err, &e) && e.Code == code
}
