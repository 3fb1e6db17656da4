package mq_test

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	rmq "github.com/apache/rocketmq-clients/golang/v5"

	"github.com/tide-run/tide/mq/admin"
	"github.com/tide-run/tide/mq/mqmeta"
	"github.com/tide-run/tide/mq/mqtest"
)

func TestGRPCDelayAndTimer(t *testing.T) {
	t.Parallel() // each test has its own server on free ports; most of the time is the clients waiting
	srv := runGRPC(t)
	createTopic5(t, srv, "later5", mqmeta.MessageTypeDelay, 2)
	p := newProducer5(t, srv, rmq.WithTopics("later5"))
	c := newSimpleConsumer5(t, srv, "gl5", map[string]*rmq.FilterExpression{"later5": rmq.SUB_ALL})
	sent := time.Now()
	due := sent.Add(3 * time.Second)
	msg := &rmq.Message{Topic: "later5", Body: []byte("due")}
	msg.SetDelayTimestamp(due)
	if _, err := p.Send(context.Background(), msg); err != nil {
		t.Fatal(err)
	}
	got := receiveN(t, c, 1, 20*time.Second, true, 20*time.Second)
	if now := time.Now(); now.Before(due.Add(-100 * time.Millisecond)) {
		t.Fatalf("delivered %s before its delivery time", due.Sub(now))
	}
	_ = got
	// More than a day ahead is refused, as Apache's proxy does (maxDelayTimeMills), though the broker's timer takes 3 days.
	far := &rmq.Message{Topic: "later5", Body: []byte("far")}
	far.SetDelayTimestamp(time.Now().Add(25 * time.Hour))
	if _, err := p.Send(context.Background(), far); !isCode(err, 40012) {
		t.Fatalf("a delivery time 25 h ahead: %v, want ILLEGAL_DELIVERY_TIME (40012)", err)
	}
	// A NORMAL topic refuses a delayed message (the client checks the route's accepted types first).
	createTopic5(t, srv, "plain5", mqmeta.MessageTypeNormal, 1)
	m2 := &rmq.Message{Topic: "plain5", Body: []byte("x")}
	m2.SetDelayTimestamp(due)
	if _, err := p.Send(context.Background(), m2); err == nil {
		t.Fatal("a delayed message was accepted by a NORMAL topic")
	}
}

// FIFO: within a message group the next message comes only after the previous one is acknowledged, also when
// the previous one is redelivered because its invisible time lapsed.
func TestGRPCFIFOOrderAcrossRedelivery(t *testing.T) {
	t.Parallel() // each test has its own server on free ports; most of the time is the clients waiting
	srv := runGRPC(t)
	createTopic5(t, srv, "fifo5", mqmeta.MessageTypeFIFO, 2)
	createGroup5(t, srv, mqmeta.GroupConfig{GroupName: "gf5", ConsumeMessageOrderly: true, RetryMaxTimes: 16})
	p := newProducer5(t, srv, rmq.WithTopics("fifo5"))
	for i := 0; i < 4; i++ {
		for _, g := range []string{"a", "b"} {
			msg := &rmq.Message{Topic: "fifo5", Body: []byte(fmt.Sprintf("%s%d", g, i))}
			msg.SetMessageGroup(g)
			if _, err := p.Send(context.Background(), msg); err != nil {
				t.Fatal(err)
			}
		}
	}
	c := newSimpleConsumer5(t, srv, "gf5", map[string]*rmq.FilterExpression{"fifo5": rmq.SUB_ALL})
	seen := map[string][]string{}
	redelivered := false
	deadline := time.Now().Add(40 * time.Second)
	for len(seen["a"])+len(seen["b"]) < 8 && time.Now().Before(deadline) {
		mvs, err := c.Receive(context.Background(), 1, time.Second)
		if err != nil && !isNotFound(err) {
			t.Fatal(err)
		}
		for _, mv := range mvs {
			g := *mv.GetMessageGroup()
			body := string(mv.GetBody())
			if body == "a1" && mv.GetDeliveryAttempt() == 1 {
				continue // not acknowledged: it must come back before a2
			}
			if body == "a1" {
				redelivered = true
			}
			if err := c.Ack(context.Background(), mv); err != nil {
				t.Fatalf("ack %s: %v", body, err)
			}
			seen[g] = append(seen[g], body)
		}
	}
	if !redelivered {
		t.Fatal("a1 was not redelivered")
	}
	for _, g := range []string{"a", "b"} {
		want := []string{g + "0", g + "1", g + "2", g + "3"}
		if !slices.Equal(seen[g], want) {
			t.Fatalf("group %s consumed %v, want %v", g, seen[g], want)
		}
	}
}

