package config

import (
	"errors"
	"testing"
	"time"
)

// FuzzParseAnnotations: any annotation either is rejected with ErrInvalid or resolves to settings the
// decider can use safely. Run: go test ./serving/autoscaler/config -fuzz FuzzParseAnnotations
func FuzzParseAnnotations(f *testing.F) {
	for _, s := range []struct {
		k, v string
		cc   int64
	}{
		{"minScale", "0", 2}, {"maxScale", "100", 2}, {"target", "0.01", 0}, {"window", "6s", 0},
		{"panic-window-percentage", "1", 0}, {"target-burst-capacity", "-1", 0}, {"initial-scale", "0", 0},
		{"activation-scale", "2", 0}, {"metric", "rps", 1000}, {"scale-down-delay", "1h", 0},
	} {
		f.Add(s.k, s.v, s.cc)
	}
	f.Fuzz(func(t *testing.T, key, value string, cc int64) {
		anns := map[string]string{AnnotationGroup + "/" + key: value, AnnotationGroup + "/window": "7s"}
		s, err := ForRevision(Defaults(), anns, cc)
		if err != nil {
			if !errors.Is(err, ErrInvalid) {
				t.Fatalf("error %v does not wrap ErrInvalid", err)
			}
			return
		}
		checkSettings(t, s)
	})
}

// FuzzFromMap: any config-autoscaler entry is rejected with ErrInvalid or gives a valid Config.
func FuzzFromMap(f *testing.F) {
	for _, k := range Keys() {
		f.Add(k, Defaults().ToMap()[k])
	}
	f.Add("stable-window", "6s")
	f.Add("container-concurrency-target-percentage", "0.5")
	f.Fuzz(func(t *testing.T, key, value string) {
		c, err := FromMap(map[string]string{key: value})
		if err != nil {
			if !errors.Is(err, ErrInvalid) {
				t.Fatalf("error %v does not wrap ErrInvalid", err)
			}
			return
		}
		if err := c.Validate(); err != nil {
			t.Fatalf("FromMap returned an invalid config: %v", err)
		}
		s, err := ForRevision(c, nil, 0)
		if err != nil {
			t.Fatal(err)
		}
		checkSettings(t, s)
	})
}

func checkSettings(t *testing.T, s Settings) {
	t.Helper()
	if err := s.Validate(); err != nil {
		t.Fatalf("resolved settings do not validate: %v", err)
	}
	switch {
	case !(s.TargetValue >= TargetMin):
		t.Fatalf("target %v below %v", s.TargetValue, TargetMin)
	case s.StableWindow < WindowMin || s.StableWindow > WindowMax:
		t.Fatalf("stable window %v", s.StableWindow)
	case s.PanicWindow < time.Second || s.PanicWindow > s.StableWindow:
		t.Fatalf("panic window %v with stable %v", s.PanicWindow, s.StableWindow)
	case s.MinScale < 0 || s.MaxScale < 0 || (s.MaxScale != 0 && s.MaxScale < s.MinScale):
		t.Fatalf("scale bounds [%d, %d]", s.MinScale, s.MaxScale)
	case s.InitialScale < 0:
		t.Fatalf("initial scale %d", s.InitialScale)
	case s.TargetBurstCapacity < 0 && s.TargetBurstCapacity != -1:
		t.Fatalf("tbc %v", s.TargetBurstCapacity)
	case !(s.MaxScaleUpRate > 1) || !(s.MaxScaleDownRate > 1):
		t.Fatalf("rates %v %v", s.MaxScaleUpRate, s.MaxScaleDownRate)
	case s.ScaleDownDelay < 0 || s.ScaleToZeroPodRetention < 0:
		t.Fatalf("durations %v %v", s.ScaleDownDelay, s.ScaleToZeroPodRetention)
	}
}
