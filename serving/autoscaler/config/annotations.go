package config

import (
	"math"
	"strconv"
	"strings"
	"time"
)

// AnnotationGroup is the annotation prefix every per-revision autoscaling setting lives under.
const AnnotationGroup = "autoscaling.knative.dev"

// Annotation keys (current spellings). Several also have a legacy camelCase spelling that keeps working; the
// current spelling wins when both are present.
const (
	AnnotationClass                    = AnnotationGroup + "/class"
	AnnotationMetric                   = AnnotationGroup + "/metric"
	AnnotationTarget                   = AnnotationGroup + "/target"
	AnnotationTargetUtilization        = AnnotationGroup + "/target-utilization-percentage"
	AnnotationTargetBurstCapacity      = AnnotationGroup + "/target-burst-capacity"
	AnnotationWindow                   = AnnotationGroup + "/window"
	AnnotationPanicWindowPercentage    = AnnotationGroup + "/panic-window-percentage"
	AnnotationPanicThresholdPercentage = AnnotationGroup + "/panic-threshold-percentage"
	AnnotationMinScale                 = AnnotationGroup + "/min-scale"
	AnnotationMaxScale                 = AnnotationGroup + "/max-scale"
	AnnotationInitialScale             = AnnotationGroup + "/initial-scale"
	AnnotationScaleDownDelay           = AnnotationGroup + "/scale-down-delay"
	AnnotationScaleToZeroPodRetention  = AnnotationGroup + "/scale-to-zero-pod-retention-period"
	AnnotationActivationScale          = AnnotationGroup + "/activation-scale"
	AnnotationAggregationAlgorithm     = AnnotationGroup + "/metric-aggregation-algorithm"
)

// Values of the metric-aggregation-algorithm annotation.
const (
	AlgorithmLinear                 = "linear"
	AlgorithmWeightedExponential    = "weighted-exponential"
	AlgorithmWeightedExponentialAlt = "weightedExponential"
)

// AnnotationsPath is the field path of a revision's annotations, prefixed to every annotation error.
const AnnotationsPath = "metadata.annotations"

// aliases maps a current key to its legacy spellings, in priority order after the current one.
var aliases = map[string][]string{
	AnnotationMinScale:                 {AnnotationGroup + "/minScale"},
	AnnotationMaxScale:                 {AnnotationGroup + "/maxScale"},
	AnnotationInitialScale:             {AnnotationGroup + "/initialScale"},
	AnnotationTargetUtilization:        {AnnotationGroup + "/targetUtilizationPercentage"},
	AnnotationTargetBurstCapacity:      {AnnotationGroup + "/targetBurstCapacity"},
	AnnotationPanicWindowPercentage:    {AnnotationGroup + "/panicWindowPercentage"},
	AnnotationPanicThresholdPercentage: {AnnotationGroup + "/panicThresholdPercentage"},
	AnnotationScaleDownDelay:           {AnnotationGroup + "/scaleDownDelay"},
	AnnotationScaleToZeroPodRetention:  {AnnotationGroup + "/scaleToZeroPodRetentionPeriod"},
	AnnotationAggregationAlgorithm:     {AnnotationGroup + "/metricAggregationAlgorithm"},
}

// lookup returns the key actually present (current spelling first) and its value.
func lookup(m map[string]string, key string) (string, string, bool) {
	if v, ok := m[key]; ok {
		return key, v, true
	}
	for _, k := range aliases[key] {
		if v, ok := m[k]; ok {
			return k, v, true
		}
	}
	return "", "", false
}

// Annotations holds the autoscaling settings a revision set through annotations; a nil pointer (or empty
// string) means "not set, use the cluster default". Fractions are stored as fractions.
type Annotations struct {
	Class                    string
	Metric                   string
	Target                   *float64
	TargetUtilization        *float64 // fraction: the annotation's percentage / 100
	TargetBurstCapacity      *float64
	Window                   *time.Duration
	PanicWindowPercentage    *float64
	PanicThresholdPercentage *float64
	MinScale                 *int32
	MaxScale                 *int32
	InitialScale             *int32
	ActivationScale          *int32
	ScaleDownDelay           *time.Duration
	ScaleToZeroPodRetention  *time.Duration
	AggregationAlgorithm     string
}

