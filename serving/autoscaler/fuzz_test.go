package autoscaler

import (
	"testing"
	"time"

	"github.com/tide-run/tide/serving/autoscaler/config"
)

// FuzzAutoscaler drives one revision's Autoscaler with arbitrary load, ready counts and time steps and checks
// the invariants the data plane relies on. Run: go test ./serving/autoscaler -fuzz FuzzAutoscaler
func FuzzAutoscaler(f *testing.F) {
	f.Add(uint8(0), uint8(3), int8(-1), false, []byte{0, 10, 200, 3, 7, 0, 0, 0, 255, 1})
	f.Add(uint8(2), uint8(0), int8(0), true, []byte{50, 50, 50, 0, 0, 0, 0, 0, 0, 0, 0, 0})
	f.Add(uint8(1), uint8(10), int8(100), false, []byte{255, 255, 255, 1, 1, 1, 1})
	f.Fuzz(func(t *testing.T, minScale, maxScale uint8, tbc int8, noZero bool, script []byte) {
		cfg := config.Defaults()
		cfg.StableWindow, cfg.ScaleToZeroGracePeriod = 6*time.Second, time.Second
		cfg.EnableScaleToZero = !noZero
		cfg.AllowZeroInitialScale = true
		mn, mx := int32(minScale%5), int32(maxScale%20)
		if mx != 0 && mx < mn {
			mx = mn
		}
		anns := map[string]string{
			config.AnnotationMinScale:            itoa(mn),
			config.AnnotationMaxScale:            itoa(mx),
			config.AnnotationTargetBurstCapacity: itoa(max(int32(tbc), -1)),
			config.AnnotationInitialScale:        itoa(int32(len(script) % 3)),
			config.AnnotationScaleDownDelay:      itoa(int32(len(script)%4)) + "s",
		}
		s, err := config.ForRevision(cfg, anns, int64(len(script)%4))
		if err != nil {
			t.Skip(err) // an invalid combination is rejected up front; nothing to run
		}
		a := NewAutoscaler(s, t0, 0)
		now := t0
		ready := 0
		for i, b := range script {
			now = now.Add(time.Duration(b%7) * 500 * time.Millisecond)
			load := float64(b) * 3
			obs := Observation{Stable: load, Panic: load * float64(i%3), Valid: b%5 != 0}
			d := a.Decide(now, ready, obs)
			switch {
			case d.DesiredScale < 0:
				t.Fatalf("step %d: negative scale %+v", i, d)
			case s.MaxScale > 0 && d.DesiredScale > s.MaxScale:
				t.Fatalf("step %d: %d above max-scale %d", i, d.DesiredScale, s.MaxScale)
			case d.DesiredScale < s.MinScale:
				t.Fatalf("step %d: %d below min-scale %d", i, d.DesiredScale, s.MinScale)
			case d.DesiredScale == 0 && !d.ActivatorInPath:
				t.Fatalf("step %d: at zero without the activator", i)
			case s.TargetBurstCapacity == -1 && !d.ActivatorInPath:
				t.Fatalf("step %d: TBC -1 without the activator", i)
			case !s.EnableScaleToZero && d.DesiredScale == 0 && s.InitialScale > 0:
				t.Fatalf("step %d: scaled to zero with scale to zero disabled", i)
			}
			ready = int(d.DesiredScale) // instances come up by the next decision
		}
	})
}

func itoa(i int32) string {
	if i < 0 {
		return "-" + itoa(-i)
	}
	if i < 10 {
		return string(rune('0' + i))
	}
	return itoa(i/10) + string(rune('0'+i%10))
}