func TestGRPCTransactions(t *testing.T) {
	t.Parallel() // each test has its own server on free ports; most of the time is the clients waiting
	opts := grpcOpts(t)
	opts.TransactionImmunity, opts.TransactionCheckInterval = time.Second, time.Second
	srv := mqtest.RunServer(t, opts)
	createTopic5(t, srv, "tx5", mqmeta.MessageTypeTransaction, 2)
	var mu sync.Mutex
	var checked []string
	checker := &rmq.TransactionChecker{Check: func(mv *rmq.MessageView) rmq.TransactionResolution {
		mu.Lock()
		checked = append(checked, string(mv.GetBody()))
		mu.Unlock()
		return rmq.COMMIT
	}}
	p := newProducer5(t, srv, rmq.WithTopics("tx5"), rmq.WithTransactionChecker(checker))
	c := newSimpleConsumer5(t, srv, "gt5", map[string]*rmq.FilterExpression{"tx5": rmq.SUB_ALL})
	send := func(body string) rmq.Transaction {
		tx := p.BeginTransaction()
		if _, err := p.SendWithTransaction(context.Background(), &rmq.Message{Topic: "tx5", Body: []byte(body)}, tx); err != nil {
			t.Fatal(err)
		}
		return tx
	}
	if err := send("committed").Commit(); err != nil {
		t.Fatal(err)
	}
	if err := send("rolled-back").RollBack(); err != nil {
		t.Fatal(err)
	}
	send("checked") // neither: the broker asks the producer, whose checker commits
	got := receiveN(t, c, 2, 20*time.Second, true, 25*time.Second)
	var bodies []string
	for _, mv := range got {
		bodies = append(bodies, string(mv.GetBody()))
	}
	slices.Sort(bodies)
	if !slices.Equal(bodies, []string{"checked", "committed"}) {
		t.Fatalf("received %v, want [checked committed]", bodies)
	}
	mu.Lock()
	defer mu.Unlock()
	if !slices.Contains(checked, "checked") || slices.Contains(checked, "committed") || slices.Contains(checked, "rolled-back") {
		t.Fatalf("checker asked about %v, want only [checked]", checked)
	}
	if mvs, _ := c.Receive(context.Background(), 8, 20*time.Second); len(mvs) != 0 {
		t.Fatalf("rolled-back message delivered: %s", mvs[0].GetBody())
	}
}