// ParseAnnotations reads and validates every autoscaling.knative.dev annotation against cfg (which supplies
// the default class, max-scale-limit and allow-zero-initial-scale). Errors name the field path
// metadata.annotations.<key> of the key actually used and wrap ErrInvalid; all problems are reported together.
func ParseAnnotations(cfg Config, anns map[string]string) (Annotations, error) {
	return ParseAnnotationsAt(cfg, anns, AnnotationsPath)
}

// ParseAnnotationsAt is ParseAnnotations with another base path for the errors, e.g.
// "spec.template.metadata.annotations" when validating a Service or Configuration.
func ParseAnnotationsAt(cfg Config, anns map[string]string, base string) (Annotations, error) {
	p := annParser{m: anns, base: base}
	var a Annotations

	if k, v, ok := lookup(anns, AnnotationClass); ok {
		if strings.HasSuffix(v, ".knative.dev") && v != ClassKPA && v != ClassHPA {
			p.add(k, v, "want %s or %s", ClassKPA, ClassHPA)
		}
		a.Class = v
	}
	if k, v, ok := lookup(anns, AnnotationMetric); ok {
		class := cfg.Class
		if a.Class != "" {
			class = a.Class
		}
		valid := true
		switch class {
		case ClassKPA:
			valid = v == Concurrency || v == RPS
		case ClassHPA:
			valid = v != ""
		}
		if !valid {
			p.add(k, v, "want %s or %s for class %s", Concurrency, RPS, class)
		}
		a.Metric = v
	}
	if k, v, ok := lookup(anns, AnnotationAggregationAlgorithm); ok {
		// Like Knative, only validated when the class is explicitly the KPA; other autoscalers may define
		// their own algorithms.
		if a.Class == ClassKPA {
			switch v {
			case AlgorithmLinear, AlgorithmWeightedExponential, AlgorithmWeightedExponentialAlt:
			default:
				p.add(k, v, "want %s or %s", AlgorithmLinear, AlgorithmWeightedExponential)
			}
		}
		a.AggregationAlgorithm = v
	}

	a.Target = p.float(AnnotationTarget, func(k, v string, f float64) bool {
		if f < TargetMin {
			p.add(k, v, "target should be at least %g", TargetMin)
			return false
		}
		return true
	})
	if tu := p.float(AnnotationTargetUtilization, p.bounds(1, 100)); tu != nil {
		f := *tu / 100
		a.TargetUtilization = &f
	}
	a.TargetBurstCapacity = p.float(AnnotationTargetBurstCapacity, func(k, v string, f float64) bool {
		if f < 0 && f != -1 {
			p.add(k, v, "must be either non-negative or -1 (for unlimited)")
			return false
		}
		return true
	})
	a.PanicWindowPercentage = p.float(AnnotationPanicWindowPercentage,
		p.bounds(PanicWindowPercentageMin, PanicWindowPercentageMax))
	a.PanicThresholdPercentage = p.float(AnnotationPanicThresholdPercentage,
		p.bounds(PanicThresholdPercentageMin, PanicThresholdPercentageMax))

	a.Window = p.duration(AnnotationWindow, func(k, v string, d time.Duration) bool {
		switch {
		case d < WindowMin || d > WindowMax:
			p.add(k, v, "must be in [%v, %v]", WindowMin, WindowMax)
		case d.Truncate(time.Second) != d:
			p.add(k, v, "must be specified with at most second precision")
		default:
			return true
		}
		return false
	})
	a.ScaleDownDelay = p.duration(AnnotationScaleDownDelay, func(k, v string, d time.Duration) bool {
		switch {
		case d < 0 || d > WindowMax:
			p.add(k, v, "must be in [0s, %v]", WindowMax)
		case d.Round(time.Second) != d:
			p.add(k, v, "must be specified with at most second precision")
		default:
			return true
		}
		return false
	})
	a.ScaleToZeroPodRetention = p.duration(AnnotationScaleToZeroPodRetention, func(k, v string, d time.Duration) bool {
		if d < 0 || d > WindowMax {
			p.add(k, v, "must be in [0s, %v]", WindowMax)
			return false
		}
		return true
	})

	a.MinScale = p.intGE0(AnnotationMinScale)
	a.MaxScale = p.intGE0(AnnotationMaxScale)
	var minV, maxV int32
	if a.MinScale != nil {
		minV = *a.MinScale
	}
	if a.MaxScale != nil {
		maxV = *a.MaxScale
	}
	if a.MinScale != nil && a.MaxScale != nil && maxV != 0 && maxV < minV {
		kMax, _, _ := lookup(anns, AnnotationMaxScale)
		kMin, _, _ := lookup(anns, AnnotationMinScale)
		p.addMulti([]string{kMax, kMin}, "max-scale=%d is less than min-scale=%d", maxV, minV)
	}
	if k, v, ok := lookup(anns, AnnotationMaxScale); ok && a.MaxScale != nil && cfg.MaxScaleLimit > 0 {
		if maxV > cfg.MaxScaleLimit {
			p.add(k, v, "must be in [1, %d] (max-scale-limit)", cfg.MaxScaleLimit)
		}
		if maxV == 0 {
			p.add(k, v, "max-scale=0 (unlimited) is not allowed, must be at most %d (max-scale-limit)", cfg.MaxScaleLimit)
		}
	}
	if k, v, ok := lookup(anns, AnnotationActivationScale); ok {
		n, err := strconv.ParseInt(strings.TrimSpace(v), 10, 32)
		switch {
		case err != nil:
			p.add(k, v, "want a whole number")
		case minV > int32(n):
			p.add(k, v, "min-scale=%d is greater than activation-scale=%d", minV, n)
		case maxV != 0 && maxV < int32(n):
			p.add(k, v, "max-scale=%d is less than activation-scale=%d", maxV, n)
		case n < 2:
			p.add(k, v, "activation-scale=%d must be greater than 1", n)
		default:
			x := int32(n)
			a.ActivationScale = &x
		}
	}
	if k, v, ok := lookup(anns, AnnotationInitialScale); ok {
		n, err := strconv.ParseInt(strings.TrimSpace(v), 10, 32)
		switch {
		case err != nil:
			p.add(k, v, "want a whole number")
		case n < 0:
			p.add(k, v, "must be at least 0")
		case n == 0 && !cfg.AllowZeroInitialScale:
			p.add(k, v, "initial-scale=0 is not allowed by the cluster (allow-zero-initial-scale is false)")
		default:
			x := int32(n)
			a.InitialScale = &x
		}
	}
	if err := p.asError(); err != nil {
		return Annotations{}, err
	}
	return a, nil
}

