package scenario

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"time"

	"k8s.io/utils/clock"

	"github.com/tide-run/tide/demo/fooddelivery"
	"github.com/tide-run/tide/demo/fooddelivery/simulator"
)

// Options configure Run. The zero value of each field means its documented default.
type Options struct {
	// NameServers of the RocketMQ the RocketMQSource consumes from. Required unless Sender is set.
	NameServers []string
	// Sender replaces the RocketMQ producer (tests); optional.
	Sender simulator.Sender
	// Topic the RocketMQSource reads. Default "orders".
	Topic string
	// DBPath is the order service's SQLite file (fooddelivery.DefaultDBPath for the service's environment).
	// Required.
	DBPath string
	// Instances returns the order service's current number of ready instances. Optional: without it the summary
	// has no instance figures and Run does not wait for scale to zero.
	Instances func(context.Context) (int, error)

	// The simulated day; see simulator.Options. Defaults: a 3-minute day at 200 orders/s peak, 8 producers,
	// one day, no malformed orders.
	DayLength      time.Duration
	PeakRate       float64
	Concurrency    int
	Duration       time.Duration
	MalformedEvery int

	// SampleInterval between instance samples. Default 250ms.
	SampleInterval time.Duration
	// DrainTimeout bounds the wait, after the last order was sent, for every order to be stored or dead-lettered.
	// Default 60s.
	DrainTimeout time.Duration
	// ZeroTimeout bounds the further wait for the service to scale to zero. Default 120s.
	ZeroTimeout time.Duration
	// OutDir receives summary.txt and effect.svg; "" writes nothing.
	OutDir string
	// Title of the chart. Default "food-delivery: order-service instances vs orders".
	Title string
	// Progress receives the simulator's progress line and the waiting messages; nil for none.
	Progress io.Writer
	// Clock; default the real clock.
	Clock clock.WithTicker
	// Logger; default slog.Default(). Adds component=food-delivery-demo.
	Logger *slog.Logger
}

// Report is what Run found.
type Report struct {
	Summary   fooddelivery.Summary
	Result    simulator.Result
	Instances []fooddelivery.Sample
	// Drained is false when DrainTimeout passed with orders still unaccounted for (they show as lost).
	Drained bool
	// SummaryPath and ChartPath are the files written, when OutDir was set.
	SummaryPath, ChartPath string
}

// ErrOptions is wrapped by option errors.
var ErrOptions = errors.New("food-delivery demo options")

