package autoscaler

import (
	"math"
	"testing"
	"time"

	"github.com/tide-run/tide/serving/autoscaler/config"
)

// The scenarios and numbers below port knative.dev/serving pkg/autoscaler/scaling/autoscaler_test.go (v0.50.0):
// same specs (75% utilization, panic threshold 200%, rates 10), same metric values, same expected scales.

var t0 = time.Unix(1_700_000_000, 0) // even, so 2 s delay buckets align as they do from time.Time{}

const testUtilization = 0.75

func spec(target, tbc float64, mut ...func(*config.Settings)) config.Settings {
	s := config.Settings{
		Metric:              config.Concurrency,
		TargetValue:         target,
		TotalValue:          target / testUtilization,
		TargetBurstCapacity: tbc,
		PanicThreshold:      2,
		MaxScaleUpRate:      10,
		MaxScaleDownRate:    10,
		StableWindow:        60 * time.Second,
		PanicWindow:         6 * time.Second,
		Reachable:           true,
	}
	for _, m := range mut {
		m(&s)
	}
	return s
}

// wantEBC is Knative's expectedEBC: floor(target/TU*pods - tbc - observed).
func wantEBC(target, tbc, observed, pods float64) int32 {
	return int32(math.Floor(target/testUtilization*pods - tbc - observed))
}

type step struct {
	name          string
	at            time.Duration
	ready         int
	stable, panic float64
	want          int32
	ebc           int32
	panicking     *bool
	before        func(d *Decider)
}

func yes() *bool { b := true; return &b }
func no() *bool  { b := false; return &b }

func run(t *testing.T, d *Decider, steps []step) {
	t.Helper()
	for i, s := range steps {
		if s.before != nil {
			s.before(d)
		}
		got := d.Scale(t0.Add(s.at), s.ready, s.stable, s.panic)
		if got.DesiredScale != s.want {
			t.Errorf("step %d %s: DesiredScale = %d, want %d", i, s.name, got.DesiredScale, s.want)
		}
		// Knative compares EBC with ±1 tolerance for float rounding across platforms.
		if diff := got.ExcessBurstCapacity - s.ebc; diff < -1 || diff > 1 {
			t.Errorf("step %d %s: ExcessBurstCapacity = %d, want %d", i, s.name, got.ExcessBurstCapacity, s.ebc)
		}
		if s.panicking != nil && got.Panicking != *s.panicking {
			t.Errorf("step %d %s: Panicking = %v, want %v", i, s.name, got.Panicking, *s.panicking)
		}
	}
}