// annParser collects annotation errors with their full field paths.
type annParser struct {
	errs
	m    map[string]string
	base string
}

func (p *annParser) path(k string) string {
	if p.base == "" {
		return k
	}
	return p.base + "." + k
}

func (p *annParser) add(k, v, format string, args ...any) {
	p.errs.add(p.path(k), v, format, args...)
}

func (p *annParser) addMulti(keys []string, format string, args ...any) {
	paths := make([]string, len(keys))
	for i, k := range keys {
		paths[i] = p.path(k)
	}
	p.errs.addMulti(paths, format, args...)
}

func (p *annParser) bounds(lo, hi float64) func(k, v string, f float64) bool {
	return func(k, v string, f float64) bool {
		if f < lo || f > hi {
			p.add(k, v, "must be in [%v, %v]", lo, hi)
			return false
		}
		return true
	}
}

func (p *annParser) float(key string, check func(k, v string, f float64) bool) *float64 {
	k, v, ok := lookup(p.m, key)
	if !ok {
		return nil
	}
	f, err := strconv.ParseFloat(strings.TrimSpace(v), 64)
	if err != nil || math.IsNaN(f) || math.IsInf(f, 0) {
		p.add(k, v, "want a number")
		return nil
	}
	if !check(k, v, f) {
		return nil
	}
	return &f
}

func (p *annParser) duration(key string, check func(k, v string, d time.Duration) bool) *time.Duration {
	k, v, ok := lookup(p.m, key)
	if !ok {
		return nil
	}
	d, err := time.ParseDuration(strings.TrimSpace(v))
	if err != nil {
		p.add(k, v, "want a duration such as 30s or 1m")
		return nil
	}
	if !check(k, v, d) {
		return nil
	}
	return &d
}

func (p *annParser) intGE0(key string) *int32 {
	k, v, ok := lookup(p.m, key)
	if !ok {
		return nil
	}
	n, err := strconv.ParseInt(strings.TrimSpace(v), 10, 32)
	if err != nil || n < 0 {
		p.add(k, v, "want a whole number in [0, %d]", math.MaxInt32)
		return nil
	}
	x := int32(n)
	return &x
}
