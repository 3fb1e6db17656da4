package config

import (
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"
)

const g = AnnotationGroup + "/"

func p(k string) string { return AnnotationsPath + "." + g + k }

func TestParseAnnotationsErrors(t *testing.T) {
	limited := Defaults()
	limited.MaxScale, limited.MaxScaleLimit = 10, 100
	tests := []struct {
		name  string
		cfg   *Config
		anns  map[string]string
		paths []string
		msg   string
	}{
		{name: "unknown knative class", anns: map[string]string{g + "class": "foo.knative.dev"}, paths: []string{p("class")}},
		{name: "kpa metric cpu", anns: map[string]string{g + "metric": "cpu"}, paths: []string{p("metric")}},
		{name: "kpa metric empty", anns: map[string]string{g + "class": ClassKPA, g + "metric": ""}, paths: []string{p("metric")}},
		{name: "hpa metric empty", anns: map[string]string{g + "class": ClassHPA, g + "metric": ""}, paths: []string{p("metric")}},
		{name: "bad algorithm", anns: map[string]string{g + "class": ClassKPA, g + "metric-aggregation-algorithm": "median"},
			paths: []string{p("metric-aggregation-algorithm")}},
		{name: "target not a number", anns: map[string]string{g + "target": "lots"}, paths: []string{p("target")}},
		{name: "target too small", anns: map[string]string{g + "target": "0.001"}, paths: []string{p("target")}, msg: "at least 0.01"},
		{name: "target NaN", anns: map[string]string{g + "target": "NaN"}, paths: []string{p("target")}},
		{name: "tu 0", anns: map[string]string{g + "target-utilization-percentage": "0"}, paths: []string{p("target-utilization-percentage")}},
		{name: "tu 101 old spelling", anns: map[string]string{g + "targetUtilizationPercentage": "101"}, paths: []string{p("targetUtilizationPercentage")}},
		{name: "tbc -2", anns: map[string]string{g + "target-burst-capacity": "-2"}, paths: []string{p("target-burst-capacity")}},
		{name: "tbc garbage", anns: map[string]string{g + "target-burst-capacity": "many"}, paths: []string{p("target-burst-capacity")}},
		{name: "window too small", anns: map[string]string{g + "window": "5s"}, paths: []string{p("window")}},
		{name: "window too large", anns: map[string]string{g + "window": "365h"}, paths: []string{p("window")}},
		{name: "window fraction", anns: map[string]string{g + "window": "7s500ms"}, paths: []string{p("window")}, msg: "second precision"},
		{name: "window garbage", anns: map[string]string{g + "window": "soon"}, paths: []string{p("window")}},
		{name: "panic window %", anns: map[string]string{g + "panic-window-percentage": "0.5"}, paths: []string{p("panic-window-percentage")}},
		{name: "panic window % big", anns: map[string]string{g + "panicWindowPercentage": "101"}, paths: []string{p("panicWindowPercentage")}},
		{name: "panic threshold small", anns: map[string]string{g + "panic-threshold-percentage": "109"}, paths: []string{p("panic-threshold-percentage")}},
		{name: "panic threshold big", anns: map[string]string{g + "panicThresholdPercentage": "1001"}, paths: []string{p("panicThresholdPercentage")}},
		{name: "min-scale negative", anns: map[string]string{g + "min-scale": "-1"}, paths: []string{p("min-scale")}},
		{name: "minScale garbage", anns: map[string]string{g + "minScale": "two"}, paths: []string{p("minScale")}},
		{name: "maxScale too big", anns: map[string]string{g + "maxScale": "4294967296"}, paths: []string{p("maxScale")}},
		{name: "max below min", anns: map[string]string{g + "minScale": "5", g + "maxScale": "2"},
			paths: []string{p("maxScale"), p("minScale")}, msg: "max-scale=2 is less than min-scale=5"},
		{name: "max below min new spelling", anns: map[string]string{g + "min-scale": "5", g + "max-scale": "2"},
			paths: []string{p("max-scale"), p("min-scale")}},
		{name: "max over limit", cfg: &limited, anns: map[string]string{g + "max-scale": "101"}, paths: []string{p("max-scale")}},
		{name: "max unlimited with limit", cfg: &limited, anns: map[string]string{g + "max-scale": "0"}, paths: []string{p("max-scale")}},
		{name: "initial garbage", anns: map[string]string{g + "initial-scale": "x"}, paths: []string{p("initial-scale")}},
		{name: "initial negative", anns: map[string]string{g + "initialScale": "-1"}, paths: []string{p("initialScale")}},
		{name: "initial zero not allowed", anns: map[string]string{g + "initial-scale": "0"}, paths: []string{p("initial-scale")}, msg: "allow-zero-initial-scale"},
		{name: "scale-down-delay negative", anns: map[string]string{g + "scale-down-delay": "-1s"}, paths: []string{p("scale-down-delay")}},
		{name: "scale-down-delay too long", anns: map[string]string{g + "scaleDownDelay": "1h1s"}, paths: []string{p("scaleDownDelay")}},
		{name: "scale-down-delay fraction", anns: map[string]string{g + "scale-down-delay": "1.5s"}, paths: []string{p("scale-down-delay")}},
		{name: "retention negative", anns: map[string]string{g + "scale-to-zero-pod-retention-period": "-1s"}, paths: []string{p("scale-to-zero-pod-retention-period")}},
		{name: "retention garbage", anns: map[string]string{g + "scaleToZeroPodRetentionPeriod": "later"}, paths: []string{p("scaleToZeroPodRetentionPeriod")}},
		{name: "activation 1", anns: map[string]string{g + "activation-scale": "1"}, paths: []string{p("activation-scale")}, msg: "greater than 1"},
		{name: "activation below min", anns: map[string]string{g + "min-scale": "3", g + "activation-scale": "2"}, paths: []string{p("activation-scale")}},
		{name: "activation above max", anns: map[string]string{g + "max-scale": "3", g + "activation-scale": "4"}, paths: []string{p("activation-scale")}},
		{name: "activation garbage", anns: map[string]string{g + "activation-scale": "lots"}, paths: []string{p("activation-scale")}},
		{name: "several at once", anns: map[string]string{g + "window": "1s", g + "target": "0", g + "minScale": "-3"},
			paths: []string{p("target"), p("window"), p("minScale")}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := configOrDefaults(tt.cfg)
			_, err := ParseAnnotations(cfg, tt.anns)
			if err == nil {
				t.Fatalf("ParseAnnotations(%v) succeeded, want error at %v", tt.anns, tt.paths)
			}
			if !errors.Is(err, ErrInvalid) {
				t.Errorf("error does not wrap ErrInvalid: %v", err)
			}
			var fe Errors
			if !errors.As(err, &fe) {
				t.Fatalf("error %T is not Errors", err)
			}
			if !reflect.DeepEqual(fe.Paths(), tt.paths) {
				t.Errorf("paths = %v, want %v (%v)", fe.Paths(), tt.paths, err)
			}
			if tt.msg != "" && !strings.Contains(err.Error(), tt.msg) {
				t.Errorf("error %q does not contain %q", err, tt.msg)
			}
		})
	}
}

