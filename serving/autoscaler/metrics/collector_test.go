package metrics

import (
	"errors"
	"math"
	"testing"
	"time"

	clocktesting "k8s.io/utils/clock/testing"
)

func TestReporter(t *testing.T) {
	ms := time.Millisecond
	type ev struct {
		at      time.Duration // since the period start
		in      bool
		proxied bool
	}
	tests := []struct {
		name   string
		events []ev
		period time.Duration
		want   Stat
	}{
		{name: "idle", period: time.Second, want: Stat{}},
		{name: "two 500ms requests back to back = 1.0", period: time.Second,
			events: []ev{{0, true, false}, {500 * ms, false, false}, {500 * ms, true, false}, {1000 * ms, false, false}},
			want:   Stat{AverageConcurrency: 1, RequestCount: 2}},
		{name: "two overlapping 500ms requests = 1.0", period: time.Second,
			events: []ev{{250 * ms, true, false}, {250 * ms, true, false}, {750 * ms, false, false}, {750 * ms, false, false}},
			want:   Stat{AverageConcurrency: 1, RequestCount: 2}},
		{name: "one request across the whole period", period: time.Second,
			events: []ev{{0, true, false}},
			want:   Stat{AverageConcurrency: 1, RequestCount: 1}},
		{name: "proxied counted separately", period: 2 * time.Second,
			events: []ev{{0, true, true}, {time.Second, false, true}, {time.Second, true, false}},
			want:   Stat{AverageConcurrency: 1, AverageProxiedConcurrency: 0.5, RequestCount: 1, ProxiedRequestCount: 0.5}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			clk := clocktesting.NewFakePassiveClock(base)
			r := NewReporter(clk)
			for _, e := range tt.events {
				clk.SetTime(base.Add(e.at))
				if e.in {
					r.In(e.proxied)
				} else {
					r.Out(e.proxied)
				}
			}
			clk.SetTime(base.Add(tt.period))
			if got := r.Report(); !closeStat(got, tt.want) {
				t.Errorf("Report = %+v, want %+v", got, tt.want)
			}
		})
	}
}

func TestReporterCarriesInFlightIntoNextPeriod(t *testing.T) {
	clk := clocktesting.NewFakeClock(base)
	r := NewReporter(clk)
	r.In(false)
	clk.Step(time.Second)
	if got := r.Report(); !closeStat(got, Stat{AverageConcurrency: 1, RequestCount: 1}) {
		t.Errorf("first period = %+v", got)
	}
	clk.Step(500 * time.Millisecond)
	r.Out(false)
	clk.Step(500 * time.Millisecond)
	if got := r.Report(); !closeStat(got, Stat{AverageConcurrency: 0.5}) {
		t.Errorf("second period = %+v, want concurrency 0.5 and no new requests", got)
	}
	if r.InFlight() != 0 {
		t.Errorf("InFlight = %d", r.InFlight())
	}
	// A zero-length period reports the instantaneous in-flight count.
	r.In(false)
	if got := r.Report(); got.AverageConcurrency != 1 {
		t.Errorf("zero-length period = %+v", got)
	}
}

func closeStat(a, b Stat) bool {
	eq := func(x, y float64) bool { return math.Abs(x-y) < 1e-9 }
	return eq(a.AverageConcurrency, b.AverageConcurrency) && eq(a.AverageProxiedConcurrency, b.AverageProxiedConcurrency) &&
		eq(a.RequestCount, b.RequestCount) && eq(a.ProxiedRequestCount, b.ProxiedRequestCount)
}