func TestDeciderScenarios(t *testing.T) {
	delay := func(s *config.Settings) {
		s.TotalValue, s.PanicThreshold, s.ScaleDownDelay = 0, 100, 5*time.Minute
	}
	tests := []struct {
		name  string
		spec  config.Settings
		ready int // at creation
		steps []step
	}{
		{name: "scale down delay", spec: spec(10, 0, delay), steps: []step{
			{name: "scale up", at: 2 * time.Second, stable: 40, panic: 40, want: 4},
			{name: "5m at zero: held", at: 5 * time.Minute, want: 4},
			{name: "5m2s: down", at: 5*time.Minute + 2*time.Second, want: 0},
			{name: "gradual up", at: 9 * time.Minute, stable: 40, panic: 40, want: 4},
			{name: "4 dominates", at: 10 * time.Minute, stable: 30, panic: 30, want: 4},
			{name: "still 4", at: 11 * time.Minute, want: 4},
			{name: "4 scrolls out", at: 14 * time.Minute, want: 3},
			{name: "all scrolled out", at: 15 * time.Minute, want: 0},
		}},
		{name: "scale down delay unreachable", spec: spec(10, 0, delay), steps: []step{
			{name: "up", at: 2 * time.Second, stable: 40, panic: 40, want: 4},
			{name: "held", at: time.Minute, want: 4},
			{name: "unreachable: immediate", at: 2 * time.Second, want: 0,
				before: func(d *Decider) { s := d.spec; s.Reachable = false; d.Update(s) }},
		}},
		{name: "zero scale down delay", spec: spec(10, 0, func(s *config.Settings) { s.TotalValue, s.PanicThreshold = 0, 100 }),
			steps: []step{
				{at: 0, stable: 40, panic: 40, want: 4},
				{name: "immediately down", at: 500 * time.Millisecond, stable: 20, panic: 20, want: 2},
			}},
		{name: "stable increase", spec: spec(10, 101), steps: []step{
			{ready: 1, stable: 50, panic: 10, want: 5, ebc: wantEBC(10, 101, 10, 1)},
			{ready: 1, stable: 100, panic: 10, want: 10, ebc: wantEBC(10, 101, 10, 1)},
		}},
		{name: "stable increase rps", spec: spec(10, 101, func(s *config.Settings) { s.Metric = config.RPS }), steps: []step{
			{ready: 1, stable: 50, panic: 50, want: 5, ebc: wantEBC(10, 101, 50, 1)},
			{ready: 1, stable: 100, panic: 99, want: 10, ebc: wantEBC(10, 101, 99, 1)},
		}},
		{name: "rps after a stable window", spec: spec(10, 100, func(s *config.Settings) { s.Metric = config.RPS }), steps: []step{
			{at: 61 * time.Second, ready: 1, stable: 100, panic: 99, want: 10, ebc: wantEBC(10, 100, 99, 1), panicking: yes()},
		}},
		{name: "unpanic after slow increase", spec: spec(1, 98), steps: []step{
			{name: "jump 10->25", ready: 10, stable: 11, panic: 25, want: 25, ebc: wantEBC(1, 98, 25, 10), panicking: yes()},
			{name: "half window, +15", at: 30 * time.Second, ready: 40, stable: 30, panic: 41, want: 41, ebc: wantEBC(1, 98, 41, 40), panicking: yes()},
			{name: "window over: unpanic", at: 62 * time.Second, ready: 55, stable: 50, panic: 56, want: 50, ebc: wantEBC(1, 98, 56, 55), panicking: no()},
		}},
		{name: "extend panic window", spec: spec(1, 98), steps: []step{
			{ready: 10, stable: 11, panic: 25, want: 25, ebc: wantEBC(1, 98, 25, 10), panicking: yes()},
			{at: 30 * time.Second, ready: 40, stable: 30, panic: 80, want: 80, ebc: wantEBC(1, 98, 80, 40), panicking: yes()},
			// Re-crossing at 30 s moved the panic start: still panicking 61 s after the first crossing.
			{at: 61 * time.Second, ready: 80, stable: 30, panic: 30, want: 80, ebc: wantEBC(1, 98, 30, 80), panicking: yes()},
			{at: 91 * time.Second, ready: 80, stable: 30, panic: 30, want: 30, ebc: wantEBC(1, 98, 30, 80), panicking: no()},
		}},
		{name: "stable decrease", spec: spec(10, 98), steps: []step{
			{ready: 8, stable: 100, panic: 100, want: 10, ebc: wantEBC(10, 98, 100, 8)},
			{ready: 8, stable: 50, panic: 50, want: 5, ebc: wantEBC(10, 98, 50, 8)},
		}},
		{name: "no traffic to zero", spec: spec(10, 75), steps: []step{
			{ready: 1, stable: 1, panic: 0, want: 1, ebc: wantEBC(10, 75, 0, 1)},
			{ready: 1, stable: 0, panic: 0, want: 0, ebc: wantEBC(10, 75, 0, 1)},
		}},
		{name: "activation scale", spec: spec(10, 75, func(s *config.Settings) { s.ActivationScale = 2 }), steps: []step{
			{ready: 1, want: 0, ebc: wantEBC(10, 75, 0, 1)},
			{ready: 1, stable: 1, want: 2, ebc: wantEBC(10, 75, 0, 1)},
		}},
		{name: "exponential track and stabilize", spec: spec(1, 101), steps: []step{
			{ready: 1, stable: 6, panic: 6, want: 6, ebc: wantEBC(1, 101, 6, 1)},
			{ready: 6, stable: 36, panic: 36, want: 36, ebc: wantEBC(1, 101, 36, 6), panicking: yes()},
			{at: time.Second, ready: 36, stable: 216, panic: 216, want: 216, ebc: wantEBC(1, 101, 216, 36), panicking: yes()},
			{at: time.Second, ready: 216, stable: 1296, panic: 1296, want: 1296, ebc: wantEBC(1, 101, 1296, 216), panicking: yes()},
			{at: 2 * time.Second, ready: 1296, stable: 1296, panic: 1296, want: 1296, ebc: wantEBC(1, 101, 1296, 1296)},
		}},
		{name: "panic then unpanic scale down", spec: spec(10, 93), steps: []step{
			{ready: 1, stable: 100, panic: 100, want: 10, ebc: wantEBC(10, 93, 100, 1)},
			{ready: 10, stable: 100, panic: 1000, want: 100, ebc: wantEBC(10, 93, 1000, 10), panicking: yes()},
			{name: "traffic gone, still panicking", at: 30 * time.Second, ready: 10, stable: 1, panic: 1, want: 100, ebc: wantEBC(10, 93, 1, 10)},
			{name: "after the stable window", at: 61 * time.Second, ready: 10, stable: 1, panic: 1, want: 1, ebc: wantEBC(10, 93, 1, 10), panicking: no()},
		}},
		{name: "rate limit scale up", spec: spec(10, 61), steps: []step{
			{name: "need 100, x10", ready: 1, stable: 1000, panic: 1001, want: 10, ebc: wantEBC(10, 61, 1001, 1)},
			{name: "x10 again", ready: 10, stable: 1000, panic: 1001, want: 100, ebc: wantEBC(10, 61, 1001, 10)},
		}},
		{name: "rate limit scale down", spec: spec(10, 61), steps: []step{
			{name: "100 -> 10", ready: 100, stable: 1, panic: 1, want: 10, ebc: wantEBC(10, 61, 1, 100)},
			{name: "10 -> 1", ready: 10, stable: 1, panic: 1, want: 1, ebc: wantEBC(10, 61, 1, 10)},
		}},
		{name: "no ready instances counts as one", spec: spec(10, 81), steps: []step{
			{ready: 0, stable: 1000, panic: 888, want: 10, ebc: wantEBC(10, 81, 888, 0)},
		}},
		{name: "update target", spec: spec(10, 77), steps: []step{
			{ready: 1, stable: 100, panic: 101, want: 10, ebc: wantEBC(10, 77, 101, 1)},
			{ready: 10, stable: 100, panic: 101, want: 100, ebc: wantEBC(1, 71, 101, 10),
				before: func(d *Decider) { d.Update(spec(1, 71)) }},
		}},
		{name: "starts in panic over 1 instance", spec: spec(10, 100), ready: 2, steps: []step{
			{name: "no traffic, no scale-down", ready: 2, want: 2, ebc: wantEBC(10, 100, 0, 2), panicking: yes()},
			{at: 61 * time.Second, ready: 2, want: 0, ebc: wantEBC(10, 100, 0, 2), panicking: no()},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			run(t, NewDecider(tt.spec, tt.ready, t0), tt.steps)
		})
	}
}

