package interop_test

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/apache/rocketmq-client-go/v2"
	"github.com/apache/rocketmq-client-go/v2/admin"
	"github.com/apache/rocketmq-client-go/v2/consumer"
	"github.com/apache/rocketmq-client-go/v2/primitive"
	"github.com/apache/rocketmq-client-go/v2/producer"
	"github.com/apache/rocketmq-client-go/v2/rlog"

	"github.com/tide-run/tide/internal/apachetest"
	"github.com/tide-run/tide/internal/tailbuf"
	"github.com/tide-run/tide/mq"
)

func TestMain(m *testing.M) {
	rlog.SetLogLevel("error") // the official client's logger is process-global
	os.Exit(m.Run())
}

// target is one broker the scenarios run against.
type target struct {
	name       string
	nameServer string
	broker     string
	grpc       string // the RocketMQ 5 gRPC endpoint (tide's, Apache's proxy)
}

// scenario runs one client behaviour against a target and returns its outcome as text; the matrix requires the same
// text from tide and from Apache (and, where it is known, the expected text).
type scenario struct {
	name string
	want string
	run  func(t *testing.T, tg target, id string) string
	// notGo, when set, says why the Go client cannot run this scenario against both targets in one process; the
	// Java client (one JVM per target) still runs it.
	notGo string
}

// Transactions are checked back sooner than the defaults (30 s on both) so the scenario stays short; both sides get
// the same setting.
const txCheck = 3 * time.Second

// TestMatrix starts tide and Apache once and runs every scenario with each official client against both.
func TestMatrix(t *testing.T) {
	apachetest.Require(t)
	var (
		wg     sync.WaitGroup
		apache *apachetest.Cluster
	)
	// Apache takes tens of seconds to start; tide starts meanwhile.
	wg.Add(1)
	go func() {
		defer wg.Done()
		apache = apachetest.StartWith(t, apachetest.Options{BrokerConf: []string{
			fmt.Sprintf("transactionCheckInterval=%d", txCheck.Milliseconds()),
		}})
	}()
	logs := &tailbuf.Buffer{Max: 256 << 10} // tide's log, shown when the test failed
	tide := startTide(t, mq.Options{Logger: slog.New(slog.NewTextHandler(logs, nil)), TransactionCheckInterval: txCheck})
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("tide's log (its last 256 KiB):\n%s", logs)
		}
	})
	wg.Wait()
	if t.Failed() || apache == nil {
		t.FailNow()
	}
	srv := tide.current()
	targets := []target{
		{name: "tide", nameServer: srv.NameServerAddr(), broker: srv.BrokerAddr(), grpc: srv.GRPCAddr()},
		{name: "apache", nameServer: apache.NameServer, broker: apache.Broker, grpc: apache.GRPC},
	}
	// The scenarios share each side's broker, so they run at once; the restart would disturb them, so it runs
	// alone, after them (t.Run of a group returns when its parallel subtests have finished).
	t.Run("parallel", func(t *testing.T) {
		t.Run("go-client", func(t *testing.T) {
			t.Parallel()
			goClient(t, targets)
		})
		// The Java clients run one after the other, beside the Go client: each starts a JVM per target, and on a
		// loaded 2-core machine the 4.x client's 3 s request timeouts against Apache's JVM were the first to give
		// when both ran at once.
		t.Run("java", func(t *testing.T) {
			t.Parallel()
			t.Run("java-remoting-client", func(t *testing.T) { javaClient(t, targets) })
			t.Run("java-5x-client", func(t *testing.T) { java5Client(t, targets) })
			t.Run("mqadmin", func(t *testing.T) { mqadminClient(t, targets) })
		})
		t.Run("tide-mq", func(t *testing.T) {
			t.Parallel()
			tideMQ(t, targets)
		})
	})
	t.Run("broker-restart", func(t *testing.T) {
		brokerRestart(t, targets, []func() error{tide.restart, apache.Restart})
	})
}

