package simulator

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"time"

	"k8s.io/utils/clock"

	"github.com/tide-run/tide/demo/fooddelivery"
)

// Options configure a simulation. The zero value of each field means its documented default.
type Options struct {
	// Sender produces the messages. Required (NewRocketMQSender for RocketMQ).
	Sender Sender
	// Topic to produce to. Default "orders".
	Topic string
	// Day is the shape of the day. Default fooddelivery.DefaultDay().
	Day *fooddelivery.Day
	// DayLength is how long the simulated day lasts. Default 3 minutes.
	DayLength time.Duration
	// PeakRate is the order rate at the day's busiest moment, in orders per second. Default 200.
	PeakRate float64
	// Concurrency is the number of concurrent producers. Default 8.
	Concurrency int
	// Duration is how long to run; beyond one DayLength the day repeats. Default DayLength.
	Duration time.Duration
	// MalformedEvery makes every n-th order malformed (an invalid chargeMoney), to exercise the dead-letter path.
	// Default 0: none.
	MalformedEvery int
	// SendAttempts is how many times one order is tried (each try already includes the client's own retries)
	// before it counts as failed. Default 3.
	SendAttempts int
	// RunID prefixes the order ids; default the Unix seconds of the start, so runs sharing a database never collide.
	RunID int64
	// Progress receives the progress line; nil for none. On a terminal the line is redrawn in place (carriage
	// return); otherwise one line is written per ProgressInterval.
	Progress io.Writer
	// ProgressInterval defaults to 250ms on a terminal and 5s otherwise.
	ProgressInterval time.Duration
	// Tick is how often the scheduler hands due orders to the producers. Default 10ms.
	Tick time.Duration
	// Clock drives the schedule. Default the real clock.
	Clock clock.WithTicker
	// Logger; default slog.Default(). The simulator adds component=order-simulator.
	Logger *slog.Logger
}

// Sent is one order the broker acknowledged.
type Sent struct {
	OrderID   string
	MsgID     string
	SentAt    time.Time // just before the send: the message's born time give or take the client's work
	Malformed bool
}

// Result is what a run produced. Every scheduled order is in exactly one of Sent and Failed.
type Result struct {
	RunID     int64
	Started   time.Time
	Ended     time.Time
	Scheduled int
	Sent      []Sent
	Failed    []string // order ids the broker never acknowledged (not sent, so not lost downstream)
}

// Progress is a snapshot of a running simulation.
type Progress struct {
	Elapsed   time.Duration
	Fraction  float64 // of the day (beyond 1 on later days)
	Clock     string  // simulated time of day, "HH:MM"
	Meal      string  // "" in a valley
	Rate      float64 // scheduled orders per second now
	Scheduled int
	Sent      int
	Failed    int
	InFlight  int // scheduled, not yet acknowledged or failed
}

// Simulator runs one simulation. Use New, then Run once.
type Simulator struct {
	opts  Options
	sched fooddelivery.Schedule
	log   *slog.Logger

	// mu guards the counters and result below; the workers append, Progress and Run read.
	mu        sync.Mutex
	started   time.Time
	scheduled int
	result    Result
}

// ErrOptions is wrapped by every options error from New.
var ErrOptions = errors.New("simulator options")

// New checks the options and fills in defaults.
func New(opts Options) (*Simulator, error) {
	if opts.Sender == nil {
		return nil, fmt.Errorf("%w: Sender is required", ErrOptions)
	}
	if opts.Topic == "" {
		opts.Topic = "orders"
	}
	day := fooddelivery.DefaultDay()
	if opts.Day != nil {
		day = *opts.Day
	}
	if err := day.Validate(); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrOptions, err)
	}
	if opts.DayLength == 0 {
		opts.DayLength = 3 * time.Minute
	}
	if opts.PeakRate == 0 {
		opts.PeakRate = 200
	}
	if opts.Concurrency == 0 {
		opts.Concurrency = 8
	}
	if opts.Duration == 0 {
		opts.Duration = opts.DayLength
	}
	if opts.SendAttempts == 0 {
		opts.SendAttempts = 3
	}
	if opts.Tick == 0 {
		opts.Tick = 10 * time.Millisecond
	}
	switch {
	case opts.DayLength < time.Second:
		return nil, fmt.Errorf("%w: day length %v: want at least 1s", ErrOptions, opts.DayLength)
	case opts.PeakRate < 0 || opts.PeakRate > 1e6:
		return nil, fmt.Errorf("%w: peak rate %v: want 0 < rate <= 1e6 orders/s", ErrOptions, opts.PeakRate)
	case opts.Concurrency < 1 || opts.Concurrency > 1024:
		return nil, fmt.Errorf("%w: concurrency %d: want 1..1024", ErrOptions, opts.Concurrency)
	case opts.Duration < 0:
		return nil, fmt.Errorf("%w: duration %v: want > 0", ErrOptions, opts.Duration)
	case opts.MalformedEvery < 0:
		return nil, fmt.Errorf("%w: malformed-every %d: want >= 0", ErrOptions, opts.MalformedEvery)
	case opts.SendAttempts < 1 || opts.Tick < 0:
		return nil, fmt.Errorf("%w: send attempts must be >= 1 and tick > 0", ErrOptions)
	}
	if opts.Clock == nil {
		opts.Clock = clock.RealClock{}
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	return &Simulator{opts: opts, log: opts.Logger.With("component", "order-simulator"),
		sched: fooddelivery.Schedule{Day: day, DayLength: opts.DayLength, PeakRate: opts.PeakRate}}, nil
}

