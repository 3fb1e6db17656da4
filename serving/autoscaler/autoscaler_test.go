package autoscaler

import (
	"testing"
	"time"

	"github.com/tide-run/tide/serving/autoscaler/config"
)

// settings resolves annotations against the defaults (plus cfg changes), as the data plane will.
func settings(t *testing.T, cc int64, anns map[string]string, cfgMut ...func(*config.Config)) config.Settings {
	t.Helper()
	cfg := config.Defaults()
	for _, m := range cfgMut {
		m(&cfg)
	}
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	s, err := config.ForRevision(cfg, anns, cc)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

type pstep struct {
	name    string
	at      time.Duration
	ready   int
	load    float64 // stable and panic average; negative = no data
	panic   float64 // overrides the panic average when non-zero
	desired int32
	inPath  bool
	phase   Phase
}

func runPA(t *testing.T, a *Autoscaler, steps []pstep) {
	t.Helper()
	for i, s := range steps {
		obs := Observation{Stable: s.load, Panic: s.load, Valid: s.load >= 0}
		if s.panic != 0 {
			obs.Panic = s.panic
		}
		if !obs.Valid {
			obs.Stable, obs.Panic = 0, 0
		}
		d := a.Decide(t0.Add(s.at), s.ready, obs)
		if d.DesiredScale != s.desired || d.ActivatorInPath != s.inPath || (s.phase != "" && d.Phase != s.phase) {
			t.Errorf("step %d %q at %v: desired=%d inPath=%v phase=%s (want=%d rec=%d ebc=%d); want desired=%d inPath=%v phase=%s",
				i, s.name, s.at, d.DesiredScale, d.ActivatorInPath, d.Phase, d.Want, d.Recommendation, d.ExcessBurstCapacity,
				s.desired, s.inPath, s.phase)
		}
	}
}

const (
	sec = time.Second
	nod = -1 // no data
)

func TestAutoscalerLifecycle(t *testing.T) {
	g := config.AnnotationGroup + "/"
	zeroInitial := func(c *config.Config) { c.AllowZeroInitialScale = true }
	tests := []struct {
		name  string
		cc    int64
		anns  map[string]string
		cfg   func(*config.Config)
		steps []pstep
	}{
		{name: "defaults: start at 1, idle to zero after stable window + grace", steps: []pstep{
			{name: "created, no data", ready: 0, load: nod, desired: 1, inPath: true, phase: PhaseActivating},
			{name: "ready, no data", at: 1 * sec, ready: 1, load: nod, desired: 1, inPath: true, phase: PhaseActive},
			{name: "idle data, active < 60s: keep one", at: 3 * sec, ready: 1, load: 0, desired: 1, inPath: true, phase: PhaseActive},
			{name: "59s active", at: 60 * sec, ready: 1, load: 0, desired: 1, inPath: true, phase: PhaseActive},
			{name: "60s active: inactive, activator in", at: 61 * sec, ready: 1, load: 0, desired: 1, inPath: true, phase: PhaseInactive},
			{name: "grace not over", at: 90 * sec, ready: 1, load: 0, desired: 1, inPath: true, phase: PhaseInactive},
			{name: "grace over: zero", at: 91 * sec, ready: 1, load: 0, desired: 0, inPath: true, phase: PhaseInactive},
			{name: "stays at zero without data", at: 200 * sec, ready: 0, load: nod, desired: 0, inPath: true, phase: PhaseInactive},
			{name: "request at the activator: scale from zero", at: 201 * sec, ready: 0, load: 1, desired: 1, inPath: true, phase: PhaseActivating},
			{name: "instance ready", at: 201*sec + 100*time.Millisecond, ready: 1, load: 1, desired: 1, inPath: true, phase: PhaseActive},
		}},
		{name: "traffic during grace brings the revision back", steps: []pstep{
			{ready: 1, load: 0, desired: 1, inPath: true, phase: PhaseActive},
			{at: 60 * sec, ready: 1, load: 0, desired: 1, inPath: true, phase: PhaseInactive},
			{name: "a request", at: 70 * sec, ready: 1, load: 0.5, desired: 1, inPath: true, phase: PhaseActive},
			{name: "active again, idle < 60s", at: 100 * sec, ready: 1, load: 0, desired: 1, inPath: true, phase: PhaseActive},
			{at: 130 * sec, ready: 1, load: 0, desired: 1, inPath: true, phase: PhaseInactive},
			{at: 160 * sec, ready: 1, load: 0, desired: 0, inPath: true},
		}},
		{name: "pod retention longer than grace", anns: map[string]string{g + "scale-to-zero-pod-retention-period": "2m"}, steps: []pstep{
			{ready: 1, load: 0, desired: 1, inPath: true, phase: PhaseActive},
			{at: 60 * sec, ready: 1, load: 0, desired: 1, inPath: true, phase: PhaseInactive},
			{name: "grace over, retention not", at: 90 * sec, ready: 1, load: 0, desired: 1, inPath: true},
			{at: 179 * sec, ready: 1, load: 0, desired: 1, inPath: true},
			{at: 180 * sec, ready: 1, load: 0, desired: 0, inPath: true},
		}},
		{name: "cluster grace and window shortened", cfg: func(c *config.Config) {
			c.StableWindow, c.ScaleToZeroGracePeriod = 6*sec, 1*sec
		}, steps: []pstep{
			{ready: 1, load: 0, desired: 1, inPath: true, phase: PhaseActive},
			{at: 6 * sec, ready: 1, load: 0, desired: 1, inPath: true, phase: PhaseInactive},
			{at: 7 * sec, ready: 1, load: 0, desired: 0, inPath: true, phase: PhaseInactive},
		}},
		{name: "scale to zero disabled", cfg: func(c *config.Config) { c.EnableScaleToZero = false }, steps: []pstep{
			{ready: 1, load: 0, desired: 1, inPath: true, phase: PhaseActive},
			{at: 10 * time.Minute, ready: 1, load: 0, desired: 1, inPath: true, phase: PhaseActive},
		}},
		{name: "min-scale keeps instances", anns: map[string]string{g + "minScale": "2"}, steps: []pstep{
			{name: "created: min applies at once", ready: 0, load: nod, desired: 2, inPath: true, phase: PhaseActivating},
			{ready: 2, load: 0, desired: 2, inPath: true, phase: PhaseActive},
			{at: 10 * time.Minute, ready: 2, load: 0, desired: 2, inPath: true, phase: PhaseActive},
		}},
		{name: "max-scale caps", cc: 2, anns: map[string]string{g + "maxScale": "3"}, steps: []pstep{
			{ready: 1, load: 100, desired: 3, inPath: true},
			{at: 2 * sec, ready: 3, load: 100, desired: 3, inPath: true},
		}},
		{name: "initial scale is a floor until reached", anns: map[string]string{g + "initial-scale": "3"}, steps: []pstep{
			// 3 instances * 100 - 211 >= 0: the initial scale covers the burst, so no activator.
			{ready: 0, load: nod, desired: 3, inPath: false, phase: PhaseActivating},
			// 2 ready * 100 - 211 < 0.
			{name: "idle but initial not reached", at: 2 * sec, ready: 2, load: 0, desired: 3, inPath: true, phase: PhaseActivating},
			{name: "reached", at: 4 * sec, ready: 3, load: 0, desired: 3, inPath: false, phase: PhaseActive},
			{name: "now free to shrink (rate 2: 3 -> 1)", at: 6 * sec, ready: 3, load: 0, desired: 1, inPath: false, phase: PhaseActive},
			{name: "one instance cannot cover the burst", at: 8 * sec, ready: 1, load: 0, desired: 1, inPath: true, phase: PhaseActive},
		}},
		{name: "initial scale zero", cfg: zeroInitial, anns: map[string]string{g + "initial-scale": "0"}, steps: []pstep{
			{ready: 0, load: nod, desired: 0, inPath: true, phase: PhaseInactive},
			{at: 2 * sec, ready: 0, load: nod, desired: 0, inPath: true, phase: PhaseInactive},
			{name: "first request", at: 4 * sec, ready: 0, load: 1, desired: 1, inPath: true, phase: PhaseActivating},
		}},
		{name: "activation scale from zero", cfg: zeroInitial,
			anns: map[string]string{g + "initial-scale": "0", g + "activation-scale": "3"}, steps: []pstep{
				{ready: 0, load: nod, desired: 0, inPath: true, phase: PhaseInactive},
				{name: "one request wakes three", at: 2 * sec, ready: 0, load: 0.1, desired: 3, inPath: true, phase: PhaseActivating},
			}},
		{name: "TBC 0: activator only at zero", cfg: zeroInitial,
			anns: map[string]string{g + "initial-scale": "0", g + "target-burst-capacity": "0"}, steps: []pstep{
				{ready: 0, load: nod, desired: 0, inPath: true},
				{at: 2 * sec, ready: 0, load: 1, desired: 1, inPath: false, phase: PhaseActivating},
				{at: 4 * sec, ready: 1, load: 1, desired: 1, inPath: false, phase: PhaseActive},
			}},
		{name: "TBC -1: activator always", anns: map[string]string{g + "target-burst-capacity": "-1"}, steps: []pstep{
			{ready: 1, load: 500, desired: 8, inPath: true},
			{at: 2 * sec, ready: 8, load: 500, desired: 8, inPath: true},
		}},
		{name: "TBC 211 leaves the path once capacity covers the burst", cc: 0, steps: []pstep{
			// 1 instance * 100 - 211 - 60 < 0: in path.
			{ready: 1, load: 60, desired: 1, inPath: true},
			// 5 ready * 100 - 211 - 210 = 79 >= 0: out of the path (210/70 = 3 wanted, panic keeps 5? no panic: 3/5 < 2).
			{at: 2 * sec, ready: 5, load: 210, desired: 3, inPath: false},
			// A burst: panic 400 -> 5*100-211-400 < 0: back in the path (6/5 is under the panic threshold).
			{at: 4 * sec, ready: 5, load: 210, panic: 400, desired: 3, inPath: true},
		}},
		{name: "activation timeout", steps: []pstep{
			{ready: 0, load: nod, desired: 1, inPath: true, phase: PhaseActivating},
			{at: 10 * time.Minute, ready: 0, load: 0, desired: 1, inPath: true, phase: PhaseActivating},
			{at: 10*time.Minute + 31*sec, ready: 0, load: 0, desired: 0, inPath: true, phase: PhaseInactive},
		}},
		{name: "seed barrage processor: CC 2, minScale 0, maxScale 100", cc: 2,
			anns: map[string]string{g + "minScale": "0", g + "maxScale": "100"}, steps: []pstep{
				{ready: 1, load: 0, desired: 1, inPath: true, phase: PhaseActive},
				// Meal-time peak: 70 concurrent over 1 instance; target 1.4 -> 50 wanted, panic, rate 1000.
				{at: 2 * sec, ready: 1, load: 70, desired: 50, inPath: true},
				{at: 4 * sec, ready: 50, load: 140, desired: 100, inPath: true},
				{name: "capped at 100", at: 6 * sec, ready: 100, load: 300, desired: 100, inPath: true},
			}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var muts []func(*config.Config)
			if tt.cfg != nil {
				muts = append(muts, tt.cfg)
			}
			s := settings(t, tt.cc, tt.anns, muts...)
			runPA(t, NewAutoscaler(s, t0, 0), tt.steps)
		})
	}
}