func goClient(t *testing.T, targets []target) {
	for _, sc := range scenarios {
		if sc.notGo != "" {
			continue // see scenario.notGo; the Java client runs it
		}
		t.Run(sc.name, func(t *testing.T) {
			t.Parallel()
			out := make([]string, len(targets))
			var wg sync.WaitGroup
			for i, tg := range targets {
				wg.Add(1)
				go func() {
					defer wg.Done()
					t.Run(tg.name, func(t *testing.T) {
						out[i] = sc.run(t, tg, fmt.Sprintf("%s-%s-%d", strings.ReplaceAll(sc.name, " ", "-"), tg.name, time.Now().UnixNano()%1e6))
					})
				}()
			}
			wg.Wait()
			if out[0] != out[1] {
				t.Errorf("tide and Apache differ:\n  tide:   %s\n  apache: %s", out[0], out[1])
			}
			if sc.want != "" && out[1] != sc.want {
				t.Errorf("Apache's outcome %q is not the expected %q (the scenario is wrong)", out[1], sc.want)
			}
		})
	}
}

var scenarios = []scenario{
	{name: "sync send", want: "20 sent, 20 received", run: func(t *testing.T, tg target, id string) string {
		topic := createTopic(t, tg, id, 4)
		p := newProducer(t, tg, id)
		sent := 0
		for i := range 20 {
			if r, err := p.SendSync(ctx(t), primitive.NewMessage(topic, fmt.Appendf(nil, "m%d", i))); err == nil && r.Status == primitive.SendOK {
				sent++
			}
		}
		got := consumeAll(t, tg, id, topic, consumer.MessageSelector{}, 20, nil)
		return fmt.Sprintf("%d sent, %d received", sent, len(got))
	}},
	{name: "async send", want: "20 acknowledged, 20 received", run: func(t *testing.T, tg target, id string) string {
		topic := createTopic(t, tg, id, 4)
		p := newProducer(t, tg, id)
		var wg sync.WaitGroup
		var mu sync.Mutex
		acked := 0
		for i := range 20 {
			wg.Add(1)
			err := p.SendAsync(ctx(t), func(_ context.Context, r *primitive.SendResult, err error) {
				defer wg.Done()
				if err == nil && r.Status == primitive.SendOK {
					mu.Lock()
					acked++
					mu.Unlock()
				}
			}, primitive.NewMessage(topic, fmt.Appendf(nil, "m%d", i)))
			if err != nil {
				wg.Done()
			}
		}
		wg.Wait()
		got := consumeAll(t, tg, id, topic, consumer.MessageSelector{}, 20, nil)
		return fmt.Sprintf("%d acknowledged, %d received", acked, len(got))
	}},
	{name: "oneway send", want: "20 received", run: func(t *testing.T, tg target, id string) string {
		topic := createTopic(t, tg, id, 4)
		p := newProducer(t, tg, id)
		for i := range 20 {
			_ = p.SendOneWay(ctx(t), primitive.NewMessage(topic, fmt.Appendf(nil, "m%d", i)))
		}
		got := consumeAll(t, tg, id, topic, consumer.MessageSelector{}, 20, nil)
		return fmt.Sprintf("%d received", len(got))
	}},
	{name: "batch send", want: "batch of 10: SEND_OK, 10 received, bodies intact", run: func(t *testing.T, tg target, id string) string {
		topic := createTopic(t, tg, id, 1)
		p := newProducer(t, tg, id)
		var msgs []*primitive.Message
		for i := range 10 {
			msgs = append(msgs, primitive.NewMessage(topic, fmt.Appendf(nil, "b%d", i)))
		}
		status := "error"
		if r, err := p.SendSync(ctx(t), msgs...); err == nil {
			status = statusName(r.Status)
		} else {
			status = "error: " + err.Error()
		}
		got := consumeAll(t, tg, id, topic, consumer.MessageSelector{}, 10, nil)
		intact := "bodies intact"
		for i := range 10 {
			if !got[fmt.Sprintf("b%d", i)] {
				intact = "bodies lost"
			}
		}
		return fmt.Sprintf("batch of 10: %s, %d received, %s", status, len(got), intact)
	}},
	{name: "tags", want: "received [a1 b1]", run: func(t *testing.T, tg target, id string) string {
		topic := createTopic(t, tg, id, 2)
		p := newProducer(t, tg, id)
		for _, tag := range []string{"A", "B", "C"} {
			m := primitive.NewMessage(topic, []byte(strings.ToLower(tag)+"1"))
			m.WithTag(tag)
			if _, err := p.SendSync(ctx(t), m); err != nil {
				t.Fatalf("send: %v", err)
			}
		}
		got := consumeAll(t, tg, id, topic, consumer.MessageSelector{Type: consumer.TAG, Expression: "A || B"}, 2, nil)
		return "received " + keys(got)
	}},
	{name: "sql92", want: "received [v6 v7 v8 v9]", run: func(t *testing.T, tg target, id string) string {
		topic := createTopic(t, tg, id, 2)
		p := newProducer(t, tg, id)
		for i := range 10 {
			m := primitive.NewMessage(topic, fmt.Appendf(nil, "v%d", i))
			m.WithProperty("a", fmt.Sprint(i))
			if _, err := p.SendSync(ctx(t), m); err != nil {
				t.Fatalf("send: %v", err)
			}
		}
		got := consumeAll(t, tg, id, topic, consumer.MessageSelector{Type: consumer.SQL92, Expression: "a > 5"}, 4, nil)
		return "received " + keys(got)
	}},
	{name: "keys and properties", want: "keys k1 k2, property x=y, tag T", run: func(t *testing.T, tg target, id string) string {
		topic := createTopic(t, tg, id, 1)
		p := newProducer(t, tg, id)
		m := primitive.NewMessage(topic, []byte("body"))
		m.WithKeys([]string{"k1", "k2"})
		m.WithProperty("x", "y")
		m.WithTag("T")
		if _, err := p.SendSync(ctx(t), m); err != nil {
			t.Fatalf("send: %v", err)
		}
		var got *primitive.MessageExt
		consumeAll(t, tg, id, topic, consumer.MessageSelector{}, 1, func(m *primitive.MessageExt) { got = m })
		return fmt.Sprintf("keys %s, property x=%s, tag %s", got.GetKeys(), got.GetProperty("x"), got.GetTags())
	}},
	{name: "delay level 2", want: "delivered after the 5s level", run: func(t *testing.T, tg target, id string) string {
		topic := createTopic(t, tg, id, 1)
		p := newProducer(t, tg, id)
		m := primitive.NewMessage(topic, []byte("later"))
		m.WithDelayTimeLevel(2)
		start := time.Now()
		if _, err := p.SendSync(ctx(t), m); err != nil {
			t.Fatalf("send: %v", err)
		}
		var at time.Time
		consumeAll(t, tg, id, topic, consumer.MessageSelector{}, 1, func(*primitive.MessageExt) { at = time.Now() })
		if d := at.Sub(start); d < 4500*time.Millisecond {
			return fmt.Sprintf("delivered after %v (before the 5s level)", d.Round(time.Second))
		}
		return "delivered after the 5s level"
	}},
	{name: "retry then dead letter", want: "no %DLQ% route before the first dead letter; attempts [0 1], dead letter: body poison, RETRY_TOPIC = the topic", run: func(t *testing.T, tg target, id string) string {
		topic := createTopic(t, tg, id, 1)
		before := "no %DLQ% route before the first dead letter; "
		if hasRoute(t, tg, "%DLQ%g-"+id) {
			before = "a %DLQ% route before the first dead letter; "
		}
		p := newProducer(t, tg, id)
		if _, err := p.SendSync(ctx(t), primitive.NewMessage(topic, []byte("poison"))); err != nil {
			t.Fatalf("send: %v", err)
		}
		var mu sync.Mutex
		var attempts []int32
		c := newPushConsumer(t, tg, "g-"+id, consumer.WithMaxReconsumeTimes(1))
		if err := c.Subscribe(topic, consumer.MessageSelector{}, func(_ context.Context, msgs ...*primitive.MessageExt) (consumer.ConsumeResult, error) {
			mu.Lock()
			defer mu.Unlock()
			for _, m := range msgs {
				attempts = append(attempts, m.ReconsumeTimes)
			}
			return consumer.ConsumeRetryLater, nil
		}); err != nil {
			t.Fatal(err)
		}
		if err := c.Start(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = c.Shutdown() })
		// Both create %DLQ%<group> when the first message is dead-lettered; wait for it, as an operator would,
		// before reading it.
		waitRoute(t, tg, "%DLQ%g-"+id)
		var dead *primitive.MessageExt
		consumeAllGroup(t, tg, "d-"+id, "%DLQ%g-"+id, consumer.MessageSelector{}, 1, func(m *primitive.MessageExt) { dead = m })
		mu.Lock()
		defer mu.Unlock()
		rt := "RETRY_TOPIC is " + dead.GetProperty("RETRY_TOPIC")
		if dead.GetProperty("RETRY_TOPIC") == topic {
			rt = "RETRY_TOPIC = the topic"
		}
		return before + fmt.Sprintf("attempts %v, dead letter: body %s, %s", attempts, dead.Body, rt)
	}},
	{name: "transaction commit rollback and check", want: "received [checked-commit commit]", run: func(t *testing.T, tg target, id string) string {
		topic := createTopic(t, tg, id, 1)
		p, err := rocketmq.NewTransactionProducer(txListener{}, producer.WithNameServer([]string{tg.nameServer}),
			producer.WithGroupName("tx-"+id), producer.WithInstanceName("i-"+id), producer.WithRetry(2),
			producer.WithSendMsgTimeout(30*time.Second))
		if err != nil {
			t.Fatal(err)
		}
		if err := p.Start(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = p.Shutdown() })
		for _, body := range []string{"commit", "rollback", "checked-commit", "checked-rollback"} {
			if _, err := p.SendMessageInTransaction(ctx(t), primitive.NewMessage(topic, []byte(body))); err != nil {
				t.Fatalf("send %s: %v", body, err)
			}
		}
		got := consumeAll(t, tg, id, topic, consumer.MessageSelector{}, 2, nil)
		// Give a wrongly delivered rollback a moment to show up.
		time.Sleep(2 * txCheck)
		return "received " + keys(got)
	}},
	{name: "ordered by key", want: "30 received, order kept for every key", run: func(t *testing.T, tg target, id string) string {
		topic := createTopic(t, tg, id, 4)
		p := newProducer(t, tg, id, producer.WithQueueSelector(producer.NewHashQueueSelector()))
		for i := range 10 {
			for _, k := range []string{"a", "b", "c"} {
				m := primitive.NewMessage(topic, fmt.Appendf(nil, "%s-%02d", k, i))
				m.WithShardingKey(k)
				if _, err := p.SendSync(ctx(t), m); err != nil {
					t.Fatalf("send: %v", err)
				}
			}
		}
		last := map[string]string{}
		kept := true
		var mu sync.Mutex
		got := consumeAllGroupOpts(t, tg, "c-"+id, topic, consumer.MessageSelector{}, 30, func(m *primitive.MessageExt) {
			mu.Lock()
			defer mu.Unlock()
			k := string(m.Body[:1])
			if string(m.Body) < last[k] {
				kept = false
			}
			last[k] = string(m.Body)
		}, consumer.WithConsumerOrder(true))
		mu.Lock()
		defer mu.Unlock()
		if !kept {
			return fmt.Sprintf("%d received, order broken", len(got))
		}
		return fmt.Sprintf("%d received, order kept for every key", len(got))
	}},
	{name: "broadcasting", want: "consumer 1: 10, consumer 2: 10", run: func(t *testing.T, tg target, id string) string {
		topic := createTopic(t, tg, id, 2)
		group := "b-" + id
		var mu sync.Mutex
		counts := map[int]map[string]bool{0: {}, 1: {}}
		probed := map[int]map[int]bool{0: {}, 1: {}} // consumer -> queues it has pulled a probe from
		for i := range 2 {
			c, err := rocketmq.NewPushConsumer(consumer.WithNameServer([]string{tg.nameServer}), consumer.WithGroupName(group),
				consumer.WithInstance(fmt.Sprintf("i%d-%s", i, group)), consumer.WithConsumerModel(consumer.BroadCasting),
				consumer.WithConsumeFromWhere(consumer.ConsumeFromFirstOffset))
			if err != nil {
				t.Fatal(err)
			}
			if err := c.Subscribe(topic, consumer.MessageSelector{}, func(_ context.Context, msgs ...*primitive.MessageExt) (consumer.ConsumeResult, error) {
				mu.Lock()
				defer mu.Unlock()
				for _, m := range msgs {
					if strings.HasPrefix(string(m.Body), "probe") {
						probed[i][m.Queue.QueueId] = true
						continue
					}
					counts[i][string(m.Body)] = true
				}
				return consumer.ConsumeSuccess, nil
			}); err != nil {
				t.Fatal(err)
			}
			if err := c.Start(); err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { _ = c.Shutdown() })
		}
		// Broadcasting consumers may start at the queues' end (their offsets are local): send the counted messages
		// only once both consumers pull both queues, which probes (sent round robin, not counted) show.
		p := newProducer(t, tg, id)
		deadline := time.Now().Add(60 * time.Second)
		for n := 0; ; n++ {
			mu.Lock()
			ready := len(probed[0]) == 2 && len(probed[1]) == 2
			mu.Unlock()
			if ready {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s: the broadcasting consumers did not pull both queues within 60 s", tg.name)
			}
			if _, err := p.SendSync(ctx(t), primitive.NewMessage(topic, fmt.Appendf(nil, "probe%d", n))); err != nil {
				t.Fatalf("send: %v", err)
			}
			time.Sleep(100 * time.Millisecond)
		}
		for i := range 10 {
			if _, err := p.SendSync(ctx(t), primitive.NewMessage(topic, fmt.Appendf(nil, "m%d", i))); err != nil {
				t.Fatalf("send: %v", err)
			}
		}
		deadline = time.Now().Add(60 * time.Second)
		for time.Now().Before(deadline) {
			mu.Lock()
			done := len(counts[0]) >= 10 && len(counts[1]) >= 10
			mu.Unlock()
			if done {
				break
			}
			time.Sleep(50 * time.Millisecond)
		}
		mu.Lock()
		defer mu.Unlock()
		return fmt.Sprintf("consumer 1: %d, consumer 2: %d", len(counts[0]), len(counts[1]))
	}},
	// A new group on a queue whose first message is still in the store starts at offset 0 whatever its
	// ConsumeFromWhere (the broker answers QUERY_CONSUMER_OFFSET with 0 rather than "none"): that is Apache's
	// behaviour, and tide's by default (DisableZeroOffsetForNewGroups turns it off).
	{name: "consume from timestamp", want: "received [early0 early1 early2 late0 late1 late2]", run: func(t *testing.T, tg target, id string) string {
		topic := createTopic(t, tg, id, 1)
		p := newProducer(t, tg, id)
		for i := range 3 {
			if _, err := p.SendSync(ctx(t), primitive.NewMessage(topic, fmt.Appendf(nil, "early%d", i))); err != nil {
				t.Fatalf("send: %v", err)
			}
		}
		// The timestamp has a resolution of a second: stay clear of the second the early ones were stored in.
		time.Sleep(1100 * time.Millisecond)
		from := time.Now().Add(100 * time.Millisecond)
		time.Sleep(1100 * time.Millisecond)
		for i := range 3 {
			if _, err := p.SendSync(ctx(t), primitive.NewMessage(topic, fmt.Appendf(nil, "late%d", i))); err != nil {
				t.Fatalf("send: %v", err)
			}
		}
		got := consumeAllGroupOpts(t, tg, "c-"+id, topic, consumer.MessageSelector{}, 3, nil,
			consumer.WithConsumeFromWhere(consumer.ConsumeFromTimestamp),
			consumer.WithConsumeTimestamp(from.Format("20060102150405")))
		return "received " + keys(got)
	}},
	{name: "request-reply", want: "reply pong:ping",
		run: func(t *testing.T, tg target, id string) string {
			topic := createTopic(t, tg, id, 1)
			replier := newProducer(t, tg, "r"+id)
			c := newPushConsumer(t, tg, "g-"+id)
			if err := c.Subscribe(topic, consumer.MessageSelector{}, func(_ context.Context, msgs ...*primitive.MessageExt) (consumer.ConsumeResult, error) {
				for _, m := range msgs {
					reply, err := consumer.CreateReplyMessage(m, nil)
					if err != nil {
						continue
					}
					// v2.1.2's CreateReplyMessage parses its body argument as properties instead of using it as the body.
					reply.Body = []byte("pong:" + string(m.Body))
					_, _ = replier.SendSync(context.Background(), reply)
				}
				return consumer.ConsumeSuccess, nil
			}); err != nil {
				t.Fatal(err)
			}
			if err := c.Start(); err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { _ = c.Shutdown() })
			requester := newProducer(t, tg, "q"+id)
			// Apache pushes a reply only to a client whose producer heartbeat it has seen, and the Go client sends
			// its first one about a second after it starts, so a request made at once can lose its reply there
			// (the broker logs "push reply message fail, channel of <client> not found"); tide delivers it to the
			// requester's connection. A requester that retries after a short timeout gets its reply from both.
			var err error
			for range 4 {
				var resp *primitive.Message
				if resp, err = requester.Request(ctx(t), 5*time.Second, primitive.NewMessage(topic, []byte("ping"))); err == nil {
					return "reply " + string(resp.Body)
				}
			}
			if strings.Contains(err.Error(), "wait reply message timeout") {
				return "requests sent, no reply within 4 x 5 s"
			}
			return "request failed: " + err.Error()
		}},
	{name: "traced produce and consume", want: "records naming the message: [Pub SubAfter SubBefore]",
		notGo: "rocketmq-client-go v2.1.2 keeps one trace client per process; its trace examples run in mq/clientexamples"},
	{name: "message trace", want: "a Pub trace record names the message",
		notGo: "rocketmq-client-go v2.1.2 keeps one trace client per process (instance INNER_TRACE_CLIENT_DEFAULT) and " +
			"its WithTrace panics on a nil dispatcher for a second name server",
		run: func(t *testing.T, tg target, id string) string {
			topic := createTopic(t, tg, id, 1)
			p := newProducer(t, tg, id, producer.WithTrace(&primitive.TraceConfig{GroupName: "tr-" + id,
				NamesrvAddrs: []string{tg.nameServer}, Access: primitive.Local}))
			r, err := p.SendSync(ctx(t), primitive.NewMessage(topic, []byte("traced")).WithKeys([]string{"tk-" + id}))
			if err != nil {
				t.Fatalf("send: %v", err)
			}
			var mu sync.Mutex
			found := ""
			waitRoute(t, tg, "RMQ_SYS_TRACE_TOPIC")
			consumeAllGroupOpts(t, tg, "trc-"+id, "RMQ_SYS_TRACE_TOPIC", consumer.MessageSelector{}, 1, func(m *primitive.MessageExt) {
				// A record is fields split by \x01, records by \x02; the first field is the type (Pub, SubBefore, ...).
				b := string(m.Body)
				if strings.Contains(b, r.MsgID) && strings.Contains(b, topic) {
					mu.Lock()
					found = strings.SplitN(b, "\x01", 2)[0]
					mu.Unlock()
				}
			})
			deadline := time.Now().Add(30 * time.Second)
			for {
				mu.Lock()
				f := found
				mu.Unlock()
				if f != "" {
					return "a " + f + " trace record names the message"
				}
				if time.Now().After(deadline) {
					return "no trace record names the message"
				}
				time.Sleep(100 * time.Millisecond)
			}
		}},
}

