package autoscaler

import (
	"testing"
	"time"

	"github.com/tide-run/tide/serving/autoscaler/config"
)

// TestPodAutoscalerRules ports knative.dev/serving pkg/reconciler/autoscaling/kpa/scaler_test.go TestScaler:
// the decider's recommendation (scaleTo) is fixed, the revision's Active condition and its age are set, and
// the applied scale and Knative's "want" are checked.
func TestPodAutoscalerRules(t *testing.T) {
	const (
		stable   = 60 * time.Second
		paStable = 45 * time.Second
		grace    = 30 * time.Second
	)
	g := config.AnnotationGroup + "/"
	now := t0.Add(time.Hour)
	tests := []struct {
		name      string
		start     int32 // instances before the decision
		scaleTo   int32 // the decider's recommendation (-1 = no metrics yet)
		phase     Phase
		age       time.Duration // how long the revision has been in phase
		anns      map[string]string
		cfg       func(*config.Config)
		reachable *bool
		init      bool // initial scale reached before
		want      int32
		desired   int32
	}{
		{name: "waits to scale to zero (just before idle period)", start: 1, scaleTo: 0, phase: PhaseActive, age: stable - time.Second, want: 1, desired: 1},
		{name: "custom window, just before idle", start: 1, scaleTo: 0, phase: PhaseActive, age: paStable - time.Second,
			anns: map[string]string{g + "window": paStable.String()}, want: 1, desired: 1},
		{name: "custom window, idle period over", start: 1, scaleTo: 0, phase: PhaseActive, age: paStable,
			anns: map[string]string{g + "window": paStable.String()}, want: 0, desired: 1},
		{name: "scale to 1 waiting for idle expires", start: 10, scaleTo: 0, phase: PhaseActive, age: stable - time.Second, want: 1, desired: 1},
		{name: "waits to scale to zero after idle period", start: 1, scaleTo: 0, phase: PhaseActive, age: stable, want: 0, desired: 1},
		{name: "after grace, retention annotation 0 overrides the cluster", start: 1, scaleTo: 0, phase: PhaseInactive, age: grace,
			anns: map[string]string{g + "scale-to-zero-pod-retention-period": "0"},
			cfg:  func(c *config.Config) { c.ScaleToZeroPodRetentionPeriod = 2 * grace }, want: 0, desired: 0},
		{name: "after grace, before cluster retention", start: 1, scaleTo: 0, phase: PhaseInactive, age: grace,
			cfg: func(c *config.Config) { c.ScaleToZeroPodRetentionPeriod = 2 * grace }, want: 0, desired: 1},
		{name: "after grace, before annotation retention", start: 1, scaleTo: 0, phase: PhaseInactive, age: grace,
			anns: map[string]string{g + "scale-to-zero-pod-retention-period": (2 * grace).String()}, want: 0, desired: 1},
		{name: "after grace and retention", start: 1, scaleTo: 0, phase: PhaseInactive, age: grace,
			cfg: func(c *config.Config) { c.ScaleToZeroPodRetentionPeriod = grace }, want: 0, desired: 0},
		{name: "scale to zero after grace period", start: 1, scaleTo: 0, phase: PhaseInactive, age: grace, want: 0, desired: 0},
		{name: "waits just before grace period", start: 1, scaleTo: 0, phase: PhaseInactive, age: grace - time.Second, want: 0, desired: 1},
		{name: "scale to zero with TBC -1", start: 1, scaleTo: 0, phase: PhaseInactive, age: grace,
			anns: map[string]string{g + "target-burst-capacity": "-1"}, want: 0, desired: 0},
		{name: "waits while activating until the deadline", start: 1, scaleTo: 0, phase: PhaseActivating,
			age: config.DefaultActivationTimeout, want: -1, desired: 1},
		{name: "to zero while activating after the deadline", start: 1, scaleTo: 0, phase: PhaseActivating,
			age: config.DefaultActivationTimeout + time.Second, want: 0, desired: 0},
		{name: "scale down to min-scale before grace", start: 10, scaleTo: 0, phase: PhaseActive, age: time.Second,
			anns: map[string]string{g + "min-scale": "2"}, init: true, want: 2, desired: 2},
		{name: "scale down to min-scale after grace", start: 10, scaleTo: 0, phase: PhaseInactive, age: grace,
			anns: map[string]string{g + "min-scale": "2"}, init: true, want: 2, desired: 2},
		{name: "unreachable ignores retention", start: 1, scaleTo: 0, phase: PhaseInactive, age: grace, reachable: no(),
			anns: map[string]string{g + "scale-to-zero-pod-retention-period": "10m"}, want: 0, desired: 0},
		{name: "unreachable ignores min-scale", start: 10, scaleTo: 0, phase: PhaseInactive, age: grace, reachable: no(),
			anns: map[string]string{g + "min-scale": "2"}, want: 0, desired: 0},
		{name: "scales up", start: 1, scaleTo: 10, phase: PhaseActive, age: time.Minute, want: 10, desired: 10},
		{name: "scales up to max-scale", start: 1, scaleTo: 10, phase: PhaseActive, age: time.Minute,
			anns: map[string]string{g + "max-scale": "8"}, want: 8, desired: 8},
		{name: "scale up inactive revision", start: 1, scaleTo: 10, phase: PhaseInactive, age: time.Second, want: 10, desired: 10},
		{name: "no scale up from zero without metrics", start: 0, scaleTo: -1, phase: PhaseInactive, age: time.Hour, want: -1, desired: 0},
		{name: "scales up from zero to one", start: 0, scaleTo: 1, phase: PhaseInactive, age: time.Hour, want: 1, desired: 1},
		{name: "scales up from zero to many", start: 0, scaleTo: 20, phase: PhaseInactive, age: time.Hour, want: 20, desired: 20},
		{name: "initial scale attained, now scale down", start: 5, scaleTo: 1, phase: PhaseActive, age: time.Minute, init: true,
			anns: map[string]string{g + "initial-scale": "5"}, want: 1, desired: 1},
		{name: "initial scale not reached overrides desired", start: 5, scaleTo: 1, phase: PhaseActivating, age: time.Second,
			anns: map[string]string{g + "initial-scale": "5"}, want: 5, desired: 5},
		{name: "unreachable with initial scale can go to zero", start: 5, scaleTo: 0, phase: PhaseInactive, age: grace, reachable: no(),
			anns: map[string]string{g + "initial-scale": "5"}, want: 0, desired: 0},
		{name: "scale to zero disabled, min 0", start: 1, scaleTo: 0, phase: PhaseActive, age: time.Hour,
			cfg: func(c *config.Config) { c.EnableScaleToZero = false }, want: 1, desired: 1},
		{name: "scale to zero disabled, min 2", start: 1, scaleTo: 0, phase: PhaseActive, age: time.Hour, init: true,
			anns: map[string]string{g + "min-scale": "2"},
			cfg:  func(c *config.Config) { c.EnableScaleToZero = false }, want: 2, desired: 2},
		{name: "scale to zero disabled, no metrics yet", start: 1, scaleTo: -1, phase: PhaseActive, age: time.Hour,
			cfg: func(c *config.Config) { c.EnableScaleToZero = false }, want: -1, desired: 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := config.Defaults()
			if tt.cfg != nil {
				tt.cfg(&cfg)
			}
			ann, err := config.ParseAnnotations(cfg, tt.anns)
			if err != nil {
				t.Fatal(err)
			}
			reachable := tt.reachable == nil || *tt.reachable
			a := NewAutoscaler(config.Resolve(cfg, ann, 0, reachable), t0, 0)
			a.applied, a.recommended, a.initialized = tt.start, tt.scaleTo, tt.init
			a.phase, a.phaseSince = tt.phase, now.Add(-tt.age)
			// An invalid observation keeps the fixed recommendation, as Knative's scaler sees it.
			d := a.Decide(now, int(tt.start), Observation{})
			if d.Want != tt.want || d.DesiredScale != tt.desired {
				t.Errorf("want, desired = %d, %d; want %d, %d (%+v)", d.Want, d.DesiredScale, tt.want, tt.desired, d)
			}
		})
	}
}
