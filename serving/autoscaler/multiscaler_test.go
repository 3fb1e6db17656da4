package autoscaler

import (
	"errors"
	"io"
	"log/slog"
	"sync"
	"testing"
	"time"

	clocktesting "k8s.io/utils/clock/testing"

	"github.com/tide-run/tide/serving/autoscaler/config"
	"github.com/tide-run/tide/serving/autoscaler/metrics"
)

type event struct {
	rev     string
	desired int32
	inPath  bool
}

// harness drives one revision through a Multiscaler with a fake clock. Each simulated second it records the
// instance stats, then steps the clock; on even seconds (the 2 s tick) it waits for the decision, so every
// step is deterministic. Waiting uses a real-time deadline only as a failure guard.
type harness struct {
	t         *testing.T
	clk       *clocktesting.FakeClock
	col       *metrics.Collector
	ms        *Multiscaler
	rev       string
	added     time.Time
	events    chan event
	decisions chan Decision

	mu    sync.Mutex
	ready int
}

func newHarness(t *testing.T, rev string, s config.Settings) *harness {
	t.Helper()
	h := &harness{t: t, clk: clocktesting.NewFakeClock(t0), col: metrics.NewCollector(), rev: rev,
		events: make(chan event, 100), decisions: make(chan Decision, 100)}
	ms, err := NewMultiscaler(Options{
		Collector: h.col,
		Ready:     ReadyCounterFunc(func(string) int { h.mu.Lock(); defer h.mu.Unlock(); return h.ready }),
		Scaler: ScalerFunc(func(rev string, desired int32, inPath bool) {
			h.events <- event{rev, desired, inPath}
		}),
		Clock:      h.clk,
		OnDecision: func(_ string, d Decision) { h.decisions <- d },
		Logger:     slog.New(slog.NewTextHandler(io.Discard, nil)),
	})
	if err != nil {
		t.Fatal(err)
	}
	h.ms = ms
	t.Cleanup(ms.Close)
	h.added = h.clk.Now()
	if err := ms.Add(rev, s); err != nil {
		t.Fatal(err)
	}
	return h
}

func (h *harness) setReady(n int) { h.mu.Lock(); h.ready = n; h.mu.Unlock() }

// seconds simulates n seconds in which each ready instance reports stat every second.
func (h *harness) seconds(n int, stat metrics.Stat) {
	h.t.Helper()
	for range n {
		h.mu.Lock()
		ready := h.ready
		h.mu.Unlock()
		for range ready {
			h.col.Record(h.rev, h.clk.Now(), stat)
		}
		h.clk.Step(time.Second)
		if h.clk.Now().Sub(h.added)%DefaultTickInterval == 0 {
			h.waitDecision(h.clk.Now())
		}
	}
}

func (h *harness) waitDecision(at time.Time) Decision {
	h.t.Helper()
	deadline := time.After(10 * time.Second)
	for {
		select {
		case d := <-h.decisions:
			if !d.Time.Before(at) {
				return d
			}
		case <-deadline:
			h.t.Fatalf("no decision at %v", at.Sub(t0))
			return Decision{}
		}
	}
}

func (h *harness) expect(want event) {
	h.t.Helper()
	select {
	case got := <-h.events:
		if got != want {
			h.t.Fatalf("at %v: SetDesired%+v, want %+v", h.clk.Now().Sub(t0), got, want)
		}
	case <-time.After(10 * time.Second):
		h.t.Fatalf("at %v: no SetDesired, want %+v", h.clk.Now().Sub(t0), want)
	}
}

// expectNone checks no SetDesired happened; the Scaler is called before OnDecision, so after waitDecision
// any call from that decision is already queued.
func (h *harness) expectNone() {
	h.t.Helper()
	select {
	case got := <-h.events:
		h.t.Fatalf("at %v: unexpected SetDesired%+v", h.clk.Now().Sub(t0), got)
	default:
	}
}