func TestCollector(t *testing.T) {
	c := NewCollector()
	if _, _, err := c.StableAndPanicConcurrency("r", base); !errors.Is(err, ErrNotCollecting) {
		t.Errorf("unwatched: err = %v", err)
	}
	c.Record("r", base, Stat{AverageConcurrency: 1}) // dropped
	if c.Watching("r") {
		t.Error("Watching an unwatched revision")
	}
	if err := c.Watch("r", base, Window{Stable: 6 * time.Second, Panic: 10 * time.Second}); err == nil {
		t.Error("panic window above stable window accepted")
	}
	if err := c.Watch("r", base, Window{Stable: 60 * time.Second, Panic: 6 * time.Second}); err != nil {
		t.Fatal(err)
	}
	if !c.Watching("r") {
		t.Error("not Watching after Watch")
	}
	if _, _, err := c.StableAndPanicConcurrency("r", base); !errors.Is(err, ErrNoData) {
		t.Errorf("no data: err = %v", err)
	}
	// Two instances report 3 and 1 (1 of it proxied) in the same second; the activator reports 1 held request.
	c.Record("r", base, Stat{AverageConcurrency: 3, RequestCount: 10})
	c.Record("r", base.Add(200*time.Millisecond), Stat{AverageConcurrency: 1, AverageProxiedConcurrency: 1, RequestCount: 2, ProxiedRequestCount: 2})
	c.Record("r", base.Add(300*time.Millisecond), Stat{AverageConcurrency: 1, RequestCount: 2})
	s, p, err := c.StableAndPanicConcurrency("r", base.Add(500*time.Millisecond))
	if err != nil || s != 4 || p != 4 {
		t.Errorf("concurrency = %v, %v, %v; want 4, 4", s, p, err)
	}
	s, p, _ = c.StableAndPanicRPS("r", base)
	if s != 12 || p != 12 {
		t.Errorf("rps = %v, %v; want 12, 12", s, p)
	}
	// Idle seconds reported as zeros dilute the stable window; after 10 s the panic window (6 s) is all zeros.
	for i := 1; i <= 10; i++ {
		c.Record("r", base.Add(time.Duration(i)*time.Second), Stat{})
	}
	s, p, _ = c.StableAndPanicConcurrency("r", base.Add(10*time.Second))
	if s != round(4./11) || p != 0 {
		t.Errorf("after idle = %v, %v; want %v, 0", s, p, round(4./11))
	}
	// Nothing at all for longer than the stable window: no data.
	if _, _, err := c.StableAndPanicConcurrency("r", base.Add(2*time.Minute)); !errors.Is(err, ErrNoData) {
		t.Errorf("stale: err = %v", err)
	}
	// Knative's TBC=-1 mode: silence reads as zero.
	if err := c.Watch("r", base, Window{Stable: 60 * time.Second, Panic: 6 * time.Second, NoDataIsZero: true}); err != nil {
		t.Fatal(err)
	}
	if s, p, err := c.StableAndPanicConcurrency("r", base.Add(2*time.Minute)); err != nil || s != 0 || p != 0 {
		t.Errorf("NoDataIsZero: %v, %v, %v", s, p, err)
	}
	// Resize the windows through Watch.
	if err := c.Watch("r", base.Add(10*time.Second), Window{Stable: 10 * time.Second, Panic: 2 * time.Second}); err != nil {
		t.Fatal(err)
	}
	c.Forget("r")
	if _, _, err := c.StableAndPanicRPS("r", base); !errors.Is(err, ErrNotCollecting) {
		t.Errorf("after Forget: err = %v", err)
	}
}

func TestCollectorWeighted(t *testing.T) {
	c := NewCollector()
	if err := c.Watch("r", base, Window{Stable: 6 * time.Second, Panic: 6 * time.Second, Weighted: true}); err != nil {
		t.Fatal(err)
	}
	c.Record("r", base, Stat{AverageConcurrency: 10})
	s, _, err := c.StableAndPanicConcurrency("r", base)
	if want := 10 * smoothingFor(6); err != nil || s != want {
		t.Errorf("weighted stable = %v, %v; want %v", s, err, want)
	}
	// Switching back to linear keeps the data.
	if err := c.Watch("r", base, Window{Stable: 6 * time.Second, Panic: 6 * time.Second}); err != nil {
		t.Fatal(err)
	}
	if s, _, _ := c.StableAndPanicConcurrency("r", base); s != 10 {
		t.Errorf("linear stable = %v, want 10", s)
	}
}
