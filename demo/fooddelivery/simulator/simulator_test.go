package simulator

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	clocktesting "k8s.io/utils/clock/testing"

	"github.com/tide-run/tide/demo/fooddelivery"
)

// recorder is a Sender that keeps what it was given. It stands in for the broker only in the scheduling tests
// (which need a fake clock); simulator_rocketmq_test.go runs the same simulator against the embedded broker.
type recorder struct {
	mu       sync.Mutex
	msgs     map[string]Message
	attempts map[string]int
	fail     func(key string) bool
}

func newRecorder() *recorder {
	return &recorder{msgs: map[string]Message{}, attempts: map[string]int{}}
}

func (r *recorder) Send(ctx context.Context, m Message) (string, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.attempts[m.Key]++
	if r.fail != nil && r.fail(m.Key) {
		return "", errors.New("broker says no")
	}
	if _, dup := r.msgs[m.Key]; dup {
		return "", fmt.Errorf("order %s sent twice", m.Key)
	}
	r.msgs[m.Key] = m
	return "msg-" + m.Key, nil
}

func (r *recorder) count() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.msgs)
}

// waitFor polls cond until it holds or the deadline passes.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(time.Millisecond)
	}
}

// An 18-second day (one hour per second) at 100 orders/s peak: 300 orders. The fake clock is stepped a second at a
// time and after each step exactly Schedule.Due(t) orders have been sent: none in the valleys, most at lunch.
func TestSimulatorFollowsTheDay(t *testing.T) {
	fc := clocktesting.NewFakeClock(time.Unix(1_700_000_000, 0))
	rec := newRecorder()
	var progress bytes.Buffer
	pw := &syncWriter{w: &progress}
	sim, err := New(Options{Sender: rec, Clock: fc, DayLength: 18 * time.Second, PeakRate: 100, Concurrency: 4, Logger: quiet,
		Progress: pw, ProgressInterval: 5 * time.Second, RunID: 42})
	if err != nil {
		t.Fatal(err)
	}
	if sim.Expected() != 300 {
		t.Fatalf("expected %d orders, want 300", sim.Expected())
	}
	done := make(chan struct{})
	var res Result
	var runErr error
	go func() { res, runErr = sim.Run(context.Background()); close(done) }()
	waitFor(t, "the scheduler to start", func() bool { return fc.HasWaiters() })

	perSecond := make([]int, 18)
	prev := 0
	for sec := 1; sec <= 18; sec++ {
		fc.Step(time.Second)
		want := sim.Schedule().Due(time.Duration(sec) * time.Second)
		waitFor(t, fmt.Sprintf("%d orders at %ds", want, sec), func() bool { return rec.count() == want })
		perSecond[sec-1] = want - prev
		prev = want
	}
	<-done
	if runErr != nil {
		t.Fatal(runErr)
	}
	if len(res.Sent) != 300 || len(res.Failed) != 0 || res.Scheduled != 300 {
		t.Fatalf("result: %d sent, %d failed, %d scheduled", len(res.Sent), len(res.Failed), res.Scheduled)
	}
	// Hours 5-6 (seconds 0-1), 10 (second 5: 10:00-11:00 holds lunch's start at 10:45), afternoon 14-17
	// (seconds 9-11) and evening 20-23 (seconds 15-17) are quiet; lunch's hours carry the most orders.
	for _, sec := range []int{0, 1, 9, 10, 11, 15, 16, 17} {
		if perSecond[sec] != 0 {
			t.Errorf("orders in quiet second %d (%02d:00): %d", sec, 5+sec, perSecond[sec])
		}
	}
	sum := func(from, to int) (n int) {
		for _, v := range perSecond[from : to+1] {
			n += v
		}
		return n
	}
	breakfast, lunch, dinner := sum(1, 4), sum(5, 8), sum(12, 14)
	if !(lunch > dinner && dinner > breakfast && breakfast > 0) {
		t.Errorf("orders per meal: breakfast %d, lunch %d, dinner %d; want lunch > dinner > breakfast: %v",
			breakfast, lunch, dinner, perSecond)
	}
	// Every order is the seed's order JSON and valid; ids carry the run id.
	for _, s := range res.Sent {
		m := rec.msgs[s.OrderID]
		if _, err := fooddelivery.ParseOrder(m.Body); err != nil {
			t.Fatalf("order %s: %v", s.OrderID, err)
		}
		if !strings.HasPrefix(s.OrderID, "42") || m.Tag != "completed" || m.Topic != "orders" || s.MsgID != "msg-"+s.OrderID {
			t.Fatalf("sent %+v as %+v", s, m)
		}
	}
	// Non-terminal progress: one line per interval (5 s, 10 s, 15 s) and a final one.
	lines := strings.Split(strings.TrimSpace(pw.String()), "\n")
	if len(lines) != 4 || !strings.Contains(lines[3], "sent 300/300") || strings.Contains(pw.String(), "\r") {
		t.Fatalf("progress output:\n%s", pw.String())
	}
}

var quiet = slog.New(slog.DiscardHandler)

type syncWriter struct {
	mu sync.Mutex
	w  *bytes.Buffer
}

func (s *syncWriter) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.w.Write(p)
}

func (s *syncWriter) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.w.String()
}