func TestMultiscalerToZeroAndBack(t *testing.T) {
	// A 6 s stable window with a 3 s panic window (at 10% the panic window would be a single bucket, which
	// reads 0 at every tick because the tick opens a new second before any report lands in it).
	s := settings(t, 0, map[string]string{config.AnnotationPanicWindowPercentage: "50"}, func(c *config.Config) {
		c.StableWindow, c.ScaleToZeroGracePeriod = 6*time.Second, 1*time.Second
	})
	h := newHarness(t, "hello-00001", s)
	h.expect(event{"hello-00001", 1, true}) // initial scale, before any tick

	// The instance starts and idles: active at the first tick, inactive after a 6 s stable window, zero
	// after the 1 s grace period (next tick).
	h.setReady(1)
	h.seconds(8, metrics.Stat{})
	h.expectNone()
	if d, _ := h.ms.Decision("hello-00001"); d.Phase != PhaseInactive || d.DesiredScale != 1 {
		t.Fatalf("after 8 s idle: %+v", d)
	}
	h.seconds(2, metrics.Stat{})
	h.expect(event{"hello-00001", 0, true})
	h.setReady(0)
	h.seconds(4, metrics.Stat{})
	h.expectNone()

	// A request reaches the activator: it reports at once and the decision does not wait for a tick.
	at := h.clk.Now()
	h.ms.Record("hello-00001", at, metrics.Stat{AverageConcurrency: 1, RequestCount: 1})
	h.expect(event{"hello-00001", 1, true})
	if d := h.waitDecision(at); d.Time != at || d.Phase != PhaseActivating {
		t.Fatalf("poked decision = %+v", d)
	}

	// Under load: the instance reports 350 (plus the activator's 1 in the same second). At the tick the
	// stable average is (0+0+0+351+350)/5 = 140.2 -> 3, the panic average (351+350)/2 -> 6 over 1 ready:
	// panic, 6 instances.
	h.setReady(1)
	h.seconds(2, metrics.Stat{AverageConcurrency: 350})
	h.expect(event{"hello-00001", 6, true})
	// 5 ready with 280 in flight: stable 1261/5 -> 4, panic 280 -> 4, but panic never scales down: 6. The
	// burst capacity now covers TBC 211 (5*100 - 211 - 280 = 9 >= 0), so the activator leaves the path.
	h.setReady(5)
	h.seconds(2, metrics.Stat{AverageConcurrency: 56})
	if d, _ := h.ms.Decision("hello-00001"); d.DesiredScale != 6 || !d.Panicking || d.ExcessBurstCapacity != 9 {
		t.Fatalf("under load: %+v", d)
	}
	h.expect(event{"hello-00001", 6, false})

	h.ms.Remove("hello-00001")
	if _, ok := h.ms.Decision("hello-00001"); ok {
		t.Error("Decision after Remove")
	}
	h.clk.Step(10 * time.Second)
	h.expectNone()
	if got := h.ms.Revisions(); len(got) != 0 {
		t.Errorf("Revisions = %v", got)
	}
}

func TestMultiscalerRPS(t *testing.T) {
	s := settings(t, 0, map[string]string{config.AnnotationMetric: "rps"})
	h := newHarness(t, "api-00001", s)
	h.expect(event{"api-00001", 1, true})
	h.setReady(1)
	// 280 rps over a 140 rps target -> 2 (concurrency stays low, so only rps can explain the decision).
	h.seconds(2, metrics.Stat{AverageConcurrency: 0.5, RequestCount: 280})
	h.expect(event{"api-00001", 2, true})
}

func TestMultiscalerUpdateAndPoke(t *testing.T) {
	h := newHarness(t, "r", settings(t, 0, nil))
	h.expect(event{"r", 1, true})
	h.setReady(1)
	h.seconds(2, metrics.Stat{AverageConcurrency: 10})
	h.expectNone()
	// min-scale 3 arrives through new annotations: applied at once (Add pokes), not at the next tick.
	if err := h.ms.Add("r", settings(t, 0, map[string]string{config.AnnotationMinScale: "3"})); err != nil {
		t.Fatal(err)
	}
	h.expect(event{"r", 3, true}) // EBC counts ready instances: 1*100 - 211 - 10 < 0, so the activator stays
}

