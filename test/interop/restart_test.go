package interop_test

import (
	"context"
	"fmt"
	"net"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/apache/rocketmq-client-go/v2/consumer"
	"github.com/apache/rocketmq-client-go/v2/primitive"

	"github.com/tide-run/tide/mq"
)

// tideServer is tide's embedded broker for the matrix, restartable on the same ports and data directory (what
// `tide up` does when it is stopped and started again).
type tideServer struct {
	opts mq.Options
	mu   sync.Mutex
	srv  *mq.Server
}

// startTide starts tide's name server and broker on free ports in a temporary data directory and shuts down
// whichever instance runs when the test ends.
func startTide(t *testing.T, opts mq.Options) *tideServer {
	t.Helper()
	opts.DataDir = t.TempDir()
	ts := &tideServer{opts: opts}
	srv, err := ts.start()
	if err != nil {
		t.Fatal(err)
	}
	ts.srv = srv
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = ts.current().Shutdown(ctx)
	})
	return ts
}

func (ts *tideServer) start() (*mq.Server, error) {
	srv, err := mq.New(ts.opts)
	if err != nil {
		return nil, err
	}
	if err := srv.Start(context.Background()); err != nil {
		return nil, err
	}
	return srv, nil
}

func (ts *tideServer) current() *mq.Server {
	ts.mu.Lock()
	defer ts.mu.Unlock()
	return ts.srv
}