type txListener struct{}

func (txListener) ExecuteLocalTransaction(m *primitive.Message) primitive.LocalTransactionState {
	switch string(m.Body) {
	case "commit":
		return primitive.CommitMessageState
	case "rollback":
		return primitive.RollbackMessageState
	}
	return primitive.UnknowState
}

func (txListener) CheckLocalTransaction(m *primitive.MessageExt) primitive.LocalTransactionState {
	if string(m.Body) == "checked-commit" {
		return primitive.CommitMessageState
	}
	return primitive.RollbackMessageState
}

func ctx(t *testing.T) context.Context {
	c, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return c
}

func statusName(s primitive.SendStatus) string {
	switch s {
	case primitive.SendOK:
		return "SEND_OK"
	case primitive.SendFlushDiskTimeout:
		return "FLUSH_DISK_TIMEOUT"
	case primitive.SendFlushSlaveTimeout:
		return "FLUSH_SLAVE_TIMEOUT"
	case primitive.SendSlaveNotAvailable:
		return "SLAVE_NOT_AVAILABLE"
	}
	return fmt.Sprintf("status %d", s)
}

// createTopic creates a topic with the official admin client on the target's broker and waits until its route is
// at the name server (Apache's broker registers it with its next heartbeat to the name server).
func createTopic(t *testing.T, tg target, id string, queues int) string {
	t.Helper()
	topic := "t-" + id
	adm, err := admin.NewAdmin(admin.WithResolver(primitive.NewPassthroughResolver([]string{tg.nameServer})))
	if err != nil {
		t.Fatal(err)
	}
	defer adm.Close()
	if err := adm.CreateTopic(ctx(t), admin.WithTopicCreate(topic), admin.WithBrokerAddrCreate(tg.broker),
		admin.WithReadQueueNums(queues), admin.WithWriteQueueNums(queues)); err != nil {
		t.Fatalf("create topic on %s: %v", tg.name, err)
	}
	waitQueues(t, tg, adm, topic, queues)
	return topic
}

