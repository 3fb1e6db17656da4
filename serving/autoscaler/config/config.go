package config

import (
	"fmt"
	"math"
	"sort"
	"strconv"
	"strings"
	"time"
)

// Limits shared by the cluster-wide config and the annotations (the same as Knative's).
const (
	// BucketSize is the width of one metrics bucket; windows are whole multiples of it.
	BucketSize = time.Second
	// WindowMin and WindowMax bound the stable window (config key stable-window, annotation window).
	WindowMin = 6 * time.Second
	WindowMax = time.Hour
	// TargetMin is the smallest per-instance target the decider will divide by.
	TargetMin = 0.01
	// PanicWindowPercentageMin/Max bound panic-window-percentage.
	PanicWindowPercentageMin = 1.0
	PanicWindowPercentageMax = 100.0
	// PanicThresholdPercentageMin/Max bound the panic-threshold-percentage annotation.
	PanicThresholdPercentageMin = 110.0
	PanicThresholdPercentageMax = 1000.0
)

// Autoscaler classes and metrics (values of the class and metric annotations).
const (
	ClassKPA    = "kpa.autoscaling.knative.dev"
	ClassHPA    = "hpa.autoscaling.knative.dev"
	Concurrency = "concurrency"
	RPS         = "rps"
	CPU         = "cpu"
	Memory      = "memory"
)

// Keys of the cluster-wide configuration: the data keys of Knative's config-autoscaler ConfigMap.
const (
	KeyClass                         = "pod-autoscaler-class"
	KeyEnableScaleToZero             = "enable-scale-to-zero"
	KeyAllowZeroInitialScale         = "allow-zero-initial-scale"
	KeyMaxScaleUpRate                = "max-scale-up-rate"
	KeyMaxScaleDownRate              = "max-scale-down-rate"
	KeyTargetPercentage              = "container-concurrency-target-percentage"
	KeyTargetDefault                 = "container-concurrency-target-default"
	KeyRPSTargetDefault              = "requests-per-second-target-default"
	KeyTargetBurstCapacity           = "target-burst-capacity"
	KeyPanicWindowPercentage         = "panic-window-percentage"
	KeyActivatorCapacity             = "activator-capacity"
	KeyPanicThresholdPercentage      = "panic-threshold-percentage"
	KeyInitialScale                  = "initial-scale"
	KeyMinScale                      = "min-scale"
	KeyMaxScale                      = "max-scale"
	KeyMaxScaleLimit                 = "max-scale-limit"
	KeyStableWindow                  = "stable-window"
	KeyScaleDownDelay                = "scale-down-delay"
	KeyScaleToZeroGracePeriod        = "scale-to-zero-grace-period"
	KeyScaleToZeroPodRetentionPeriod = "scale-to-zero-pod-retention-period"
)

// Config is the cluster-wide autoscaler configuration. The zero value is not valid; start from Defaults() or
// FromMap. Fractions are stored as fractions (0.7), the way the decider uses them, while the map keys take
// percentages (70), as Knative's ConfigMap does.
type Config struct {
	// Class is the default autoscaler class (pod-autoscaler-class). tide implements only the KPA.
	Class string
	// EnableScaleToZero (enable-scale-to-zero, default true): when false a revision never goes below 1.
	EnableScaleToZero bool
	// AllowZeroInitialScale (allow-zero-initial-scale, default false) permits initial-scale 0.
	AllowZeroInitialScale bool

	// MaxScaleUpRate (max-scale-up-rate, default 1000): one decision grows to at most ceil(rate * ready).
	MaxScaleUpRate float64
	// MaxScaleDownRate (max-scale-down-rate, default 2): one decision shrinks to at least floor(ready / rate).
	MaxScaleDownRate float64

	// ContainerConcurrencyTargetFraction (container-concurrency-target-percentage, default 70%) is the target
	// utilization for the concurrency metric.
	ContainerConcurrencyTargetFraction float64
	// ContainerConcurrencyTargetDefault (container-concurrency-target-default, default 100) is the per-instance
	// total when containerConcurrency is 0 (unlimited) and no target annotation is set.
	ContainerConcurrencyTargetDefault float64
	// TargetUtilization is the utilization for metrics other than concurrency (rps). Knative does not expose
	// it in the ConfigMap either; the target-utilization-percentage annotation overrides it per revision.
	TargetUtilization float64
	// RPSTargetDefault (requests-per-second-target-default, default 200) is the per-instance rps total.
	RPSTargetDefault float64

	// TargetBurstCapacity (target-burst-capacity, default 211): spare capacity to keep before the activator
	// leaves the request path; -1 keeps the activator always in the path, 0 only while at zero.
	TargetBurstCapacity float64
	// ActivatorCapacity (activator-capacity, default 100) is kept for fidelity; tide has one activator.
	ActivatorCapacity float64

	// StableWindow (stable-window, default 60s, 6s..1h, whole seconds).
	StableWindow time.Duration
	// PanicWindowPercentage (panic-window-percentage, default 10): the panic window as a percentage of the
	// stable window.
	PanicWindowPercentage float64
	// PanicThresholdPercentage (panic-threshold-percentage, default 200).
	PanicThresholdPercentage float64

	// ScaleToZeroGracePeriod (scale-to-zero-grace-period, default 30s): how long the activator must be in
	// the path before the last instance is removed.
	ScaleToZeroGracePeriod time.Duration
	// ScaleToZeroPodRetentionPeriod (scale-to-zero-pod-retention-period, default 0): the minimum time the
	// last instance is kept after the revision went idle.
	ScaleToZeroPodRetentionPeriod time.Duration
	// ScaleDownDelay (scale-down-delay, default 0): scale-downs apply only after the lower value held this
	// long.
	ScaleDownDelay time.Duration

	// InitialScale (initial-scale, default 1), MinScale (min-scale, default 0), MaxScale (max-scale, default
	// 0 = unlimited) and MaxScaleLimit (max-scale-limit, default 0 = none) are the cluster defaults and
	// bounds for the per-revision annotations.
	InitialScale  int32
	MinScale      int32
	MaxScale      int32
	MaxScaleLimit int32
}

