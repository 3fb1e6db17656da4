package config

import (
	"fmt"
	"math"
	"strconv"
	"time"
)

// Settings is everything the autoscaler needs for one revision: the cluster defaults overlaid with the
// revision's annotations and containerConcurrency. It combines Knative's DeciderSpec, the Metric windows and
// the PodAutoscaler bounds. Build it with ForRevision or Resolve.
type Settings struct {
	// Class and Metric: Metric is Concurrency or RPS for the KPA.
	Class  string
	Metric string
	// TargetValue is the per-instance value the decider aims for (TotalValue * utilization, at least
	// TargetMin); TotalValue is what one instance can take (containerConcurrency, the target annotation or
	// the default).
	TargetValue float64
	TotalValue  float64
	// TargetBurstCapacity: -1 keeps the activator always in the path, 0 only at zero.
	TargetBurstCapacity float64
	// PanicThreshold is a factor (2.0 for 200%).
	PanicThreshold float64
	// StableWindow and PanicWindow are the averaging windows (PanicWindow at least one bucket).
	StableWindow time.Duration
	PanicWindow  time.Duration
	// MaxScaleUpRate and MaxScaleDownRate limit one decision's change.
	MaxScaleUpRate   float64
	MaxScaleDownRate float64
	// ScaleDownDelay holds scale-downs until the lower value persisted this long.
	ScaleDownDelay time.Duration
	// MinScale, MaxScale (0 = unlimited), InitialScale and ActivationScale (<= 1: no effect).
	MinScale        int32
	MaxScale        int32
	InitialScale    int32
	ActivationScale int32
	// EnableScaleToZero, ScaleToZeroGracePeriod and ScaleToZeroPodRetention govern the last instance.
	EnableScaleToZero       bool
	ScaleToZeroGracePeriod  time.Duration
	ScaleToZeroPodRetention time.Duration
	// Reachable is false when no route sends traffic to the revision: then min-scale, initial-scale,
	// pod retention and the scale-down rate limit and delay are ignored, so it can go away at once.
	Reachable bool
	// AggregationAlgorithm: "" or linear averages linearly; weighted-exponential (or weightedExponential)
	// weighs recent seconds more.
	AggregationAlgorithm string
	// ActivationTimeout is how long a revision may be wanted but not ready before it is scaled back to zero;
	// 0 means DefaultActivationTimeout.
	ActivationTimeout time.Duration
}

// DefaultActivationTimeout is Knative's default progress deadline (600 s) plus its 30 s buffer.
const DefaultActivationTimeout = 630 * time.Second

// ActivationTimeoutOrDefault returns ActivationTimeout, or DefaultActivationTimeout when unset.
func (s Settings) ActivationTimeoutOrDefault() time.Duration {
	if s.ActivationTimeout > 0 {
		return s.ActivationTimeout
	}
	return DefaultActivationTimeout
}

// ForRevision parses a revision's annotations and combines them with its containerConcurrency
// (spec.containerConcurrency, 0 = unlimited) and the cluster Config. The revision is taken as reachable.
func ForRevision(cfg Config, annotations map[string]string, containerConcurrency int64) (Settings, error) {
	if containerConcurrency < 0 {
		return Settings{}, Errors{{Paths: []string{"spec.containerConcurrency"},
			Value: fmt.Sprint(containerConcurrency), Message: "must be at least 0"}}
	}
	a, err := ParseAnnotations(cfg, annotations)
	if err != nil {
		return Settings{}, err
	}
	return Resolve(cfg, a, containerConcurrency, true), nil
}

