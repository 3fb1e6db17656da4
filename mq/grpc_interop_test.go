package mq_test

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/apache/rocketmq-client-go/v2/consumer"
	"github.com/apache/rocketmq-client-go/v2/primitive"
	rmq "github.com/apache/rocketmq-clients/golang/v5"
	v2 "github.com/apache/rocketmq-clients/golang/v5/protocol/v2"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"
	grpcstatus "google.golang.org/grpc/status"

	"github.com/tide-run/tide/internal/tailbuf"
	"github.com/tide-run/tide/mq/mqmeta"
	"github.com/tide-run/tide/mq/mqtest"
)

// One store for both protocols: what the 4.x client sends the 5.x client receives, and the other way round, with
// tags, keys, user properties and message ids intact.
func TestGRPCInteropWith4x(t *testing.T) {
	t.Parallel() // each test has its own server on free ports; most of the time is the clients waiting
	srv := runGRPC(t)
	createTopic5(t, srv, "mix", mqmeta.MessageTypeNormal, 2)
	// 4.x -> 5.x
	p4 := newProducer(t, srv)
	var ids4 []string
	for i := 0; i < 3; i++ {
		m := primitive.NewMessage("mix", []byte(fmt.Sprintf("from4-%d", i)))
		m.WithTag("t4")
		m.WithKeys([]string{"k4", fmt.Sprint(i)})
		m.WithProperty("origin", "4x")
		r, err := p4.SendSync(context.Background(), m)
		if err != nil {
			t.Fatal(err)
		}
		ids4 = append(ids4, r.MsgID)
	}
	c5 := newSimpleConsumer5(t, srv, "g5mix", map[string]*rmq.FilterExpression{"mix": rmq.NewFilterExpression("t4")})
	var got5 []string
	for _, mv := range receiveN(t, c5, 3, 20*time.Second, true, 20*time.Second) {
		if *mv.GetTag() != "t4" || mv.GetProperties()["origin"] != "4x" || !slices.Equal(mv.GetKeys(), []string{"k4", mv.GetKeys()[1]}) {
			t.Errorf("5.x received %s with tag %v keys %v properties %v", mv.GetBody(), *mv.GetTag(), mv.GetKeys(), mv.GetProperties())
		}
		got5 = append(got5, mv.GetMessageId())
	}
	slices.Sort(got5)
	slices.Sort(ids4)
	if !slices.Equal(got5, ids4) {
		t.Fatalf("5.x message ids %v, want the 4.x producer's %v", got5, ids4)
	}
	// 5.x -> 4.x
	p5 := newProducer5(t, srv, rmq.WithTopics("mix"))
	c4 := newPushConsumer(t, srv, "g4mix")
	rec := consume(t, c4, "mix", consumer.MessageSelector{Type: consumer.TAG, Expression: "t5"})
	var ids5 []string
	for i := 0; i < 3; i++ {
		m := &rmq.Message{Topic: "mix", Body: []byte(fmt.Sprintf("from5-%d", i))}
		m.SetTag("t5")
		m.SetKeys("k5")
		m.AddProperty("origin", "5x")
		r, err := p5.Send(context.Background(), m)
		if err != nil {
			t.Fatal(err)
		}
		ids5 = append(ids5, r[0].MessageID)
	}
	waitFor(t, 30*time.Second, "the 4.x consumer to get the 5.x messages", func() bool { return rec.count() >= 3 })
	var got4 []string
	for _, m := range rec.snapshot() {
		if m.GetTags() != "t5" || m.GetProperty("origin") != "5x" || m.GetKeys() != "k5" || !strings.HasPrefix(string(m.Body), "from5-") {
			t.Errorf("4.x received %s with tag %q keys %q origin %q", m.Body, m.GetTags(), m.GetKeys(), m.GetProperty("origin"))
		}
		got4 = append(got4, m.MsgId)
	}
	slices.Sort(got4)
	slices.Sort(ids5)
	if !slices.Equal(got4, ids5) {
		t.Fatalf("4.x message ids %v, want the 5.x producer's %v", got4, ids5)
	}
}