// Defaults returns Knative's defaults.
func Defaults() Config {
	return Config{
		Class:                              ClassKPA,
		EnableScaleToZero:                  true,
		AllowZeroInitialScale:              false,
		MaxScaleUpRate:                     1000,
		MaxScaleDownRate:                   2,
		ContainerConcurrencyTargetFraction: 0.7,
		ContainerConcurrencyTargetDefault:  100,
		TargetUtilization:                  0.7,
		RPSTargetDefault:                   200,
		TargetBurstCapacity:                211,
		ActivatorCapacity:                  100,
		StableWindow:                       60 * time.Second,
		PanicWindowPercentage:              10,
		PanicThresholdPercentage:           200,
		ScaleToZeroGracePeriod:             30 * time.Second,
		ScaleToZeroPodRetentionPeriod:      0,
		ScaleDownDelay:                     0,
		InitialScale:                       1,
		MinScale:                           0,
		MaxScale:                           0,
		MaxScaleLimit:                      0,
	}
}

// FromMap builds a Config from config-autoscaler style data: absent keys keep their defaults, every present
// key must parse, and the result must validate. Unknown keys are ignored, as Knative does (a ConfigMap carries
// an _example key). Errors name the offending key(s) and wrap ErrInvalid.
func FromMap(data map[string]string) (Config, error) {
	c := Defaults()
	var e errs
	str := func(k string, dst *string) {
		if v, ok := data[k]; ok {
			*dst = strings.TrimSpace(v)
		}
	}
	boolean := func(k string, dst *bool) {
		if v, ok := data[k]; ok {
			b, err := strconv.ParseBool(strings.TrimSpace(v))
			if err != nil {
				e.add(k, v, "want true or false")
				return
			}
			*dst = b
		}
	}
	float := func(k string, dst *float64) {
		if v, ok := data[k]; ok {
			f, err := strconv.ParseFloat(strings.TrimSpace(v), 64)
			if err != nil || math.IsNaN(f) || math.IsInf(f, 0) {
				e.add(k, v, "want a number")
				return
			}
			*dst = f
		}
	}
	int32v := func(k string, dst *int32) {
		if v, ok := data[k]; ok {
			i, err := strconv.ParseInt(strings.TrimSpace(v), 10, 32)
			if err != nil {
				e.add(k, v, "want a whole number")
				return
			}
			*dst = int32(i)
		}
	}
	duration := func(k string, dst *time.Duration) {
		if v, ok := data[k]; ok {
			d, err := time.ParseDuration(strings.TrimSpace(v))
			if err != nil {
				e.add(k, v, "want a duration such as 30s or 1m")
				return
			}
			*dst = d
		}
	}
	str(KeyClass, &c.Class)
	boolean(KeyEnableScaleToZero, &c.EnableScaleToZero)
	boolean(KeyAllowZeroInitialScale, &c.AllowZeroInitialScale)
	float(KeyMaxScaleUpRate, &c.MaxScaleUpRate)
	float(KeyMaxScaleDownRate, &c.MaxScaleDownRate)
	float(KeyTargetPercentage, &c.ContainerConcurrencyTargetFraction)
	float(KeyTargetDefault, &c.ContainerConcurrencyTargetDefault)
	float(KeyRPSTargetDefault, &c.RPSTargetDefault)
	float(KeyTargetBurstCapacity, &c.TargetBurstCapacity)
	float(KeyPanicWindowPercentage, &c.PanicWindowPercentage)
	float(KeyActivatorCapacity, &c.ActivatorCapacity)
	float(KeyPanicThresholdPercentage, &c.PanicThresholdPercentage)
	int32v(KeyInitialScale, &c.InitialScale)
	int32v(KeyMinScale, &c.MinScale)
	int32v(KeyMaxScale, &c.MaxScale)
	int32v(KeyMaxScaleLimit, &c.MaxScaleLimit)
	duration(KeyStableWindow, &c.StableWindow)
	duration(KeyScaleDownDelay, &c.ScaleDownDelay)
	duration(KeyScaleToZeroGracePeriod, &c.ScaleToZeroGracePeriod)
	duration(KeyScaleToZeroPodRetentionPeriod, &c.ScaleToZeroPodRetentionPeriod)
	if err := e.asError(); err != nil {
		return Config{}, fmt.Errorf("config-autoscaler: %w", err)
	}
	// The key takes a percentage, but Knative still accepts legacy fractions in (0, 1]: only values above
	// 1 are divided by 100.
	if c.ContainerConcurrencyTargetFraction > 1 {
		c.ContainerConcurrencyTargetFraction /= 100
	}
	if err := c.Validate(); err != nil {
		return Config{}, err
	}
	return c, nil
}