// runToEnd runs a simulation on a fake clock, stepping it until Run returns.
func runToEnd(t *testing.T, opts Options) (Result, error) {
	t.Helper()
	fc := clocktesting.NewFakeClock(time.Unix(1_700_000_000, 0))
	opts.Clock = fc
	sim, err := New(opts)
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	var res Result
	var runErr error
	go func() { res, runErr = sim.Run(context.Background()); close(done) }()
	for {
		select {
		case <-done:
			return res, runErr
		default:
		}
		if fc.HasWaiters() {
			fc.Step(time.Second)
		}
		time.Sleep(100 * time.Microsecond)
	}
}

func TestSimulatorMalformedAndFailedOrdersAreAccountedFor(t *testing.T) {
	rec := newRecorder()
	rec.fail = func(key string) bool { return strings.HasSuffix(key, "7") } // ids ending in 7 never get through
	res, err := runToEnd(t, Options{Sender: rec, DayLength: 18 * time.Second, PeakRate: 100, MalformedEvery: 10,
		SendAttempts: 2, RunID: 7, Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Sent)+len(res.Failed) != 300 || len(res.Failed) != 30 {
		t.Fatalf("%d sent + %d failed, want 270 + 30", len(res.Sent), len(res.Failed))
	}
	for _, id := range res.Failed {
		if rec.attempts[id] != 2 {
			t.Fatalf("failed order %s tried %d times, want 2", id, rec.attempts[id])
		}
	}
	malformed := 0
	for _, s := range res.Sent {
		_, perr := fooddelivery.ParseOrder(rec.msgs[s.OrderID].Body)
		if s.Malformed != (perr != nil) {
			t.Fatalf("order %s: malformed=%v but parse error %v", s.OrderID, s.Malformed, perr)
		}
		if s.Malformed {
			malformed++
			if !strings.Contains(perr.Error(), "order.chargeMoney") {
				t.Fatalf("malformed order error: %v", perr)
			}
		}
	}
	if malformed != 30 { // every 10th of 300 and none of them ends in 7 (they end in 9)
		t.Fatalf("malformed = %d, want 30", malformed)
	}
}

func TestSimulatorCancelAccountsForEveryScheduledOrder(t *testing.T) {
	fc := clocktesting.NewFakeClock(time.Unix(1_700_000_000, 0))
	block := make(chan struct{})
	sender := senderFunc(func(ctx context.Context, m Message) (string, error) {
		select {
		case <-block:
			return "id", nil
		case <-ctx.Done():
			return "", ctx.Err()
		}
	})
	sim, err := New(Options{Sender: sender, Clock: fc, DayLength: 18 * time.Second, PeakRate: 100, Concurrency: 2, Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	var res Result
	var runErr error
	go func() { res, runErr = sim.Run(ctx); close(done) }()
	waitFor(t, "the scheduler", fc.HasWaiters)
	fc.Step(8 * time.Second) // into lunch: dozens of orders due, two producers stuck
	waitFor(t, "orders in flight", func() bool { return sim.Progress().InFlight > 2 })
	cancel()
	<-done
	if !errors.Is(runErr, context.Canceled) {
		t.Fatalf("err = %v, want context.Canceled", runErr)
	}
	if res.Scheduled == 0 || len(res.Sent)+len(res.Failed) != res.Scheduled || len(res.Sent) != 0 {
		t.Fatalf("scheduled %d, sent %d, failed %d", res.Scheduled, len(res.Sent), len(res.Failed))
	}
	close(block)
}

type senderFunc func(ctx context.Context, m Message) (string, error)

func (f senderFunc) Send(ctx context.Context, m Message) (string, error) { return f(ctx, m) }

func TestSimulatorOptionsErrors(t *testing.T) {
	rec := newRecorder()
	bad := []Options{
		{},
		{Sender: rec, DayLength: time.Millisecond},
		{Sender: rec, PeakRate: -1},
		{Sender: rec, Concurrency: -3},
		{Sender: rec, MalformedEvery: -1},
		{Sender: rec, Day: &fooddelivery.Day{StartHour: 3, EndHour: 1}},
	}
	for i, o := range bad {
		if _, err := New(o); !errors.Is(err, ErrOptions) {
			t.Errorf("case %d: err = %v, want ErrOptions", i, err)
		}
	}
}

func TestFormatProgressAndTerminalStyle(t *testing.T) {
	line := FormatProgress(Progress{Clock: "12:04", Meal: "lunch", Rate: 198.4, Sent: 2345, InFlight: 8, Fraction: 0.39}, 6000)
	for _, want := range []string{"12:04 lunch", "rate  198/s", "sent 2345/6000", "in flight 8", "day  39%"} {
		if !strings.Contains(line, want) {
			t.Errorf("%q lacks %q", line, want)
		}
	}
	if isTerminal(&bytes.Buffer{}) {
		t.Error("a buffer is not a terminal")
	}
}

func TestOrderIDsAndOrdersAreDeterministic(t *testing.T) {
	at := time.Unix(1584932320, 0)
	a, b := makeOrder(1700000000, 12, at, false), makeOrder(1700000000, 12, at, false)
	if a != b || a.OrderID != "17000000000000012" {
		t.Fatalf("%+v vs %+v", a, b)
	}
	if err := a.Validate(); err != nil {
		t.Fatal(err)
	}
}

func TestResolveNameServers(t *testing.T) {
	got, err := ResolveNameServers(context.Background(), []string{"localhost:9876", "10.0.0.1:9877;10.0.0.2:9878"})
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 3 || !strings.HasSuffix(got[0], ":9876") || got[1] != "10.0.0.1:9877" {
		t.Fatalf("resolved %v", got)
	}
	if _, err := ResolveNameServers(context.Background(), []string{"no-port"}); err == nil {
		t.Fatal("address without port accepted")
	}
}