func TestParseAnnotationsAtBase(t *testing.T) {
	_, err := ParseAnnotationsAt(Defaults(), map[string]string{g + "min-scale": "x"}, "spec.template.metadata.annotations")
	var fe Errors
	if !errors.As(err, &fe) || fe.Paths()[0] != "spec.template.metadata.annotations."+g+"min-scale" {
		t.Fatalf("err = %v", err)
	}
}

func ptr[T any](v T) *T { return &v }

func TestParseAnnotationsValues(t *testing.T) {
	zeroOK := Defaults()
	zeroOK.AllowZeroInitialScale = true
	tests := []struct {
		name string
		cfg  *Config
		anns map[string]string
		want Annotations
	}{
		{name: "none", anns: nil, want: Annotations{}},
		{name: "other groups ignored", anns: map[string]string{"serving.knative.dev/creator": "me", "x": "y"}, want: Annotations{}},
		{name: "seed spelling", anns: map[string]string{g + "minScale": "0", g + "maxScale": "100"},
			want: Annotations{MinScale: ptr[int32](0), MaxScale: ptr[int32](100)}},
		{name: "new spelling wins", anns: map[string]string{g + "minScale": "1", g + "min-scale": "2", g + "max-scale": "0"},
			want: Annotations{MinScale: ptr[int32](2), MaxScale: ptr[int32](0)}},
		{name: "custom class untouched", anns: map[string]string{g + "class": "example.com/custom", g + "metric": "queue-depth"},
			want: Annotations{Class: "example.com/custom", Metric: "queue-depth"}},
		{name: "hpa cpu", anns: map[string]string{g + "class": ClassHPA, g + "metric": "cpu"},
			want: Annotations{Class: ClassHPA, Metric: CPU}},
		{name: "everything", cfg: &zeroOK, anns: map[string]string{
			g + "class": ClassKPA, g + "metric": "rps", g + "target": "150", g + "target-utilization-percentage": "80",
			g + "target-burst-capacity": "-1", g + "window": "2m", g + "panic-window-percentage": "20",
			g + "panic-threshold-percentage": "300", g + "min-scale": "1", g + "max-scale": "9",
			g + "initial-scale": "0", g + "scale-down-delay": "30s", g + "scale-to-zero-pod-retention-period": "1m",
			g + "activation-scale": "3", g + "metric-aggregation-algorithm": "linear",
		}, want: Annotations{
			Class: ClassKPA, Metric: RPS, Target: ptr(150.0), TargetUtilization: ptr(0.8),
			TargetBurstCapacity: ptr(-1.0), Window: ptr(2 * time.Minute), PanicWindowPercentage: ptr(20.0),
			PanicThresholdPercentage: ptr(300.0), MinScale: ptr[int32](1), MaxScale: ptr[int32](9),
			InitialScale: ptr[int32](0), ScaleDownDelay: ptr(30 * time.Second),
			ScaleToZeroPodRetention: ptr(time.Minute), ActivationScale: ptr[int32](3), AggregationAlgorithm: "linear",
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := configOrDefaults(tt.cfg)
			got, err := ParseAnnotations(cfg, tt.anns)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("got %+v\nwant %+v", got, tt.want)
			}
		})
	}
}
