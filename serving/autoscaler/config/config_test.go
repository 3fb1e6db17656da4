package config

import (
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"

	kas "knative.dev/serving/pkg/apis/autoscaling"
)

func TestDefaultsMatchTheNotes(t *testing.T) {
	c := Defaults()
	if err := c.Validate(); err != nil {
		t.Fatalf("defaults do not validate: %v", err)
	}
	want := map[string]string{
		"stable-window":                           "1m0s",
		"panic-window-percentage":                 "10",
		"panic-threshold-percentage":              "200",
		"container-concurrency-target-percentage": "70",
		"container-concurrency-target-default":    "100",
		"requests-per-second-target-default":      "200",
		"target-burst-capacity":                   "211",
		"max-scale-up-rate":                       "1000",
		"max-scale-down-rate":                     "2",
		"scale-to-zero-grace-period":              "30s",
		"scale-to-zero-pod-retention-period":      "0s",
		"initial-scale":                           "1",
		"allow-zero-initial-scale":                "false",
		"enable-scale-to-zero":                    "true",
		"scale-down-delay":                        "0s",
		"max-scale":                               "0",
		"min-scale":                               "0",
		"pod-autoscaler-class":                    ClassKPA,
	}
	got := c.ToMap()
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%s = %q, want %q", k, got[k], v)
		}
	}
}