// The push consumer: a failed message comes back after the group's first backoff step with the next attempt.
func TestGRPCPushConsumer(t *testing.T) {
	t.Parallel() // each test has its own server on free ports; most of the time is the clients waiting
	srv := runGRPC(t)
	createTopic5(t, srv, "push5", "", 2)
	p := newProducer5(t, srv, rmq.WithTopics("push5"))
	var mu sync.Mutex
	attempts := map[string][]int32{}
	pc, err := rmq.NewPushConsumer(&rmq.Config{Endpoint: srv.GRPCAddr(), ConsumerGroup: "gpush5"},
		rmq.WithPushAwaitDuration(2*time.Second),
		rmq.WithPushSubscriptionExpressions(map[string]*rmq.FilterExpression{"push5": rmq.SUB_ALL}),
		rmq.WithPushMessageListener(&rmq.FuncMessageListener{Consume: func(mv *rmq.MessageView) rmq.ConsumerResult {
			mu.Lock()
			defer mu.Unlock()
			b := string(mv.GetBody())
			attempts[b] = append(attempts[b], mv.GetDeliveryAttempt())
			if b == "fail-once" && mv.GetDeliveryAttempt() == 1 {
				return rmq.FAILURE
			}
			return rmq.SUCCESS
		}}))
	if err != nil {
		t.Fatal(err)
	}
	if err := pc.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = pc.GracefulStop() })
	for _, b := range []string{"ok-1", "fail-once", "ok-2"} {
		if _, err := p.Send(context.Background(), &rmq.Message{Topic: "push5", Body: []byte(b)}); err != nil {
			t.Fatal(err)
		}
	}
	waitFor(t, 30*time.Second, "the push consumer to get every message and the retry", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(attempts["ok-1"]) >= 1 && len(attempts["ok-2"]) >= 1 && len(attempts["fail-once"]) >= 2
	})
	mu.Lock()
	defer mu.Unlock()
	if !slices.Equal(attempts["fail-once"], []int32{1, 2}) || !slices.Equal(attempts["ok-1"], []int32{1}) {
		t.Fatalf("deliveries: %v", attempts)
	}
}

func rawConn(t *testing.T, addr string, tlsOn bool) v2.MessagingServiceClient {
	t.Helper()
	creds := insecure.NewCredentials()
	if tlsOn {
		creds = credentials.NewTLS(&tls.Config{InsecureSkipVerify: true})
	}
	cc, err := grpc.NewClient(addr, grpc.WithTransportCredentials(creds))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cc.Close() })
	return v2.NewMessagingServiceClient(cc)
}