// Validate checks every field against Knative's rules and reports all violations at once, each naming its
// config key. It wraps ErrInvalid.
func (c Config) Validate() error {
	var e errs
	if c.ScaleToZeroGracePeriod <= 0 {
		e.add(KeyScaleToZeroGracePeriod, c.ScaleToZeroGracePeriod.String(), "must be positive")
	}
	if c.ScaleDownDelay < 0 {
		e.add(KeyScaleDownDelay, c.ScaleDownDelay.String(), "cannot be negative")
	} else if c.ScaleDownDelay.Round(time.Second) != c.ScaleDownDelay {
		e.add(KeyScaleDownDelay, c.ScaleDownDelay.String(), "must be specified with at most second precision")
	}
	if c.ScaleToZeroPodRetentionPeriod < 0 {
		e.add(KeyScaleToZeroPodRetentionPeriod, c.ScaleToZeroPodRetentionPeriod.String(), "cannot be negative")
	}
	if c.TargetBurstCapacity < 0 && c.TargetBurstCapacity != -1 {
		e.add(KeyTargetBurstCapacity, ftoa(c.TargetBurstCapacity), "must be either non-negative or -1 (for unlimited)")
	}
	if c.ContainerConcurrencyTargetFraction <= 0 || c.ContainerConcurrencyTargetFraction > 1 {
		e.add(KeyTargetPercentage, ftoa(c.ContainerConcurrencyTargetFraction*100), "must be in (0, 100]")
	} else if x := c.ContainerConcurrencyTargetFraction * c.ContainerConcurrencyTargetDefault; x < TargetMin {
		e.addMulti([]string{KeyTargetPercentage, KeyTargetDefault},
			"yield a target concurrency of %v, which cannot be less than %v", x, TargetMin)
	}
	if c.TargetUtilization <= 0 || c.TargetUtilization > 1 {
		e.add("target-utilization", ftoa(c.TargetUtilization), "must be in (0, 1]")
	}
	if c.RPSTargetDefault < TargetMin {
		e.add(KeyRPSTargetDefault, ftoa(c.RPSTargetDefault), "must be at least %v", TargetMin)
	}
	if c.ActivatorCapacity < 1 {
		e.add(KeyActivatorCapacity, ftoa(c.ActivatorCapacity), "must be at least 1")
	}
	if c.MaxScaleUpRate <= 1 {
		e.add(KeyMaxScaleUpRate, ftoa(c.MaxScaleUpRate), "must be greater than 1.0")
	}
	if c.MaxScaleDownRate <= 1 {
		e.add(KeyMaxScaleDownRate, ftoa(c.MaxScaleDownRate), "must be greater than 1.0")
	}
	if c.StableWindow < WindowMin || c.StableWindow > WindowMax {
		e.add(KeyStableWindow, c.StableWindow.String(), "must be in [%v, %v]", WindowMin, WindowMax)
	} else if c.StableWindow.Round(time.Second) != c.StableWindow {
		e.add(KeyStableWindow, c.StableWindow.String(), "must be specified with at most second precision")
	}
	if c.PanicWindowPercentage < PanicWindowPercentageMin || c.PanicWindowPercentage > PanicWindowPercentageMax {
		e.add(KeyPanicWindowPercentage, ftoa(c.PanicWindowPercentage), "must be in [%v, %v]",
			PanicWindowPercentageMin, PanicWindowPercentageMax)
	}
	// Knative leaves the cluster-wide panic-threshold-percentage unchecked (only the annotation is bounded to
	// [110, 1000]); tide rejects only the nonsensical non-positive values.
	if !(c.PanicThresholdPercentage > 0) {
		e.add(KeyPanicThresholdPercentage, ftoa(c.PanicThresholdPercentage), "must be positive")
	}
	if c.InitialScale < 0 || (c.InitialScale == 0 && !c.AllowZeroInitialScale) {
		e.add(KeyInitialScale, strconv.Itoa(int(c.InitialScale)),
			"must be at least 1 (or 0 when allow-zero-initial-scale is true)")
	}
	if c.MinScale < 0 {
		e.add(KeyMinScale, strconv.Itoa(int(c.MinScale)), "must be at least 0")
	}
	if c.MaxScaleLimit < 0 {
		e.add(KeyMaxScaleLimit, strconv.Itoa(int(c.MaxScaleLimit)), "must be at least 0")
	}
	var minMax int32
	if c.MaxScaleLimit > 0 {
		minMax = 1 // with a limit, "unlimited" (0) is no longer a valid default
	}
	if c.MaxScale < minMax || (c.MaxScaleLimit > 0 && c.MaxScale > c.MaxScaleLimit) {
		e.add(KeyMaxScale, strconv.Itoa(int(c.MaxScale)), "must be in [%d, max-scale-limit (%d)]", minMax, c.MaxScaleLimit)
	}
	if c.MaxScale > 0 && c.MinScale > c.MaxScale {
		e.addMulti([]string{KeyMinScale, KeyMaxScale}, "min-scale (%d) must not exceed max-scale (%d)", c.MinScale, c.MaxScale)
	}
	if err := e.asError(); err != nil {
		return fmt.Errorf("config-autoscaler: %w", err)
	}
	return nil
}

