package simulator_test

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/apache/rocketmq-client-go/v2"
	"github.com/apache/rocketmq-client-go/v2/consumer"
	"github.com/apache/rocketmq-client-go/v2/primitive"
	"github.com/apache/rocketmq-client-go/v2/rlog"

	"github.com/tide-run/tide/demo/fooddelivery"
	"github.com/tide-run/tide/demo/fooddelivery/simulator"
	"github.com/tide-run/tide/mq"
	"github.com/tide-run/tide/mq/mqtest"
)

var quiet = slog.New(slog.DiscardHandler)

func TestMain(m *testing.M) {
	rlog.SetLogLevel("error") // the official client's logger is process-global
	os.Exit(m.Run())
}

// The simulator against tide's embedded RocketMQ, consumed back with the official client: every order the broker
// acknowledged arrives, once per id, with the seed's JSON, its tag and key, and a born time close to the send time.
func TestSimulatorIntoEmbeddedRocketMQ(t *testing.T) {
	ctx := context.Background()
	srv := mqtest.RunServer(t, mq.Options{})

	sender, err := simulator.NewRocketMQSender(ctx, simulator.RocketMQOptions{
		NameServers: []string{srv.NameServerAddr()}, Group: fmt.Sprintf("sim-%d", time.Now().UnixNano())})
	if err != nil {
		t.Fatal(err)
	}
	defer sender.Close()
	topic := fmt.Sprintf("orders-%d", time.Now().UnixNano())
	// A 3-second day at 200 orders/s peak: 100 orders, every 10th malformed.
	sim, err := simulator.New(simulator.Options{Sender: sender, Topic: topic, DayLength: 3 * time.Second,
		PeakRate: 200, Concurrency: 4, MalformedEvery: 10, Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	res, err := sim.Run(ctx)
	if err != nil {
		t.Fatal(err)
	}
	ranUntil := time.Now()
	if len(res.Sent) != 100 || len(res.Failed) != 0 {
		t.Fatalf("sent %d, failed %d; want 100, 0", len(res.Sent), len(res.Failed))
	}
	sentAt := map[string]simulator.Sent{}
	for _, s := range res.Sent {
		sentAt[s.OrderID] = s
	}

	type got struct {
		body []byte
		tag  string
		born time.Time
		n    int
	}
	var mu sync.Mutex
	received := map[string]*got{}
	c, err := rocketmq.NewPushConsumer(
		consumer.WithNsResolver(primitive.NewPassthroughResolver([]string{srv.NameServerAddr()})),
		consumer.WithGroupName(fmt.Sprintf("check-%d", time.Now().UnixNano())),
		consumer.WithInstance(fmt.Sprintf("check-%d", time.Now().UnixNano())),
		consumer.WithConsumeFromWhere(consumer.ConsumeFromFirstOffset))
	if err != nil {
		t.Fatal(err)
	}
	err = c.Subscribe(topic, consumer.MessageSelector{}, func(_ context.Context, msgs ...*primitive.MessageExt) (consumer.ConsumeResult, error) {
		mu.Lock()
		defer mu.Unlock()
		for _, m := range msgs {
			g := received[m.GetKeys()]
			if g == nil {
				g = &got{body: m.Body, tag: m.GetTags(), born: time.UnixMilli(m.BornTimestamp)}
				received[m.GetKeys()] = g
			}
			g.n++
		}
		return consumer.ConsumeSuccess, nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Start(); err != nil {
		t.Fatal(err)
	}
	defer c.Shutdown()

	deadline := time.Now().Add(30 * time.Second)
	for {
		mu.Lock()
		n := len(received)
		mu.Unlock()
		if n >= len(res.Sent) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("consumed %d of %d orders", n, len(res.Sent))
		}
		time.Sleep(20 * time.Millisecond)
	}
	mu.Lock()
	defer mu.Unlock()
	malformed := 0
	for id, g := range received {
		s, ok := sentAt[id]
		if !ok {
			t.Fatalf("consumed an order that was not sent: %s", id)
		}
		_, perr := fooddelivery.ParseOrder(g.body)
		if s.Malformed != (perr != nil) {
			t.Fatalf("order %s: malformed=%v, parse error %v", id, s.Malformed, perr)
		}
		if s.Malformed {
			malformed++
		}
		if g.tag != "completed" {
			t.Fatalf("order %s: tag %q", id, g.tag)
		}
		// Born when the client built the request: after SentAt (less the millisecond the timestamp drops) and
		// before the run ended; how long after SentAt depends on the machine's load (route lookups, retries).
		if g.born.Before(s.SentAt.Add(-time.Millisecond)) || g.born.After(ranUntil) {
			t.Fatalf("order %s: born %v, outside [sent %v, run ended %v]", id, g.born, s.SentAt, ranUntil)
		}
	}
	if malformed != 10 {
		t.Fatalf("malformed %d, want 10", malformed)
	}
}