// Schedule is the schedule the simulator follows.
func (s *Simulator) Schedule() fooddelivery.Schedule { return s.sched }

// Expected is how many orders a full run schedules.
func (s *Simulator) Expected() int { return s.sched.Due(s.opts.Duration) }

// Run plays the day until Duration has passed and every scheduled order is acknowledged or has failed, or until ctx
// ends (then the orders not yet handed to a producer are not sent, and the error wraps ctx.Err()). The Result is
// complete in both cases: it accounts for every order that was scheduled.
func (s *Simulator) Run(ctx context.Context) (Result, error) {
	clk := s.opts.Clock
	s.mu.Lock()
	s.started = clk.Now()
	runID := s.opts.RunID
	if runID == 0 {
		runID = s.started.Unix()
	}
	s.result = Result{RunID: runID, Started: s.started}
	s.mu.Unlock()

	jobs := make(chan int, 4096)
	var wg sync.WaitGroup
	for w := 0; w < s.opts.Concurrency; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for n := range jobs {
				s.produce(ctx, runID, n)
			}
		}()
	}

	stopProgress := s.startProgress()
	ticker := clk.NewTicker(s.opts.Tick)
	var runErr error
	queued := 0
schedule:
	for {
		elapsed := min(clk.Since(s.started), s.opts.Duration)
		due := s.sched.Due(elapsed)
		for ; queued < due; queued++ {
			s.mu.Lock()
			s.scheduled++
			s.mu.Unlock()
			select {
			case jobs <- queued:
			case <-ctx.Done():
				// Scheduled but never handed over: account for it as failed.
				s.fail(OrderID(runID, queued))
				queued++
				runErr = ctx.Err()
				break schedule
			}
		}
		if elapsed >= s.opts.Duration {
			break
		}
		select {
		case <-ticker.C():
		case <-ctx.Done():
			runErr = ctx.Err()
			break schedule
		}
	}
	ticker.Stop()
	close(jobs)
	wg.Wait()
	stopProgress()

	s.mu.Lock()
	defer s.mu.Unlock()
	s.result.Scheduled = s.scheduled
	s.result.Ended = clk.Now()
	res := s.result
	res.Sent = append([]Sent(nil), s.result.Sent...)
	res.Failed = append([]string(nil), s.result.Failed...)
	if runErr != nil {
		return res, fmt.Errorf("simulator: stopped after %d of %d orders: %w", len(res.Sent), s.Expected(), runErr)
	}
	return res, nil
}

// produce sends order n, retrying up to SendAttempts, and records the outcome.
func (s *Simulator) produce(ctx context.Context, runID int64, n int) {
	id := OrderID(runID, n)
	if ctx.Err() != nil {
		s.fail(id)
		return
	}
	malformed := s.opts.MalformedEvery > 0 && (n+1)%s.opts.MalformedEvery == 0
	now := s.opts.Clock.Now()
	o := makeOrder(runID, n, now, malformed)
	body, err := json.Marshal(o)
	if err != nil { // cannot happen: Order is all strings
		s.fail(id)
		return
	}
	msg := Message{Topic: s.opts.Topic, Tag: o.OrderStatus, Key: id, Body: body}
	var lastErr error
	for attempt := 0; attempt < s.opts.SendAttempts && ctx.Err() == nil; attempt++ {
		sentAt := s.opts.Clock.Now()
		msgID, err := s.opts.Sender.Send(ctx, msg)
		if err == nil {
			s.mu.Lock()
			s.result.Sent = append(s.result.Sent, Sent{OrderID: id, MsgID: msgID, SentAt: sentAt, Malformed: malformed})
			s.mu.Unlock()
			return
		}
		lastErr = err
	}
	s.log.Warn("order not sent", "orderId", id, "err", lastErr)
	s.fail(id)
}

func (s *Simulator) fail(id string) {
	s.mu.Lock()
	s.result.Failed = append(s.result.Failed, id)
	s.mu.Unlock()
}

// Progress returns a snapshot; safe to call while Run runs.
func (s *Simulator) Progress() Progress {
	s.mu.Lock()
	started, scheduled, sent, failed := s.started, s.scheduled, len(s.result.Sent), len(s.result.Failed)
	s.mu.Unlock()
	var elapsed time.Duration
	if !started.IsZero() {
		elapsed = min(s.opts.Clock.Since(started), s.opts.Duration)
	}
	f := s.sched.Fraction(elapsed)
	return Progress{Elapsed: elapsed, Fraction: f, Clock: s.sched.Day.Clock(f), Meal: s.sched.Day.MealAt(f),
		Rate: s.sched.Rate(elapsed), Scheduled: scheduled, Sent: sent, Failed: failed,
		InFlight: scheduled - sent - failed}
}

// SentOrders converts the acknowledged orders for fooddelivery.Summarize.
func (r Result) SentOrders() []fooddelivery.SentOrder {
	out := make([]fooddelivery.SentOrder, len(r.Sent))
	for i, s := range r.Sent {
		out[i] = fooddelivery.SentOrder{OrderID: s.OrderID, SentAt: s.SentAt, Malformed: s.Malformed}
	}
	return out
}

// OrderIDPrefix is the prefix every order id of this run starts with.
func (r Result) OrderIDPrefix() string { return fmt.Sprint(r.RunID) }

// Played is how long a full run lasts (Options.Duration after defaults).
func (s *Simulator) Played() time.Duration { return s.opts.Duration }