func TestFromMap(t *testing.T) {
	def := Defaults()
	with := func(f func(*Config)) Config { c := Defaults(); f(&c); return c }
	tests := []struct {
		name    string
		in      map[string]string
		want    Config
		errKeys []string // keys the error must name; nil means success
	}{
		{name: "empty", in: nil, want: def},
		{name: "unknown keys ignored", in: map[string]string{"_example": "x", "tick-interval": "2s"}, want: def},
		{name: "minimum", in: map[string]string{
			"max-scale-up-rate": "1.001", "container-concurrency-target-percentage": "0.5",
			"container-concurrency-target-default": "10.0", "target-burst-capacity": "0", "stable-window": "5m",
			"panic-window-percentage": "10", "panic-threshold-percentage": "200", "activator-capacity": "1",
		}, want: with(func(c *Config) {
			c.ContainerConcurrencyTargetFraction = 0.5
			c.ContainerConcurrencyTargetDefault = 10
			c.MaxScaleUpRate = 1.001
			c.TargetBurstCapacity = 0
			c.StableWindow = 5 * time.Minute
			c.ActivatorCapacity = 1
		})},
		{name: "percentage as percent", in: map[string]string{"container-concurrency-target-percentage": "55"},
			want: with(func(c *Config) { c.ContainerConcurrencyTargetFraction = 0.55 })},
		{name: "tbc -1", in: map[string]string{"target-burst-capacity": "-1"},
			want: with(func(c *Config) { c.TargetBurstCapacity = -1 })},
		{name: "strange casing", in: map[string]string{"enable-scale-to-zero": "TRUE"}, want: def},
		{name: "flipped", in: map[string]string{"enable-scale-to-zero": "false", "min-scale": "1", "max-scale": "2",
			"scale-to-zero-grace-period": "33s", "scale-down-delay": "5m", "scale-to-zero-pod-retention-period": "2m3s"},
			want: with(func(c *Config) {
				c.EnableScaleToZero = false
				c.MinScale, c.MaxScale = 1, 2
				c.ScaleToZeroGracePeriod = 33 * time.Second
				c.ScaleDownDelay = 5 * time.Minute
				c.ScaleToZeroPodRetentionPeriod = 2*time.Minute + 3*time.Second
			})},
		{name: "zero initial scale allowed", in: map[string]string{"allow-zero-initial-scale": "true", "initial-scale": "0"},
			want: with(func(c *Config) { c.AllowZeroInitialScale = true; c.InitialScale = 0 })},
		{name: "max scale with limit", in: map[string]string{"max-scale": "10", "max-scale-limit": "100"},
			want: with(func(c *Config) { c.MaxScale = 10; c.MaxScaleLimit = 100 })},

		{name: "malformed float", in: map[string]string{"max-scale-up-rate": "not a float"}, errKeys: []string{"max-scale-up-rate"}},
		{name: "malformed duration", in: map[string]string{"stable-window": "not a duration"}, errKeys: []string{"stable-window"}},
		{name: "malformed bool", in: map[string]string{"allow-zero-initial-scale": "nope"}, errKeys: []string{"allow-zero-initial-scale"}},
		{name: "malformed int", in: map[string]string{"initial-scale": "1.5"}, errKeys: []string{"initial-scale"}},
		{name: "negative scale-down-delay", in: map[string]string{"scale-down-delay": "-1s"}, errKeys: []string{"scale-down-delay"}},
		{name: "scale-down-delay not seconds", in: map[string]string{"scale-down-delay": "1500ms"}, errKeys: []string{"scale-down-delay"}},
		{name: "negative retention", in: map[string]string{"scale-to-zero-pod-retention-period": "-1s"}, errKeys: []string{"scale-to-zero-pod-retention-period"}},
		{name: "tbc -2", in: map[string]string{"target-burst-capacity": "-2"}, errKeys: []string{"target-burst-capacity"}},
		{name: "target % zero", in: map[string]string{"container-concurrency-target-percentage": "0"}, errKeys: []string{"container-concurrency-target-percentage"}},
		{name: "target % too big", in: map[string]string{"container-concurrency-target-percentage": "101"}, errKeys: []string{"container-concurrency-target-percentage"}},
		{name: "rps target too small", in: map[string]string{"requests-per-second-target-default": "0.001"}, errKeys: []string{"requests-per-second-target-default"}},
		{name: "up rate 1", in: map[string]string{"max-scale-up-rate": "1"}, errKeys: []string{"max-scale-up-rate"}},
		{name: "down rate negative", in: map[string]string{"max-scale-down-rate": "-1"}, errKeys: []string{"max-scale-down-rate"}},
		{name: "stable window too big", in: map[string]string{"stable-window": "1h1s"}, errKeys: []string{"stable-window"}},
		{name: "stable window too small", in: map[string]string{"stable-window": "5s"}, errKeys: []string{"stable-window"}},
		{name: "stable window not seconds", in: map[string]string{"stable-window": "61500ms"}, errKeys: []string{"stable-window"}},
		{name: "activator capacity", in: map[string]string{"activator-capacity": "0.9"}, errKeys: []string{"activator-capacity"}},
		{name: "panic window % small", in: map[string]string{"panic-window-percentage": "0.5"}, errKeys: []string{"panic-window-percentage"}},
		{name: "panic window % big", in: map[string]string{"panic-window-percentage": "110"}, errKeys: []string{"panic-window-percentage"}},
		{name: "TU*CC < 0.01", in: map[string]string{"container-concurrency-target-percentage": "1", "container-concurrency-target-default": "0.001"},
			errKeys: []string{"container-concurrency-target-percentage", "container-concurrency-target-default"}},
		{name: "panic threshold zero", in: map[string]string{"panic-threshold-percentage": "0"}, errKeys: []string{"panic-threshold-percentage"}},
		{name: "grace zero", in: map[string]string{"scale-to-zero-grace-period": "0s"}, errKeys: []string{"scale-to-zero-grace-period"}},
		{name: "initial 0 prohibited", in: map[string]string{"initial-scale": "0"}, errKeys: []string{"initial-scale"}},
		{name: "initial negative", in: map[string]string{"initial-scale": "-1", "allow-zero-initial-scale": "true"}, errKeys: []string{"initial-scale"}},
		{name: "negative max scale", in: map[string]string{"max-scale": "-1"}, errKeys: []string{"max-scale"}},
		{name: "max over limit", in: map[string]string{"max-scale": "101", "max-scale-limit": "100"}, errKeys: []string{"max-scale"}},
		{name: "negative limit", in: map[string]string{"max-scale-limit": "-1"}, errKeys: []string{"max-scale-limit"}},
		{name: "limit with unlimited max", in: map[string]string{"max-scale-limit": "10"}, errKeys: []string{"max-scale"}},
		{name: "max below min", in: map[string]string{"min-scale": "3", "max-scale": "2"}, errKeys: []string{"min-scale", "max-scale"}},
		{name: "all errors at once", in: map[string]string{"stable-window": "1s", "max-scale-down-rate": "1"},
			errKeys: []string{"max-scale-down-rate", "stable-window"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := FromMap(tt.in)
			if tt.errKeys == nil {
				if err != nil {
					t.Fatalf("FromMap: %v", err)
				}
				if !reflect.DeepEqual(got, tt.want) {
					t.Errorf("FromMap =\n%+v\nwant\n%+v", got, tt.want)
				}
				return
			}
			if err == nil {
				t.Fatalf("FromMap succeeded with %+v, want an error naming %v", got, tt.errKeys)
			}
			if !errors.Is(err, ErrInvalid) {
				t.Errorf("error %v does not wrap ErrInvalid", err)
			}
			var fe Errors
			if !errors.As(err, &fe) {
				t.Fatalf("error %T is not Errors", err)
			}
			if !reflect.DeepEqual(fe.Paths(), tt.errKeys) {
				t.Errorf("error paths = %v, want %v (%v)", fe.Paths(), tt.errKeys, err)
			}
			if !strings.HasPrefix(err.Error(), "config-autoscaler: ") {
				t.Errorf("error %q does not say where it came from", err)
			}
		})
	}
}