// Resolve overlays parsed annotations on cfg. It does not validate; a and cfg are expected to come from
// ParseAnnotations and FromMap/Validate.
func Resolve(cfg Config, a Annotations, containerConcurrency int64, reachable bool) Settings {
	s := Settings{
		Class:                   cfg.Class,
		MaxScaleUpRate:          cfg.MaxScaleUpRate,
		MaxScaleDownRate:        cfg.MaxScaleDownRate,
		TargetBurstCapacity:     cfg.TargetBurstCapacity,
		PanicThreshold:          cfg.PanicThresholdPercentage / 100,
		StableWindow:            cfg.StableWindow,
		ScaleDownDelay:          cfg.ScaleDownDelay,
		MinScale:                cfg.MinScale,
		MaxScale:                cfg.MaxScale,
		InitialScale:            cfg.InitialScale,
		EnableScaleToZero:       cfg.EnableScaleToZero,
		ScaleToZeroGracePeriod:  cfg.ScaleToZeroGracePeriod,
		ScaleToZeroPodRetention: cfg.ScaleToZeroPodRetentionPeriod,
		Reachable:               reachable,
		AggregationAlgorithm:    a.AggregationAlgorithm,
	}
	if a.Class != "" {
		s.Class = a.Class
	}
	s.Metric = a.Metric
	if s.Metric == "" {
		s.Metric = Concurrency
		if s.Class == ClassHPA {
			s.Metric = CPU
		}
	}

	// Target: the per-instance total comes from containerConcurrency (or the default), or the rps default;
	// a target annotation replaces it, capped by containerConcurrency for the concurrency metric.
	var tu float64
	switch s.Metric {
	case RPS:
		s.TotalValue = cfg.RPSTargetDefault
		tu = cfg.TargetUtilization
	default:
		s.TotalValue = float64(containerConcurrency)
		if s.TotalValue == 0 {
			s.TotalValue = cfg.ContainerConcurrencyTargetDefault
		}
		tu = cfg.ContainerConcurrencyTargetFraction
	}
	if a.Target != nil {
		s.TotalValue = *a.Target
		if s.Metric == Concurrency && containerConcurrency != 0 {
			s.TotalValue = math.Min(*a.Target, float64(containerConcurrency))
		}
	}
	if a.TargetUtilization != nil {
		tu = *a.TargetUtilization
	}
	s.TargetValue = math.Max(TargetMin, s.TotalValue*tu)

	if a.TargetBurstCapacity != nil {
		s.TargetBurstCapacity = *a.TargetBurstCapacity
	}
	if a.PanicThresholdPercentage != nil {
		s.PanicThreshold = *a.PanicThresholdPercentage / 100
	}
	if a.Window != nil {
		s.StableWindow = *a.Window
	}
	pwp := cfg.PanicWindowPercentage
	if a.PanicWindowPercentage != nil {
		pwp = *a.PanicWindowPercentage
	}
	s.PanicWindow = time.Duration(float64(s.StableWindow) * pwp / 100).Round(time.Second)
	if s.PanicWindow < BucketSize {
		s.PanicWindow = BucketSize
	}
	if a.ScaleDownDelay != nil {
		s.ScaleDownDelay = *a.ScaleDownDelay
	}
	if a.ScaleToZeroPodRetention != nil {
		s.ScaleToZeroPodRetention = *a.ScaleToZeroPodRetention
	}
	if a.MinScale != nil {
		s.MinScale = *a.MinScale
	}
	if a.MaxScale != nil {
		s.MaxScale = *a.MaxScale
	}
	// Knative's initial scale: the revision's value wins unless it is 0 and the cluster forbids 0.
	if a.InitialScale != nil && (*a.InitialScale != 0 || cfg.AllowZeroInitialScale) {
		s.InitialScale = *a.InitialScale
	}
	if a.ActivationScale != nil {
		s.ActivationScale = *a.ActivationScale
	}
	if !reachable {
		s.MinScale = 0
		s.ScaleToZeroPodRetention = 0
	}
	return s
}

// Validate checks the invariants the decider relies on (ForRevision output always passes); it guards
// Settings built by hand. Paths name the Settings fields.
func (s Settings) Validate() error {
	var e errs
	f := func(v float64) string { return strconv.FormatFloat(v, 'g', -1, 64) }
	if !(s.TargetValue >= TargetMin) {
		e.add("TargetValue", f(s.TargetValue), "must be at least %v", TargetMin)
	}
	if !(s.TotalValue > 0) {
		e.add("TotalValue", f(s.TotalValue), "must be positive")
	}
	if !(s.MaxScaleUpRate > 1) || !(s.MaxScaleDownRate > 1) {
		e.addMulti([]string{"MaxScaleUpRate", "MaxScaleDownRate"}, "must be greater than 1 (got %v, %v)",
			s.MaxScaleUpRate, s.MaxScaleDownRate)
	}
	if !(s.PanicThreshold > 0) {
		e.add("PanicThreshold", f(s.PanicThreshold), "must be positive")
	}
	if s.TargetBurstCapacity < 0 && s.TargetBurstCapacity != -1 {
		e.add("TargetBurstCapacity", f(s.TargetBurstCapacity), "must be non-negative or -1")
	}
	if s.StableWindow < BucketSize || s.PanicWindow < BucketSize || s.PanicWindow > s.StableWindow {
		e.addMulti([]string{"StableWindow", "PanicWindow"}, "want 1s <= panic (%v) <= stable (%v)", s.PanicWindow, s.StableWindow)
	}
	if s.MinScale < 0 || s.MaxScale < 0 || s.InitialScale < 0 || (s.MaxScale != 0 && s.MinScale > s.MaxScale) {
		e.addMulti([]string{"MinScale", "MaxScale", "InitialScale"}, "want 0 <= min (%d) <= max (%d, 0 = unlimited), initial (%d) >= 0",
			s.MinScale, s.MaxScale, s.InitialScale)
	}
	if s.ScaleDownDelay < 0 || s.ScaleToZeroGracePeriod < 0 || s.ScaleToZeroPodRetention < 0 {
		e.addMulti([]string{"ScaleDownDelay", "ScaleToZeroGracePeriod", "ScaleToZeroPodRetention"}, "must not be negative")
	}
	return e.asError()
}