// TestDeciderTable ports Knative's TestAutoscalerScale table.
func TestDeciderTable(t *testing.T) {
	inPanic := func(d *Decider) { d.panicTime = t0.Add(-5 * time.Second); d.maxPanicPods = 5 }
	tests := []struct {
		name          string
		spec          config.Settings
		prep          func(d *Decider)
		ready         int
		stable, panic float64
		want, ebc     int32
	}{
		{name: "no data at zero", spec: spec(10, 100), ready: 1, want: 0, ebc: wantEBC(10, 100, 0, 1)},
		{name: "unlimited TBC", spec: spec(181, -1), ready: 1, stable: 21, panic: 26, want: 1, ebc: -1},
		{name: "zero TBC", spec: spec(10, 0), ready: 1, stable: 50, panic: 49, want: 5, ebc: 0},
		{name: "no change", spec: spec(10, 100), ready: 1, stable: 50, panic: 50, want: 5, ebc: wantEBC(10, 100, 50, 1)},
		{name: "panic: stable larger", spec: spec(1, 100), prep: inPanic, ready: 5, stable: 50, panic: 30, want: 50, ebc: wantEBC(1, 100, 30, 5)},
		{name: "panic: panic larger", spec: spec(1, 100), prep: inPanic, ready: 5, stable: 20, panic: 30, want: 30, ebc: wantEBC(1, 100, 30, 5)},
		{name: "no change already scaled", spec: spec(10, 100), ready: 5, stable: 50, panic: 50, want: 5, ebc: wantEBC(10, 100, 50, 5)},
		{name: "small scale-up rate still grows", spec: spec(1, 1982, func(s *config.Settings) { s.MaxScaleUpRate = 1.1 }),
			ready: 2, stable: 3, panic: 3.1, want: 3, ebc: wantEBC(1, 1982, 3.1, 2)},
		{name: "small scale-down rate", spec: spec(10, 1982, func(s *config.Settings) { s.MaxScaleDownRate = 1.1 }),
			ready: 100, stable: 1, panic: 1, want: 90, ebc: wantEBC(10, 1982, 1, 100)},
		{name: "unreachable ignores scale-down rate", spec: spec(10, 1982, func(s *config.Settings) { s.MaxScaleDownRate = 1.1; s.Reachable = false }),
			ready: 100, stable: 1, panic: 1, want: 1, ebc: wantEBC(10, 1982, 1, 100)},
		{name: "panic doubles", spec: spec(10, 84), ready: 1, stable: 50, panic: 100, want: 10, ebc: wantEBC(10, 84, 100, 1)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := NewDecider(tt.spec, 1, t0)
			if tt.prep != nil {
				tt.prep(d)
			}
			run(t, d, []step{{ready: tt.ready, stable: tt.stable, panic: tt.panic, want: tt.want, ebc: tt.ebc}})
		})
	}
}