// restart shuts the server down (it persists offsets and flushes the store) and starts a new one on the same ports
// and data directory.
func (ts *tideServer) restart() error {
	ts.mu.Lock()
	defer ts.mu.Unlock()
	for _, a := range []struct {
		addr string
		port *int
	}{{ts.srv.NameServerAddr(), &ts.opts.NameServerPort}, {ts.srv.BrokerAddr(), &ts.opts.BrokerPort}} {
		_, p, err := net.SplitHostPort(a.addr)
		if err != nil {
			return err
		}
		if *a.port, err = strconv.Atoi(p); err != nil {
			return err
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := ts.srv.Shutdown(ctx); err != nil {
		return fmt.Errorf("shutdown: %w", err)
	}
	srv, err := ts.start()
	if err != nil {
		return fmt.Errorf("start again on the same ports: %w", err)
	}
	ts.srv = srv
	return nil
}

// restartN messages are sent in the restart scenario, half before the restart and half across it.
const restartN = 40

// brokerRestart runs the restart scenario with the Go client and, beside it on a topic of its own, with the Java
// remoting client, against both targets at once (restart[i] restarts targets[i]), and requires the same outcome
// from both targets, and the expected one, for each client. It must run alone: the restart disturbs every other
// client of the target.
func brokerRestart(t *testing.T, targets []target, restart []func() error) {
	want := fmt.Sprintf("%d sent, %d received at least once, a new group reads %d", restartN, restartN, restartN)
	cp := compileScenarios(t)
	out, javaOut := make([]string, len(targets)), make([]string, len(targets))
	var wg sync.WaitGroup
	for i, tg := range targets {
		wg.Add(1)
		go func() {
			defer wg.Done()
			t.Run(tg.name, func(t *testing.T) {
				id := fmt.Sprintf("restart-%s-%d", tg.name, time.Now().UnixNano()%1e6)
				java := startJavaRestart(t, tg, cp, createTopic(t, tg, "j"+id, 4))
				out[i] = restartScenario(t, tg, id, restart[i], java.waitHalf, func() { javaOut[i] = java.goOn() })
			})
		}()
	}
	wg.Wait()
	for _, c := range []struct {
		client string
		out    []string
	}{{"Go", out}, {"Java", javaOut}} {
		if c.out[0] != c.out[1] {
			t.Errorf("tide and Apache differ with the %s client:\n  tide:   %s\n  apache: %s", c.client, c.out[0], c.out[1])
		}
		if c.out[1] != want {
			t.Errorf("Apache's outcome with the %s client %q is not the expected %q (the scenario is wrong)", c.client, c.out[1], want)
		}
	}
}

// restartScenario: a push consumer is consuming a topic; a producer sends half of restartN messages; once the
// consumer has about half of those, the whole target (name server and broker) restarts while the producer goes on
// sending the rest, retrying what fails while the broker is away. The outcome counts distinct bodies: redelivery of
// messages whose offsets were not yet committed is allowed (at least once), loss is not. Then a new group reads the
// topic from its start, which checks that the store kept what was sent before the restart (the first consumer may
// have had those in memory already). beforeRestart is called once the first half was consumed (the Java client's
// side waits for its own first half there); whileRestarting runs once the restart has begun, beside the sends
// across it, and has returned by the time the outcome is read.
func restartScenario(t *testing.T, tg target, id string, restart func() error, beforeRestart func() error, whileRestarting func()) string {
	topic := createTopic(t, tg, id, 4)
	var mu sync.Mutex
	got := map[string]int{}
	distinct := func() int { mu.Lock(); defer mu.Unlock(); return len(got) }
	c := newPushConsumer(t, tg, "g-"+id)
	if err := c.Subscribe(topic, consumer.MessageSelector{}, func(_ context.Context, msgs ...*primitive.MessageExt) (consumer.ConsumeResult, error) {
		mu.Lock()
		defer mu.Unlock()
		for _, m := range msgs {
			got[string(m.Body)]++
		}
		return consumer.ConsumeSuccess, nil
	}); err != nil {
		t.Fatal(err)
	}
	if err := c.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Shutdown() })
	p := newProducer(t, tg, id)

	// send retries one message until the broker takes it: a restarting broker refuses connections for a while
	// (Apache's JVMs take tens of seconds), and the client's own retries end within milliseconds.
	sent := 0
	send := func(i int) {
		deadline := time.Now().Add(3 * time.Minute)
		for {
			sctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			r, err := p.SendSync(sctx, primitive.NewMessage(topic, fmt.Appendf(nil, "r%02d", i)))
			cancel()
			if err == nil && r.Status == primitive.SendOK {
				sent++
				return
			}
			if time.Now().After(deadline) {
				t.Errorf("%s: message %d not sent within 3 minutes: %v", tg.name, i, err)
				return
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
	waitDistinct := func(n int, d time.Duration) bool {
		deadline := time.Now().Add(d)
		for distinct() < n {
			if time.Now().After(deadline) {
				return false
			}
			time.Sleep(50 * time.Millisecond)
		}
		return true
	}

	for i := range restartN / 2 {
		send(i)
	}
	if !waitDistinct(restartN/2, 90*time.Second) {
		t.Fatalf("%s: %d of the first %d messages consumed before the restart", tg.name, distinct(), restartN/2)
	}
	if err := beforeRestart(); err != nil {
		t.Fatalf("%s: %v", tg.name, err)
	}
	restarted := make(chan error, 1)
	start := time.Now()
	go func() { restarted <- restart() }()
	other := make(chan struct{})
	go func() { whileRestarting(); close(other) }()
	defer func() { <-other }()
	// The rest goes out across the restart, paced so that on a broker that is back within milliseconds (tide) some
	// sends still meet it down or just restarted.
	for i := restartN / 2; i < restartN; i++ {
		send(i)
		time.Sleep(20 * time.Millisecond)
	}
	if err := <-restarted; err != nil {
		t.Fatalf("%s: restart: %v", tg.name, err)
	}
	t.Logf("%s restarted in %v", tg.name, time.Since(start).Round(time.Millisecond))
	if !waitDistinct(restartN, 2*time.Minute) {
		mu.Lock()
		missing := []string{}
		for i := range restartN {
			if b := fmt.Sprintf("r%02d", i); got[b] == 0 {
				missing = append(missing, b)
			}
		}
		mu.Unlock()
		t.Errorf("%s: after the restart, not received within 2 minutes: %v", tg.name, missing)
	}
	t.Logf("%s: all received %v after the restart began", tg.name, time.Since(start).Round(time.Millisecond))
	// What was stored before the restart is still there: a new group reads the whole topic from the start.
	reread := consumeAllGroup(t, tg, "n-"+id, topic, consumer.MessageSelector{}, restartN, nil)
	return fmt.Sprintf("%d sent, %d received at least once, a new group reads %d", sent, distinct(), len(reread))
}