// ToMap renders the Config as config-autoscaler data (FromMap(c.ToMap()) == c for a valid c), so tide can
// show the effective configuration.
func (c Config) ToMap() map[string]string {
	return map[string]string{
		KeyClass:                         c.Class,
		KeyEnableScaleToZero:             strconv.FormatBool(c.EnableScaleToZero),
		KeyAllowZeroInitialScale:         strconv.FormatBool(c.AllowZeroInitialScale),
		KeyMaxScaleUpRate:                ftoa(c.MaxScaleUpRate),
		KeyMaxScaleDownRate:              ftoa(c.MaxScaleDownRate),
		KeyTargetPercentage:              ftoa(c.ContainerConcurrencyTargetFraction * 100),
		KeyTargetDefault:                 ftoa(c.ContainerConcurrencyTargetDefault),
		KeyRPSTargetDefault:              ftoa(c.RPSTargetDefault),
		KeyTargetBurstCapacity:           ftoa(c.TargetBurstCapacity),
		KeyPanicWindowPercentage:         ftoa(c.PanicWindowPercentage),
		KeyActivatorCapacity:             ftoa(c.ActivatorCapacity),
		KeyPanicThresholdPercentage:      ftoa(c.PanicThresholdPercentage),
		KeyInitialScale:                  strconv.Itoa(int(c.InitialScale)),
		KeyMinScale:                      strconv.Itoa(int(c.MinScale)),
		KeyMaxScale:                      strconv.Itoa(int(c.MaxScale)),
		KeyMaxScaleLimit:                 strconv.Itoa(int(c.MaxScaleLimit)),
		KeyStableWindow:                  c.StableWindow.String(),
		KeyScaleDownDelay:                c.ScaleDownDelay.String(),
		KeyScaleToZeroGracePeriod:        c.ScaleToZeroGracePeriod.String(),
		KeyScaleToZeroPodRetentionPeriod: c.ScaleToZeroPodRetentionPeriod.String(),
	}
}

// Keys lists every key FromMap understands, sorted.
func Keys() []string {
	m := Defaults().ToMap()
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

func ftoa(f float64) string { return strconv.FormatFloat(f, 'g', -1, 64) }