func TestDeciderStartsInPanicMode(t *testing.T) {
	for ready := range 3 {
		d := NewDecider(spec(100, 11), ready, t0)
		if got, want := d.Panicking(), ready > 1; got != want {
			t.Errorf("created at %d ready: panicking = %v, want %v", ready, got, want)
		}
		if d.maxPanicPods != int32(ready) {
			t.Errorf("created at %d ready: maxPanicPods = %d", ready, d.maxPanicPods)
		}
	}
}

func TestMaxWindow(t *testing.T) {
	w := newMaxWindow(10*time.Second, 2*time.Second) // 5 buckets
	steps := []struct {
		at   time.Duration
		v    int32
		want int32
	}{
		{0, 5, 5}, {2 * time.Second, 3, 5}, {2*time.Second + 500*time.Millisecond, 4, 5},
		{4 * time.Second, 1, 5}, {10 * time.Second, 0, 4}, // 5 (bucket 0) slid out; 4 kept for bucket 1
		{12 * time.Second, 0, 1}, {14 * time.Second, 2, 2}, {30 * time.Second, 0, 0},
	}
	for _, s := range steps {
		w.record(t0.Add(s.at), s.v)
		if got := w.current(); got != s.want {
			t.Errorf("at %v recorded %d: current = %d, want %d", s.at, s.v, got, s.want)
		}
	}
}

// BenchmarkDecider: go test ./serving/autoscaler -run XXX -bench Decider
func BenchmarkDecider(b *testing.B) {
	d := NewDecider(spec(10, 101), 1, t0)
	for b.Loop() {
		d.Scale(t0, 1, 50, 10)
	}
}
