package config

import (
	"errors"
	"math"
	"testing"
	"time"
)

// TestResolveTarget ports Knative's ResolveMetricTarget / MakeDecider cases (knative uses a test config
// with 100% utilization; the cfg funcs set the same).
func TestResolveTarget(t *testing.T) {
	tu := func(f float64) func(*Config) {
		return func(c *Config) { c.ContainerConcurrencyTargetFraction = f; c.TargetUtilization = f }
	}
	tests := []struct {
		name                  string
		cfg                   func(*Config)
		anns                  map[string]string
		cc                    int64
		wantTarget, wantTotal float64
		wantMetric            string
	}{
		{name: "defaults", wantTarget: 70, wantTotal: 100},
		{name: "default CC, TU 100%", cfg: tu(1), wantTarget: 100, wantTotal: 100},
		{name: "default CC + 80% TU", cfg: tu(0.8), wantTarget: 80, wantTotal: 100},
		{name: "non-default CC default and TU", cfg: func(c *Config) { c.ContainerConcurrencyTargetDefault = 2; c.ContainerConcurrencyTargetFraction = 0.3 },
			wantTarget: 0.6, wantTotal: 2},
		{name: "CC 12, TU 80%, annotation 75%", cfg: tu(0.8), cc: 12, anns: map[string]string{g + "target-utilization-percentage": "75"},
			wantTarget: 9, wantTotal: 12},
		{name: "CC 10, TU 80%", cfg: tu(0.8), cc: 10, wantTarget: 8, wantTotal: 10},
		{name: "CC 1, TU 80%", cfg: tu(0.8), cc: 1, wantTarget: 0.8, wantTotal: 1},
		{name: "CC 1", cfg: tu(1), cc: 1, wantTarget: 1, wantTotal: 1},
		{name: "CC 2 seed barrage", cc: 2, wantTarget: 1.4, wantTotal: 2},
		{name: "target 1", cfg: tu(1), anns: map[string]string{g + "target": "1"}, wantTarget: 1, wantTotal: 1},
		{name: "target 1, TU 0.1%", cfg: tu(0.001), anns: map[string]string{g + "target": "1"}, wantTarget: TargetMin, wantTotal: 1},
		{name: "target 1, TU 75%", cfg: tu(0.75), anns: map[string]string{g + "target": "1"}, wantTarget: 0.75, wantTotal: 1},
		{name: "target 10, TU 75%", cfg: tu(0.75), anns: map[string]string{g + "target": "10"}, wantTarget: 7.5, wantTotal: 10},
		{name: "CC 10 > target 1", cfg: tu(1), cc: 10, anns: map[string]string{g + "target": "1"}, wantTarget: 1, wantTotal: 1},
		{name: "target 500 > default", cfg: tu(1), anns: map[string]string{g + "target": "500"}, wantTarget: 500, wantTotal: 500},
		{name: "target 10 > CC 1 capped", cfg: tu(1), cc: 1, anns: map[string]string{g + "target": "10"}, wantTarget: 1, wantTotal: 1},
		{name: "rps defaults", cc: 1, anns: map[string]string{g + "metric": "rps"}, wantTarget: 140, wantTotal: 200, wantMetric: RPS},
		{name: "rps target 1", anns: map[string]string{g + "metric": "rps", g + "target": "1"}, wantTarget: 0.7, wantTotal: 1, wantMetric: RPS},
		{name: "rps TU 75%", anns: map[string]string{g + "metric": "rps", g + "target-utilization-percentage": "75"},
			wantTarget: 150, wantTotal: 200, wantMetric: RPS},
		{name: "rps target 300 > CC 1 not capped", cc: 1, anns: map[string]string{g + "metric": "rps", g + "target": "300"},
			wantTarget: 210, wantTotal: 300, wantMetric: RPS},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := Defaults()
			if tt.cfg != nil {
				tt.cfg(&cfg)
			}
			s, err := ForRevision(cfg, tt.anns, tt.cc)
			if err != nil {
				t.Fatal(err)
			}
			if math.Abs(s.TargetValue-tt.wantTarget) > 1e-9 || s.TotalValue != tt.wantTotal {
				t.Errorf("target, total = %v, %v; want %v, %v", s.TargetValue, s.TotalValue, tt.wantTarget, tt.wantTotal)
			}
			want := tt.wantMetric
			if want == "" {
				want = Concurrency
			}
			if s.Metric != want {
				t.Errorf("metric = %q, want %q", s.Metric, want)
			}
		})
	}
}