// The endpoint speaks plaintext and TLS on one port, answers Apache's status codes, and answers UNIMPLEMENTED
// (never hangs) for what it does not serve.
func TestGRPCProtocolAnswers(t *testing.T) {
	t.Parallel() // each test has its own server on free ports; most of the time is the clients waiting
	srv := runGRPC(t)
	createTopic5(t, srv, "n5", mqmeta.MessageTypeNormal, 2)
	ctx, cancel := context.WithTimeout(metadata.AppendToOutgoingContext(context.Background(), "x-mq-client-id", "raw@1"), 20*time.Second)
	defer cancel()
	for _, tlsOn := range []bool{false, true} {
		c := rawConn(t, srv.GRPCAddr(), tlsOn)
		r, err := c.QueryRoute(ctx, &v2.QueryRouteRequest{Topic: &v2.Resource{Name: "n5"}})
		if err != nil || r.GetStatus().GetCode() != v2.Code_OK || len(r.GetMessageQueues()) != 2 {
			t.Fatalf("tls=%v: route of n5: %v %v", tlsOn, r, err)
		}
		if got := r.GetMessageQueues()[0].GetAcceptMessageTypes(); !slices.Equal(got, []v2.MessageType{v2.MessageType_NORMAL}) {
			t.Fatalf("accepted types %v", got)
		}
	}
	c := rawConn(t, srv.GRPCAddr(), false)
	r, err := c.QueryRoute(ctx, &v2.QueryRouteRequest{Topic: &v2.Resource{Name: "nope"}})
	if err != nil || r.GetStatus().GetCode() != v2.Code_TOPIC_NOT_FOUND {
		t.Fatalf("route of an unknown topic: %v %v", r, err)
	}
	fifo := &v2.Message{Topic: &v2.Resource{Name: "n5"}, Body: []byte("x"), SystemProperties: &v2.SystemProperties{
		MessageId: "01ABC", MessageType: v2.MessageType_FIFO, MessageGroup: ptr("g")}}
	sr, err := c.SendMessage(ctx, &v2.SendMessageRequest{Messages: []*v2.Message{fifo}})
	if err != nil || sr.GetStatus().GetCode() != v2.Code_MESSAGE_PROPERTY_CONFLICT_WITH_TYPE {
		t.Fatalf("FIFO message to a NORMAL topic: %v %v", sr, err)
	}
	sr, err = c.SendMessage(ctx, &v2.SendMessageRequest{Messages: []*v2.Message{{Topic: &v2.Resource{Name: "n5"}, Body: []byte("x"),
		UserProperties: map[string]string{"UNIQ_KEY": "x"}, SystemProperties: &v2.SystemProperties{MessageId: "01ABD"}}}})
	if err != nil || sr.GetStatus().GetCode() != v2.Code_ILLEGAL_MESSAGE_PROPERTY_KEY {
		t.Fatalf("system property as user property: %v %v", sr, err)
	}
	hb, err := c.Heartbeat(ctx, &v2.HeartbeatRequest{})
	if err != nil || hb.GetStatus().GetCode() != v2.Code_UNRECOGNIZED_CLIENT_TYPE {
		t.Fatalf("heartbeat without settings: %v %v", hb, err)
	}
	ack, err := c.AckMessage(ctx, &v2.AckMessageRequest{Group: &v2.Resource{Name: "g"}, Topic: &v2.Resource{Name: "n5"},
		Entries: []*v2.AckMessageEntry{{MessageId: "x", ReceiptHandle: "garbage"}}})
	if err != nil || ack.GetStatus().GetCode() != v2.Code_INVALID_RECEIPT_HANDLE {
		t.Fatalf("ack with a garbage handle: %v %v", ack, err)
	}
	stream, err := c.PullMessage(ctx, &v2.PullMessageRequest{})
	if err == nil {
		_, err = stream.Recv()
	}
	if grpcstatus.Code(err) != codes.Unimplemented {
		t.Fatalf("PullMessage: %v, want Unimplemented", err)
	}
}

func ptr[T any](v T) *T { return &v }

// A gRPC client pointed at a remoting port gets its connection closed and the broker logs one line naming the
// gRPC endpoint, not "frame too large".
func TestGRPCClientAtRemotingPort(t *testing.T) {
	t.Parallel() // each test has its own server on free ports; most of the time is the clients waiting
	logs := &tailbuf.Buffer{Max: 1 << 20}
	opts := grpcOpts(t)
	opts.Logger = slog.New(slog.NewTextHandler(logs, nil))
	srv := mqtest.RunServer(t, opts)
	for _, addr := range []string{srv.BrokerAddr(), srv.NameServerAddr()} {
		c := rawConn(t, addr, false)
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		_, err := c.QueryRoute(ctx, &v2.QueryRouteRequest{Topic: &v2.Resource{Name: "x"}})
		cancel()
		if err == nil {
			t.Fatalf("%s: a gRPC call to a remoting port succeeded", addr)
		}
	}
	waitFor(t, 5*time.Second, "the wrong-door log line", func() bool {
		return strings.Contains(logs.String(), "gRPC endpoint "+srv.GRPCAddr())
	})
	if s := logs.String(); strings.Contains(s, "frame too large") {
		t.Fatalf("log says frame too large:\n%s", s)
	}
	if srv.BrokerStats().BadFrames == 0 {
		t.Fatal("the HTTP/2 connection was not counted as a bad frame")
	}
}