func TestToMapRoundTrip(t *testing.T) {
	c := Defaults()
	c.TargetBurstCapacity = -1
	c.ContainerConcurrencyTargetFraction = 0.55
	c.StableWindow = 90 * time.Second
	got, err := FromMap(c.ToMap())
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, c) {
		t.Errorf("round trip = %+v, want %+v", got, c)
	}
	if len(Keys()) != 20 {
		t.Errorf("Keys() = %d keys, want 20", len(Keys()))
	}
}

// TestKeysMatchKnative guards against spelling drift from Knative's own constants.
func TestKeysMatchKnative(t *testing.T) {
	pairs := map[string]string{
		AnnotationClass:                    kas.ClassAnnotationKey,
		AnnotationMetric:                   kas.MetricAnnotationKey,
		AnnotationTarget:                   kas.TargetAnnotationKey,
		AnnotationTargetUtilization:        kas.TargetUtilizationPercentageKey,
		AnnotationTargetBurstCapacity:      kas.TargetBurstCapacityKey,
		AnnotationWindow:                   kas.WindowAnnotationKey,
		AnnotationPanicWindowPercentage:    kas.PanicWindowPercentageAnnotationKey,
		AnnotationPanicThresholdPercentage: kas.PanicThresholdPercentageAnnotationKey,
		AnnotationMinScale:                 kas.MinScaleAnnotationKey,
		AnnotationMaxScale:                 kas.MaxScaleAnnotationKey,
		AnnotationInitialScale:             kas.InitialScaleAnnotationKey,
		AnnotationScaleDownDelay:           kas.ScaleDownDelayAnnotationKey,
		AnnotationScaleToZeroPodRetention:  kas.ScaleToZeroPodRetentionPeriodKey,
		AnnotationActivationScale:          kas.ActivationScaleKey,
		AnnotationAggregationAlgorithm:     kas.MetricAggregationAlgorithmKey,
		ClassKPA:                           kas.KPA,
		ClassHPA:                           kas.HPA,
	}
	for ours, theirs := range pairs {
		if ours != theirs {
			t.Errorf("%q != knative's %q", ours, theirs)
		}
	}
	// Every legacy spelling Knative accepts must be accepted here too.
	for _, kp := range [][]string{kas.MinScaleAnnotation, kas.MaxScaleAnnotation, kas.InitialScaleAnnotation,
		kas.TargetUtilizationPercentageAnnotation, kas.TargetBurstCapacityAnnotation,
		kas.PanicWindowPercentageAnnotation, kas.PanicThresholdPercentageAnnotation, kas.ScaleDownDelayAnnotation,
		kas.ScaleToZeroPodRetentionPeriodAnnotation, kas.MetricAggregationAlgorithmAnnotation} {
		if !reflect.DeepEqual(append([]string{kp[0]}, aliases[kp[0]]...), kp) {
			t.Errorf("spellings of %s = %v, knative has %v", kp[0], aliases[kp[0]], kp)
		}
	}
}
