package mq_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/apache/rocketmq-client-go/v2"
	"github.com/apache/rocketmq-client-go/v2/consumer"
	"github.com/apache/rocketmq-client-go/v2/primitive"
	"github.com/apache/rocketmq-client-go/v2/producer"
	"github.com/apache/rocketmq-client-go/v2/rlog"

	"github.com/tide-run/tide/mq"
	"github.com/tide-run/tide/mq/mqtest"
)

func TestMain(m *testing.M) {
	if dir := os.Getenv("TIDE_MQ_CHILD_DIR"); dir != "" {
		runChildBroker(dir) // the crash test runs this test binary as a broker it can kill -9
		return
	}
	if dir := os.Getenv("TIDE_MQ_EMFILE_CHILD_DIR"); dir != "" {
		runEMFILEChild(dir) // TestAcceptRecoversFromEMFILE: a broker with a low open-file limit
		return
	}
	// The client's logger is process-global: quiet it once.
	rlog.SetLogLevel("error")
	os.Exit(m.Run())
}

// runChildBroker serves a broker (sync flush unless TIDE_MQ_CHILD_FLUSH=async) on ephemeral ports, prints its addresses and waits to be killed.
// It starts the broker by hand, not with mqtest: it is a child process (no testing.T) that the crash test kills -9.
func runChildBroker(dir string) {
	mode := mq.FlushSync
	if os.Getenv("TIDE_MQ_CHILD_FLUSH") == "async" {
		mode = mq.FlushAsync
	}
	srv, err := mq.New(mq.Options{DataDir: dir, FlushMode: mode, SegmentSize: 1 << 20, Logger: quiet})
	if err == nil {
		err = srv.Start(context.Background())
	}
	if err != nil {
		fmt.Println("error", err)
		os.Exit(1)
	}
	fmt.Printf("ready %s %s\n", srv.NameServerAddr(), srv.BrokerAddr())
	select {}
}

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

// start runs an embedded server on ephemeral ports and checks the store's invariants when the test ends.
func start(t *testing.T, opts mq.Options) *mq.Server {
	t.Helper()
	return mqtest.RunServer(t, opts)
}

var instanceSeq atomic.Int64

// runID tells this test process apart from earlier ones that had the same pid: the client keeps broadcasting
// offsets in files under $HOME named by client id, so an id reused across runs would resume from stale offsets.
var runID = time.Now().UnixNano()

// uniq makes client instance names unique: the Go client shares one client per (ip, instance) in a process, and
// keys its local offset files by client id.
func uniq(prefix string) string {
	return fmt.Sprintf("%s-%d-%d-%d", prefix, os.Getpid(), runID, instanceSeq.Add(1))
}

func newProducer(t *testing.T, srv *mq.Server, opts ...producer.Option) rocketmq.Producer {
	t.Helper()
	all := append([]producer.Option{producer.WithNameServer([]string{srv.NameServerAddr()}), producer.WithRetry(2),
		producer.WithInstanceName(uniq("p")), producer.WithGroupName(uniq("pg"))}, opts...)
	p, err := rocketmq.NewProducer(all...)
	if err != nil {
		t.Fatal(err)
	}
	if err := p.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Shutdown() })
	return p
}

func newPushConsumer(t *testing.T, srv *mq.Server, group string, opts ...consumer.Option) rocketmq.PushConsumer {
	t.Helper()
	all := append([]consumer.Option{consumer.WithNameServer([]string{srv.NameServerAddr()}), consumer.WithGroupName(group),
		consumer.WithInstance(uniq("c"))}, opts...)
	c, err := rocketmq.NewPushConsumer(all...)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// consumed is what a push consumer was given, in arrival order, redeliveries included.
type consumed struct {
	mu   sync.Mutex
	msgs []*primitive.MessageExt
}

// consume subscribes c to topic with sel, starts it, and shuts it down when the test ends; every message it is given
// is recorded and acknowledged.
func consume(t *testing.T, c rocketmq.PushConsumer, topic string, sel consumer.MessageSelector) *consumed {
	t.Helper()
	r := &consumed{}
	if err := c.Subscribe(topic, sel, func(_ context.Context, msgs ...*primitive.MessageExt) (consumer.ConsumeResult, error) {
		r.mu.Lock()
		defer r.mu.Unlock()
		r.msgs = append(r.msgs, msgs...)
		return consumer.ConsumeSuccess, nil
	}); err != nil {
		t.Fatal(err)
	}
	if err := c.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Shutdown() })
	return r
}

// snapshot returns the messages so far.
func (r *consumed) snapshot() []*primitive.MessageExt {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.msgs)
}

func (r *consumed) count() int { r.mu.Lock(); defer r.mu.Unlock(); return len(r.msgs) }

func createTopic(t *testing.T, srv *mq.Server, topic string, queues int) {
	t.Helper()
	if err := srv.CreateTopic(brokerTopic(topic, queues)); err != nil {
		t.Fatal(err)
	}
}

func sendN(t *testing.T, p rocketmq.Producer, topic string, n int, tag string) []string {
	t.Helper()
	var ids []string
	for i := 0; i < n; i++ {
		m := primitive.NewMessage(topic, []byte(fmt.Sprintf("msg-%d", i)))
		if tag != "" {
			m.WithTag(tag)
		}
		r, err := p.SendSync(context.Background(), m)
		if err != nil {
			t.Fatalf("send %d: %v", i, err)
		}
		if r.Status != primitive.SendOK {
			t.Fatalf("send %d: status %v", i, r.Status)
		}
		ids = append(ids, r.MsgID)
	}
	return ids
}

// waitFor polls cond until it holds or the deadline passes.
func waitFor(t *testing.T, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", d, what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