func TestAutoscalerUnreachable(t *testing.T) {
	g := config.AnnotationGroup + "/"
	cfg := config.Defaults()
	ann, err := config.ParseAnnotations(cfg, map[string]string{g + "min-scale": "3", g + "scale-to-zero-pod-retention-period": "10m"})
	if err != nil {
		t.Fatal(err)
	}
	a := NewAutoscaler(config.Resolve(cfg, ann, 0, true), t0, 0)
	runPA(t, a, []pstep{{ready: 3, load: 0, desired: 3, inPath: false, phase: PhaseActive}})
	// The route moved away: min-scale and retention no longer hold, the scale-down rate no longer limits.
	a.Update(config.Resolve(cfg, ann, 0, false))
	runPA(t, a, []pstep{
		{at: 2 * sec, ready: 3, load: 0, desired: 1, inPath: false, phase: PhaseActive},
		{at: 60 * sec, ready: 1, load: 0, desired: 1, inPath: true, phase: PhaseInactive},
		{at: 90 * sec, ready: 1, load: 0, desired: 0, inPath: true, phase: PhaseInactive},
	})
}

func TestAutoscalerInitialDecision(t *testing.T) {
	s := settings(t, 0, nil)
	a := NewAutoscaler(s, t0, 0)
	d := a.Last()
	if d.DesiredScale != 1 || !d.ActivatorInPath || d.ExcessBurstCapacity != 100-211 || d.Want != -1 {
		t.Errorf("initial decision = %+v", d)
	}
	s.TargetBurstCapacity = 0
	if d := NewAutoscaler(s, t0, 0).Last(); d.ActivatorInPath || d.ExcessBurstCapacity != 0 {
		t.Errorf("TBC 0 initial decision = %+v", d)
	}
	// min-scale above the initial scale: start at min-scale (Knative's first reconcile does the same).
	if d := NewAutoscaler(settings(t, 0, map[string]string{config.AnnotationMinScale: "2"}), t0, 0).Last(); d.DesiredScale != 2 {
		t.Errorf("min-scale 2 initial decision = %+v", d)
	}
	// Knative's TestMultiscalerCreateTBC42 / TBCMinus1: initial EBC = initial scale * total - TBC.
	s = settings(t, 0, nil)
	s.InitialScale, s.TargetBurstCapacity, s.TotalValue = 2, 42, 25
	if d := NewAutoscaler(s, t0, 0).Last(); d.ExcessBurstCapacity != 50-42 || d.ActivatorInPath || d.DesiredScale != 2 {
		t.Errorf("TBC 42 initial decision = %+v", d)
	}
	s.TargetBurstCapacity = -1
	if d := NewAutoscaler(s, t0, 0).Last(); d.ExcessBurstCapacity != -1 || !d.ActivatorInPath {
		t.Errorf("TBC -1 initial decision = %+v", d)
	}
	// Recreated over 4 running instances: keep them (panic mode guards against scale-down without history).
	a = NewAutoscaler(settings(t, 0, nil), t0, 4)
	if d := a.Last(); d.DesiredScale != 4 || d.Phase != PhaseActive {
		t.Errorf("recreated decision = %+v", d)
	}
	if d := a.Decide(t0.Add(2*sec), 4, Observation{Valid: true}); d.DesiredScale != 4 || !d.Panicking {
		t.Errorf("first decision after restart = %+v", d)
	}
}