// A message not acknowledged within its invisible time comes again, with the next attempt number; after the
// group's max attempts (retryMaxTimes+1) it goes to the group's %DLQ% topic, where 4.x tools read it.
func TestGRPCRedeliveryThenDLQ(t *testing.T) {
	t.Parallel() // each test has its own server on free ports; most of the time is the clients waiting
	srv := runGRPC(t)
	createTopic5(t, srv, "work5", "", 1)
	createGroup5(t, srv, mqmeta.GroupConfig{GroupName: "gw5", RetryMaxTimes: 2})
	p := newProducer5(t, srv, rmq.WithTopics("work5"))
	c := newSimpleConsumer5(t, srv, "gw5", map[string]*rmq.FilterExpression{"work5": rmq.SUB_ALL})
	res, err := p.Send(context.Background(), &rmq.Message{Topic: "work5", Body: []byte("poison")})
	if err != nil {
		t.Fatal(err)
	}
	var first *rmq.MessageView
	for attempt := int32(1); attempt <= 3; attempt++ {
		mv := receiveN(t, c, 1, time.Second, false, 15*time.Second)[0]
		if mv.GetMessageId() != res[0].MessageID || mv.GetDeliveryAttempt() != attempt {
			t.Fatalf("delivery %d: id %s attempt %d, want %s attempt %d", attempt, mv.GetMessageId(), mv.GetDeliveryAttempt(), res[0].MessageID, attempt)
		}
		switch attempt {
		case 1:
			first = mv
		case 2:
			// A handle of an earlier delivery no longer acknowledges once the message came again (the Go client
			// ignores the INVALID_RECEIPT_HANDLE answer: the third delivery below shows the message was not acked).
			_ = c.Ack(context.Background(), first)
		}
	}
	// Three deliveries were the limit: it is dead-lettered instead of delivered a fourth time.
	if mvs, _ := c.Receive(context.Background(), 1, time.Second); len(mvs) != 0 {
		t.Fatalf("delivered again after max attempts (attempt %d)", mvs[0].GetDeliveryAttempt())
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	ac, err := admin.Dial(ctx, srv.NameServerAddr())
	if err != nil {
		t.Fatal(err)
	}
	defer ac.Close()
	dls, err := ac.DeadLetterQueue(ctx, "gw5")
	if err != nil {
		t.Fatal(err)
	}
	if len(dls) != 1 || string(dls[0].Message.Body) != "poison" {
		t.Fatalf("dead letters of gw5: %+v", dls)
	}
}

func TestGRPCTagAndSQLFilters(t *testing.T) {
	t.Parallel() // each test has its own server on free ports; most of the time is the clients waiting
	srv := runGRPC(t)
	createTopic5(t, srv, "f5", "", 2)
	p := newProducer5(t, srv, rmq.WithTopics("f5"))
	for i := 0; i < 6; i++ {
		msg := &rmq.Message{Topic: "f5", Body: []byte(fmt.Sprint(i))}
		msg.SetTag([]string{"a", "b", "c"}[i%3])
		msg.AddProperty("amount", fmt.Sprint(i*10))
		if _, err := p.Send(context.Background(), msg); err != nil {
			t.Fatal(err)
		}
	}
	bodies := func(mvs []*rmq.MessageView) []string {
		var out []string
		for _, mv := range mvs {
			out = append(out, string(mv.GetBody()))
		}
		slices.Sort(out)
		return out
	}
	tags := newSimpleConsumer5(t, srv, "gtag5", map[string]*rmq.FilterExpression{"f5": rmq.NewFilterExpression("a || c")})
	if got := bodies(receiveN(t, tags, 4, 20*time.Second, true, 15*time.Second)); !slices.Equal(got, []string{"0", "2", "3", "5"}) {
		t.Fatalf("tag filter a||c received %v", got)
	}
	sql := newSimpleConsumer5(t, srv, "gsql5", map[string]*rmq.FilterExpression{"f5": rmq.NewFilterExpressionWithType("amount >= 30 AND TAGS <> 'c'", rmq.SQL92)})
	if got := bodies(receiveN(t, sql, 2, 20*time.Second, true, 15*time.Second)); !slices.Equal(got, []string{"3", "4"}) {
		t.Fatalf("SQL92 filter received %v", got)
	}
	for _, c := range []rmq.SimpleConsumer{tags, sql} {
		if mvs, _ := c.Receive(context.Background(), 8, 20*time.Second); len(mvs) != 0 {
			t.Fatalf("filtered-out message delivered: %s", mvs[0].GetBody())
		}
	}
}

// POP state survives a restart: an acknowledged message does not come again, an unacknowledged one does.
func TestGRPCInFlightSurvivesRestart(t *testing.T) {
	t.Parallel() // each test has its own server on free ports; most of the time is the clients waiting
	opts := grpcOpts(t)
	srv := mqtest.RunServer(t, opts)
	createTopic5(t, srv, "r5", "", 1)
	p := newProducer5(t, srv, rmq.WithTopics("r5"))
	for _, b := range []string{"m0", "m1", "m2"} {
		if _, err := p.Send(context.Background(), &rmq.Message{Topic: "r5", Body: []byte(b)}); err != nil {
			t.Fatal(err)
		}
	}
	c := newSimpleConsumer5(t, srv, "gr5", map[string]*rmq.FilterExpression{"r5": rmq.SUB_ALL})
	got := receiveN(t, c, 3, 2*time.Second, false, 15*time.Second)
	for _, mv := range got {
		if string(mv.GetBody()) != "m1" {
			if err := c.Ack(context.Background(), mv); err != nil {
				t.Fatal(err)
			}
		}
	}
	_ = c.GracefulStop()
	_ = p.GracefulStop()
	opts.GRPCPort = port5(t, srv.GRPCAddr())
	srv = mqtest.Restart(t, srv, opts)
	c2 := newSimpleConsumer5(t, srv, "gr5", map[string]*rmq.FilterExpression{"r5": rmq.SUB_ALL})
	again := receiveN(t, c2, 1, 20*time.Second, true, 20*time.Second)
	if string(again[0].GetBody()) != "m1" || again[0].GetDeliveryAttempt() != 2 {
		t.Fatalf("after restart received %s attempt %d, want m1 attempt 2", again[0].GetBody(), again[0].GetDeliveryAttempt())
	}
	if mvs, _ := c2.Receive(context.Background(), 8, 20*time.Second); len(mvs) != 0 {
		t.Fatalf("acknowledged message %s delivered again after the restart", mvs[0].GetBody())
	}
}

func port5(t *testing.T, addr string) int {
	t.Helper()
	i := strings.LastIndexByte(addr, ':')
	var p int
	if _, err := fmt.Sscan(addr[i+1:], &p); err != nil {
		t.Fatal(err)
	}
	return p
}