// Run plays the day and reports. It returns an error only when the demo could not run (bad options, RocketMQ or the
// store unreachable, ctx cancelled); lost orders are reported in the Summary (Summary.OK), not as an error.
func Run(ctx context.Context, opts Options) (Report, error) {
	if opts.DBPath == "" {
		return Report{}, fmt.Errorf("%w: DBPath is required", ErrOptions)
	}
	if opts.Sender == nil && len(opts.NameServers) == 0 {
		return Report{}, fmt.Errorf("%w: NameServers (or Sender) is required", ErrOptions)
	}
	if opts.SampleInterval <= 0 {
		opts.SampleInterval = 250 * time.Millisecond
	}
	if opts.DrainTimeout <= 0 {
		opts.DrainTimeout = 60 * time.Second
	}
	if opts.ZeroTimeout <= 0 {
		opts.ZeroTimeout = 120 * time.Second
	}
	if opts.Title == "" {
		opts.Title = "food-delivery: order-service instances vs orders"
	}
	if opts.Clock == nil {
		opts.Clock = clock.RealClock{}
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	log := opts.Logger.With("component", "food-delivery-demo")
	progress := opts.Progress
	if progress == nil {
		progress = io.Discard
	}

	store, err := fooddelivery.OpenStore(ctx, fooddelivery.StoreOptions{Path: opts.DBPath, Logger: opts.Logger})
	if err != nil {
		return Report{}, err
	}
	defer store.Close()

	sender := opts.Sender
	if sender == nil {
		rs, err := simulator.NewRocketMQSender(ctx, simulator.RocketMQOptions{NameServers: opts.NameServers})
		if err != nil {
			return Report{}, err
		}
		defer rs.Close()
		sender = rs
	}
	sim, err := simulator.New(simulator.Options{Sender: sender, Topic: opts.Topic, DayLength: opts.DayLength,
		PeakRate: opts.PeakRate, Concurrency: opts.Concurrency, Duration: opts.Duration,
		MalformedEvery: opts.MalformedEvery, Progress: opts.Progress, Clock: opts.Clock, Logger: opts.Logger})
	if err != nil {
		return Report{}, err
	}

	sampler := newSampler(opts.Clock, opts.Instances, opts.SampleInterval, log)
	sctx, stopSampling := context.WithCancel(ctx)
	defer stopSampling()
	go sampler.run(sctx)

	start := opts.Clock.Now()
	res, err := sim.Run(ctx)
	if err != nil {
		return Report{Result: res}, err
	}
	rep := Report{Result: res}

	// Drain: every acknowledged order ends stored or dead-lettered.
	fmt.Fprintf(progress, "sent %d orders; waiting for the order service to account for them (up to %v)\n",
		len(res.Sent), opts.DrainTimeout)
	rep.Drained, err = waitUntil(ctx, opts.Clock, opts.DrainTimeout, 250*time.Millisecond, func() (bool, error) {
		o, d, err := store.CountPrefix(ctx, res.OrderIDPrefix())
		return o+d >= len(res.Sent), err
	})
	if err != nil {
		return rep, err
	}
	if !rep.Drained {
		log.Warn("orders still unaccounted for at the drain deadline", "timeout", opts.DrainTimeout)
	}
	// Scale to zero after the last peak.
	if opts.Instances != nil {
		fmt.Fprintf(progress, "waiting for the order service to scale to zero (up to %v)\n", opts.ZeroTimeout)
		zero, err := waitUntil(ctx, opts.Clock, opts.ZeroTimeout, opts.SampleInterval, func() (bool, error) {
			n, ok := sampler.last()
			return ok && n == 0, nil
		})
		if err != nil {
			return rep, err
		}
		if !zero {
			log.Warn("the order service did not scale to zero", "timeout", opts.ZeroTimeout)
		}
	}
	stopSampling()
	rep.Instances = sampler.wait()
	end := opts.Clock.Now()

	orders, err := store.Orders(ctx)
	if err != nil {
		return rep, err
	}
	dead, err := store.DeadLetters(ctx)
	if err != nil {
		return rep, err
	}
	sched := sim.Schedule()
	in := fooddelivery.SummaryInput{Sent: res.SentOrders(), SendFailed: len(res.Failed), Orders: orders,
		DeadLetters: dead, Instances: rep.Instances, Schedule: &sched, Start: start, Played: sim.Played()}
	rep.Summary = fooddelivery.Summarize(in)

	if opts.OutDir != "" {
		if err := os.MkdirAll(opts.OutDir, 0o755); err != nil {
			return rep, fmt.Errorf("food-delivery demo: %w", err)
		}
		rep.SummaryPath = filepath.Join(opts.OutDir, "summary.txt")
		rep.ChartPath = filepath.Join(opts.OutDir, "effect.svg")
		if err := writeFile(rep.SummaryPath, rep.Summary.WriteText); err != nil {
			return rep, err
		}
		chart := fooddelivery.EffectChart(opts.Title, in, end)
		if err := writeFile(rep.ChartPath, chart.WriteSVG); err != nil {
			return rep, err
		}
	}
	return rep, nil
}

func writeFile(path string, write func(io.Writer) error) error {
	f, err := os.Create(path)
	if err != nil {
		return fmt.Errorf("food-delivery demo: %w", err)
	}
	if err := write(f); err != nil {
		f.Close()
		return fmt.Errorf("food-delivery demo: write %s: %w", path, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("food-delivery demo: write %s: %w", path, err)
	}
	return nil
}

// waitUntil polls cond every interval until it holds (true), the timeout passes (false) or ctx ends (error).
func waitUntil(ctx context.Context, clk clock.WithTicker, timeout, interval time.Duration, cond func() (bool, error)) (bool, error) {
	deadline := clk.Now().Add(timeout)
	t := clk.NewTicker(interval)
	defer t.Stop()
	for {
		ok, err := cond()
		if err != nil || ok {
			return ok, err
		}
		if !clk.Now().Before(deadline) {
			return false, nil
		}
		select {
		case <-ctx.Done():
			return false, fmt.Errorf("food-delivery demo: %w", ctx.Err())
		case <-t.C():
		}
	}
}

// sampler records the instance count as a step series: a sample whenever it changes.
type sampler struct {
	clk      clock.WithTicker
	get      func(context.Context) (int, error)
	interval time.Duration
	log      *slog.Logger
	done     chan struct{}

	// mu guards samples.
	mu      sync.Mutex
	samples []fooddelivery.Sample
}

func newSampler(clk clock.WithTicker, get func(context.Context) (int, error), interval time.Duration, log *slog.Logger) *sampler {
	return &sampler{clk: clk, get: get, interval: interval, log: log, done: make(chan struct{})}
}

func (s *sampler) run(ctx context.Context) {
	defer close(s.done)
	if s.get == nil {
		return
	}
	t := s.clk.NewTicker(s.interval)
	defer t.Stop()
	failures := 0
	for {
		n, err := s.get(ctx)
		now := s.clk.Now()
		if err != nil && ctx.Err() == nil { // a read cut short by the end of sampling is not a failure
			if failures++; failures == 1 || failures%20 == 0 {
				s.log.Warn("cannot read the order service's instances", "err", err, "failures", failures)
			}
		} else if err == nil {
			s.mu.Lock()
			if len(s.samples) == 0 || s.samples[len(s.samples)-1].Value != float64(n) {
				s.samples = append(s.samples, fooddelivery.Sample{At: now, Value: float64(n)})
			}
			s.mu.Unlock()
		}
		select {
		case <-ctx.Done():
			// Close the series at the end so the chart's last step reaches the end of the run.
			s.mu.Lock()
			if k := len(s.samples); k > 0 {
				s.samples = append(s.samples, fooddelivery.Sample{At: s.clk.Now(), Value: s.samples[k-1].Value})
			}
			s.mu.Unlock()
			return
		case <-t.C():
		}
	}
}

// last is the most recent instance count.
func (s *sampler) last() (int, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.samples) == 0 {
		return 0, false
	}
	return int(s.samples[len(s.samples)-1].Value), true
}

// wait returns the samples once run has returned.
func (s *sampler) wait() []fooddelivery.Sample {
	<-s.done
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]fooddelivery.Sample(nil), s.samples...)
}