// The server asks a connected 5.x client for its thread dump over Telemetry and gets the answer back by nonce.
func TestGRPCClientThreadStack(t *testing.T) {
	t.Parallel() // each test has its own server on free ports; most of the time is the clients waiting
	srv := runGRPC(t)
	createTopic5(t, srv, "ts5", "", 1)
	newSimpleConsumer5(t, srv, "gts5", map[string]*rmq.FilterExpression{"ts5": rmq.SUB_ALL})
	ids := srv.GRPCClients()
	if len(ids) != 1 || !strings.Contains(ids[0], "@") {
		t.Fatalf("connected clients %v, want the one consumer", ids)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	stack, err := srv.GRPCClientStack(ctx, ids[0])
	if err != nil || !strings.Contains(stack, "goroutine") {
		t.Fatalf("thread stack: %v %.200q", err, stack)
	}
	if _, err := srv.GRPCClientStack(ctx, "nobody@1"); err == nil {
		t.Fatal("thread stack of an unknown client succeeded")
	}
}

// MaxConnections caps the gRPC listener too: one connection more is closed at once.
func TestGRPCConnectionCap(t *testing.T) {
	t.Parallel() // each test has its own server on free ports; most of the time is the clients waiting
	opts := grpcOpts(t)
	opts.MaxConnections = 1
	srv := mqtest.RunServer(t, opts)
	first, err := net.Dial("tcp", srv.GRPCAddr())
	if err != nil {
		t.Fatal(err)
	}
	defer first.Close()
	waitFor(t, 5*time.Second, "the first connection to be accepted", func() bool {
		second, err := net.Dial("tcp", srv.GRPCAddr())
		if err != nil {
			return false
		}
		defer second.Close()
		_ = second.SetReadDeadline(time.Now().Add(2 * time.Second))
		_, err = second.Read(make([]byte, 1))
		return errors.Is(err, io.EOF) || errors.Is(err, syscall.ECONNRESET)
	})
}

// Retry topics mean the same to both: a message a 4.x consumer of group G sent back (into %RETRY%G) is received by
// a 5.x consumer of G under its original topic, with the attempt count carried on.
func TestGRPCReceivesFourXRetries(t *testing.T) {
	t.Parallel() // each test has its own server on free ports; most of the time is the clients waiting
	opts := grpcOpts(t)
	opts.DelayLevels = mqtest.DelayLevels(100 * time.Millisecond)
	srv := mqtest.RunServer(t, opts)
	createTopic5(t, srv, "rt", "", 1)
	p4 := newProducer(t, srv)
	r, err := p4.SendSync(context.Background(), primitive.NewMessage("rt", []byte("again")))
	if err != nil {
		t.Fatal(err)
	}
	c4 := newPushConsumer(t, srv, "gshare")
	var failed sync.Once
	gave := make(chan struct{})
	if err := c4.Subscribe("rt", consumer.MessageSelector{}, func(_ context.Context, msgs ...*primitive.MessageExt) (consumer.ConsumeResult, error) {
		failed.Do(func() { close(gave) })
		return consumer.ConsumeRetryLater, nil
	}); err != nil {
		t.Fatal(err)
	}
	if err := c4.Start(); err != nil {
		t.Fatal(err)
	}
	select {
	case <-gave:
	case <-time.After(30 * time.Second):
		t.Fatal("the 4.x consumer never got the message")
	}
	waitFor(t, 10*time.Second, "the send-back into %RETRY%gshare", func() bool {
		for _, s := range srv.ConsumeStats("nobody", mqmeta.RetryTopic("gshare")) {
			if s.BrokerOffset > 0 {
				return true
			}
		}
		return false
	})
	_ = c4.Shutdown() // commits its offset on rt
	c5 := newSimpleConsumer5(t, srv, "gshare", map[string]*rmq.FilterExpression{"rt": rmq.SUB_ALL})
	mv := receiveN(t, c5, 1, 20*time.Second, true, 20*time.Second)[0]
	if string(mv.GetBody()) != "again" || mv.GetTopic() != "rt" || mv.GetMessageId() != r.MsgID || mv.GetDeliveryAttempt() < 2 {
		t.Fatalf("5.x got %q on topic %s id %s attempt %d; want the 4.x retry of %s on rt", mv.GetBody(), mv.GetTopic(), mv.GetMessageId(), mv.GetDeliveryAttempt(), r.MsgID)
	}
}