// hasRoute tells whether the name server has a route for topic now.
func hasRoute(t *testing.T, tg target, topic string) bool {
	t.Helper()
	adm, err := admin.NewAdmin(admin.WithResolver(primitive.NewPassthroughResolver([]string{tg.nameServer})))
	if err != nil {
		t.Fatal(err)
	}
	defer adm.Close()
	qs, err := adm.FetchPublishMessageQueues(ctx(t), topic)
	return err == nil && len(qs) > 0
}

// waitRoute waits until the name server has a route for topic.
func waitRoute(t *testing.T, tg target, topic string) {
	t.Helper()
	adm, err := admin.NewAdmin(admin.WithResolver(primitive.NewPassthroughResolver([]string{tg.nameServer})))
	if err != nil {
		t.Fatal(err)
	}
	defer adm.Close()
	waitQueues(t, tg, adm, topic, 0)
}

// waitQueues waits up to 90 s until the name server routes topic to queues write queues (any number when 0).
func waitQueues(t *testing.T, tg target, adm admin.Admin, topic string, queues int) {
	t.Helper()
	deadline := time.Now().Add(90 * time.Second)
	for {
		if qs, err := adm.FetchPublishMessageQueues(ctx(t), topic); err == nil && len(qs) > 0 && (queues == 0 || len(qs) == queues) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("no route for %s (%d queues) at %s's name server after 90 s", topic, queues, tg.name)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

func newProducer(t *testing.T, tg target, id string, opts ...producer.Option) rocketmq.Producer {
	t.Helper()
	// Semantics, not latency, are compared: a loaded machine must not turn a slow send into a lost one.
	p, err := rocketmq.NewProducer(append([]producer.Option{producer.WithNameServer([]string{tg.nameServer}), producer.WithRetry(2),
		producer.WithGroupName("p-" + id), producer.WithInstanceName("i-" + id), producer.WithSendMsgTimeout(30 * time.Second)}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	if err := p.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = p.Shutdown() })
	return p
}

func newPushConsumer(t *testing.T, tg target, group string, opts ...consumer.Option) rocketmq.PushConsumer {
	t.Helper()
	c, err := rocketmq.NewPushConsumer(append([]consumer.Option{consumer.WithNameServer([]string{tg.nameServer}),
		consumer.WithGroupName(group), consumer.WithInstance("i-" + group),
		consumer.WithConsumeFromWhere(consumer.ConsumeFromFirstOffset)}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// consumeAll reads topic with a fresh group until it has n distinct bodies (then waits a moment for extras) and
// returns them; each is also given to each if not nil.
func consumeAll(t *testing.T, tg target, id, topic string, sel consumer.MessageSelector, n int, each func(*primitive.MessageExt)) map[string]bool {
	return consumeAllGroup(t, tg, "c-"+id, topic, sel, n, each)
}

func consumeAllGroup(t *testing.T, tg target, group, topic string, sel consumer.MessageSelector, n int, each func(*primitive.MessageExt)) map[string]bool {
	t.Helper()
	return consumeAllGroupOpts(t, tg, group, topic, sel, n, each)
}

func consumeAllGroupOpts(t *testing.T, tg target, group, topic string, sel consumer.MessageSelector, n int, each func(*primitive.MessageExt), opts ...consumer.Option) map[string]bool {
	t.Helper()
	var mu sync.Mutex
	got := map[string]bool{}
	c := newPushConsumer(t, tg, group, opts...)
	if err := c.Subscribe(topic, sel, func(_ context.Context, msgs ...*primitive.MessageExt) (consumer.ConsumeResult, error) {
		mu.Lock()
		defer mu.Unlock()
		for _, m := range msgs {
			got[string(m.Body)] = true
			if each != nil {
				each(m)
			}
		}
		return consumer.ConsumeSuccess, nil
	}); err != nil {
		t.Fatal(err)
	}
	if err := c.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = c.Shutdown() }()
	deadline := time.Now().Add(90 * time.Second)
	for {
		mu.Lock()
		k := len(got)
		mu.Unlock()
		if k >= n {
			break
		}
		if time.Now().After(deadline) {
			mu.Lock()
			defer mu.Unlock()
			t.Errorf("%s: %d of %d messages of %s after 90 s: %s", tg.name, k, n, topic, keys(got))
			return copyMap(got)
		}
		time.Sleep(50 * time.Millisecond)
	}
	time.Sleep(500 * time.Millisecond) // extras (a filter that lets too much through) arrive by now
	mu.Lock()
	defer mu.Unlock()
	return copyMap(got)
}

func copyMap(m map[string]bool) map[string]bool {
	c := make(map[string]bool, len(m))
	for k, v := range m {
		c[k] = v
	}
	return c
}

func keys(m map[string]bool) string {
	var ks []string
	for k := range m {
		ks = append(ks, k)
	}
	sort.Strings(ks)
	return fmt.Sprint(ks)
}