func TestResolveOther(t *testing.T) {
	zeroOK := Defaults()
	zeroOK.AllowZeroInitialScale = true
	tests := []struct {
		name      string
		cfg       *Config
		anns      map[string]string
		reachable bool
		check     func(t *testing.T, s Settings)
	}{
		{name: "defaults", reachable: true, check: func(t *testing.T, s Settings) {
			want := Settings{Class: ClassKPA, Metric: Concurrency, TargetValue: 70, TotalValue: 100,
				TargetBurstCapacity: 211, PanicThreshold: 2, StableWindow: time.Minute, PanicWindow: 6 * time.Second,
				MaxScaleUpRate: 1000, MaxScaleDownRate: 2, InitialScale: 1, EnableScaleToZero: true,
				ScaleToZeroGracePeriod: 30 * time.Second, Reachable: true}
			if s != want {
				t.Errorf("got %+v\nwant %+v", s, want)
			}
		}},
		{name: "panic window rounds to seconds", reachable: true,
			anns: map[string]string{g + "window": "7s", g + "panic-window-percentage": "50"},
			check: func(t *testing.T, s Settings) {
				if s.StableWindow != 7*time.Second || s.PanicWindow != 4*time.Second {
					t.Errorf("windows = %v/%v, want 7s/4s", s.StableWindow, s.PanicWindow)
				}
			}},
		{name: "panic window at least a bucket", reachable: true,
			anns: map[string]string{g + "window": "6s", g + "panic-window-percentage": "1"},
			check: func(t *testing.T, s Settings) {
				if s.PanicWindow != time.Second {
					t.Errorf("panic window = %v, want 1s", s.PanicWindow)
				}
			}},
		{name: "seed barrage", reachable: true,
			anns: map[string]string{g + "minScale": "0", g + "maxScale": "100", g + "panic-threshold-percentage": "400",
				g + "scale-down-delay": "10m", g + "activation-scale": "3", g + "target-burst-capacity": "0"},
			check: func(t *testing.T, s Settings) {
				if s.MinScale != 0 || s.MaxScale != 100 || s.PanicThreshold != 4 || s.ScaleDownDelay != 10*time.Minute ||
					s.ActivationScale != 3 || s.TargetBurstCapacity != 0 {
					t.Errorf("got %+v", s)
				}
			}},
		{name: "initial scale 0 allowed", cfg: &zeroOK, reachable: true, anns: map[string]string{g + "initial-scale": "0"},
			check: func(t *testing.T, s Settings) {
				if s.InitialScale != 0 {
					t.Errorf("initial = %d, want 0", s.InitialScale)
				}
			}},
		{name: "unreachable drops min and retention", reachable: false,
			anns: map[string]string{g + "min-scale": "3", g + "scale-to-zero-pod-retention-period": "5m"},
			check: func(t *testing.T, s Settings) {
				if s.MinScale != 0 || s.ScaleToZeroPodRetention != 0 || s.Reachable {
					t.Errorf("got %+v", s)
				}
			}},
		{name: "hpa defaults to cpu", reachable: true, anns: map[string]string{g + "class": ClassHPA},
			check: func(t *testing.T, s Settings) {
				if s.Metric != CPU || s.TotalValue != 100 {
					t.Errorf("got %+v", s)
				}
			}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := configOrDefaults(tt.cfg)
			a, err := ParseAnnotations(cfg, tt.anns)
			if err != nil {
				t.Fatal(err)
			}
			tt.check(t, Resolve(cfg, a, 0, tt.reachable))
		})
	}
}

func TestForRevisionErrors(t *testing.T) {
	if _, err := ForRevision(Defaults(), nil, -1); !errors.Is(err, ErrInvalid) {
		t.Errorf("negative containerConcurrency: err = %v", err)
	}
	_, err := ForRevision(Defaults(), map[string]string{g + "maxScale": "-5"}, 2)
	var fe Errors
	if !errors.As(err, &fe) || fe.Paths()[0] != "metadata.annotations.autoscaling.knative.dev/maxScale" {
		t.Errorf("err = %v", err)
	}
}

func TestSettingsValidate(t *testing.T) {
	var fe Errors
	err := Settings{}.Validate()
	if !errors.As(err, &fe) || !errors.Is(err, ErrInvalid) {
		t.Fatalf("zero Settings: err = %v", err)
	}
	want := []string{"TargetValue", "TotalValue", "MaxScaleUpRate", "MaxScaleDownRate", "PanicThreshold", "StableWindow", "PanicWindow"}
	if got := fe.Paths(); len(got) != len(want) {
		t.Errorf("paths = %v, want %v", got, want)
	}
	s, err := ForRevision(Defaults(), nil, 0)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Validate(); err != nil {
		t.Errorf("defaults: %v", err)
	}
	s.MinScale, s.MaxScale = 3, 2
	if err := s.Validate(); err == nil {
		t.Error("min above max accepted")
	}
}