func TestMultiscalerOptions(t *testing.T) {
	if _, err := NewMultiscaler(Options{}); !errors.Is(err, ErrOptions) {
		t.Errorf("empty options: err = %v", err)
	}
	ms, err := NewMultiscaler(Options{Collector: metrics.NewCollector(), Ready: ReadyCounterFunc(func(string) int { return 0 }),
		Scaler: ScalerFunc(func(string, int32, bool) {}), Clock: clocktesting.NewFakeClock(t0),
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	bad := settings(t, 0, nil)
	bad.PanicWindow = 2 * bad.StableWindow
	if err := ms.Add("r", bad); err == nil {
		t.Error("Add with a panic window above the stable window succeeded")
	}
	ms.Poke("unknown") // no-op
	ms.Record("unknown", t0, metrics.Stat{AverageConcurrency: 1})
	ms.Close()
	if err := ms.Add("r", settings(t, 0, nil)); !errors.Is(err, ErrClosed) {
		t.Errorf("Add after Close: err = %v", err)
	}
}

// TestMultiscalerPokesOnlyAtZero ports Knative's rule (MultiScaler.Poke): a stat showing requests triggers an
// immediate decision only while the revision is at zero; otherwise the next tick decides.
func TestMultiscalerPokesOnlyAtZero(t *testing.T) {
	h := newHarness(t, "r", settings(t, 0, nil))
	h.expect(event{"r", 1, true})
	h.setReady(1)
	h.seconds(1, metrics.Stat{})
	at := h.clk.Now() // odd second: no tick
	h.ms.Record("r", at, metrics.Stat{AverageConcurrency: 500})
	h.col.Record("r", at, metrics.Stat{AverageConcurrency: 500})
	h.clk.Step(time.Second)
	// The first decision after the Record must be the tick's: a poke would have decided at `at`.
	if d := h.waitDecision(t0); !d.Time.Equal(at.Add(time.Second)) {
		t.Fatalf("first decision at %v, want the tick at %v", d.Time.Sub(t0), at.Add(time.Second).Sub(t0))
	}
	// Stable and panic averages (0 + 1000) / 2 = 500 over a target of 70 -> 8, panicking.
	h.expect(event{"r", 8, true})
}

// TestMultiscalerPokeAloneScalesFromZero: an activator that only pokes (no stat) still wakes a revision at
// zero at once; a poke while instances run waits for the tick.
func TestMultiscalerPokeAloneScalesFromZero(t *testing.T) {
	s := settings(t, 0, nil, func(c *config.Config) {
		c.AllowZeroInitialScale, c.InitialScale = true, 0
	})
	h := newHarness(t, "r", s)
	h.expect(event{"r", 0, true})
	// Long idle: the buckets are empty, so a tick alone has no data to decide on.
	h.seconds(120, metrics.Stat{})
	h.expectNone()
	at := h.clk.Now()
	h.ms.Poke("r")
	h.expect(event{"r", 1, true})
	if d := h.waitDecision(at); !d.Time.Equal(at) || d.Phase != PhaseActivating || !d.ScaleValid {
		t.Fatalf("poked decision = %+v", d)
	}
	// Not at zero any more: pokes are ignored until the tick.
	h.setReady(1)
	h.ms.Poke("r")
	h.clk.Step(DefaultTickInterval)
	if d := h.waitDecision(t0); !d.Time.Equal(h.clk.Now()) {
		t.Fatalf("decision at %v after a poke at 1 instance, want only the tick at %v", d.Time.Sub(t0), h.clk.Now().Sub(t0))
	}
}

// TestMultiscalerStepLoad simulates a meal-time peak with Knative's defaults: a step from idle to 700
// concurrent requests (10 instances' worth at the 70 target), held for 50 s, then nothing. Instances become
// ready one second after they are wanted. It checks the shape Knative produces: panic mode reaches 10
// instances within a few ticks, never overshoots, never scales down while panicking, and the revision goes
// to zero only after the stable window plus the grace period.
func TestMultiscalerStepLoad(t *testing.T) {
	h := newHarness(t, "orders-00001", settings(t, 0, nil))
	desired := int32(0)
	drain := func() {
		for {
			select {
			case e := <-h.events:
				desired = e.desired
			default:
				return
			}
		}
	}
	drain()
	const peak = 700.
	var reached, zeroAt time.Duration
	for sec := 0; sec < 200; sec++ {
		now := time.Duration(sec) * time.Second
		h.setReady(int(desired)) // instances wanted last second are ready now
		load := 0.
		if now >= 10*time.Second && now < 60*time.Second {
			load = peak
		}
		if desired > 0 {
			h.seconds(1, metrics.Stat{AverageConcurrency: load / float64(desired)})
		} else {
			h.seconds(1, metrics.Stat{})
		}
		drain()
		at := now + time.Second
		if desired > 10 {
			t.Fatalf("at %v: desired %d overshoots 10", at, desired)
		}
		if desired == 10 && reached == 0 {
			reached = at
		}
		if reached != 0 && at < 74*time.Second && desired < 10 {
			t.Fatalf("at %v: scaled down to %d while panicking", at, desired)
		}
		if desired == 0 && at > 60*time.Second && zeroAt == 0 {
			zeroAt = at
		}
	}
	if reached == 0 || reached > 18*time.Second {
		t.Errorf("reached 10 instances at %v, want within 8 s of the step at 10s", reached)
	}
	// Idle from 60 s: the stable window empties at ~120 s, then 30 s of grace.
	if zeroAt < 150*time.Second || zeroAt > 156*time.Second {
		t.Errorf("reached zero at %v, want within a tick or two after 150s", zeroAt)
	}
	t.Logf("10 instances at %v, zero at %v", reached, zeroAt)
}

// TestMultiscalerReentrantScaler: the Scaler may read decisions and remove revisions from its callback.
func TestMultiscalerReentrantScaler(t *testing.T) {
	clk := clocktesting.NewFakeClock(t0)
	col := metrics.NewCollector()
	var ms *Multiscaler
	seen := make(chan Decision, 10)
	ms, err := NewMultiscaler(Options{
		Collector: col,
		Ready:     ReadyCounterFunc(func(string) int { return 0 }),
		Scaler: ScalerFunc(func(rev string, desired int32, _ bool) {
			d, _ := ms.Decision(rev)
			_ = ms.Revisions()
			if desired == 5 {
				ms.Remove(rev)
			}
			seen <- d
		}),
		Clock:  clk,
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
	})
	if err != nil {
		t.Fatal(err)
	}
	defer ms.Close()
	if err := ms.Add("r", settings(t, 0, nil)); err != nil {
		t.Fatal(err)
	}
	wait := func() Decision {
		select {
		case d := <-seen:
			return d
		case <-time.After(10 * time.Second):
			t.Fatal("Scaler not called (deadlock?)")
			return Decision{}
		}
	}
	if d := wait(); d.DesiredScale != 1 {
		t.Fatalf("initial = %+v", d)
	}
	// Enough load at 0 ready for 5 instances (350 / 70); the callback removes the revision.
	col.Record("r", clk.Now(), metrics.Stat{AverageConcurrency: 350})
	clk.Step(DefaultTickInterval)
	if d := wait(); d.DesiredScale != 5 {
		t.Fatalf("under load = %+v", d)
	}
	// The callback removed the revision before reporting the decision.
	if got := ms.Revisions(); len(got) != 0 {
		t.Fatalf("Revisions after Remove in the callback = %v", got)
	}
}
