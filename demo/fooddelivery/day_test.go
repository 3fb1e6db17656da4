package fooddelivery

import (
	"math"
	"testing"
	"time"
)

func atHour(d Day, h float64) float64 { return (h - d.StartHour) / (d.EndHour - d.StartHour) }

func TestDefaultDayPeaksAndValleys(t *testing.T) {
	d := DefaultDay()
	if err := d.Validate(); err != nil {
		t.Fatal(err)
	}
	peaks := map[float64]float64{8: 0.55, 12: 1, 18.5: 0.85}
	for h, want := range peaks {
		if got := d.Shape(atHour(d, h)); math.Abs(got-want) > 1e-12 {
			t.Errorf("shape at %v:00 = %v, want %v", h, got, want)
		}
	}
	// Valleys are exactly zero: night, mid-morning, afternoon, evening.
	for _, h := range []float64{5, 6, 6.7, 9.3, 10, 10.7, 13.3, 15, 17.2, 19.8, 21, 22.9} {
		if got := d.Shape(atHour(d, h)); got != 0 {
			t.Errorf("shape at %.1fh = %v, want 0 (valley)", h, got)
		}
		if m := d.MealAt(atHour(d, h)); m != "" {
			t.Errorf("meal at %.1fh = %q, want none", h, m)
		}
	}
	for h, want := range map[float64]string{7.5: "breakfast", 11.5: "lunch", 19: "dinner"} {
		if got := d.MealAt(atHour(d, h)); got != want {
			t.Errorf("meal at %vh = %q, want %q", h, got, want)
		}
	}
	// Lunch is the busiest moment of the day; every rate is within [0,1]; rises before each peak, falls after.
	maxF, maxV := 0.0, -1.0
	for i := 0; i <= 10000; i++ {
		f := float64(i) / 10000
		v := d.Shape(f)
		if v < 0 || v > 1 {
			t.Fatalf("shape(%v) = %v outside [0,1]", f, v)
		}
		if v > maxV {
			maxF, maxV = f, v
		}
	}
	if d.MealAt(maxF) != "lunch" {
		t.Errorf("busiest at %s (%s), want lunch", d.Clock(maxF), d.MealAt(maxF))
	}
	for _, m := range d.Meals {
		before, peak, after := d.Shape(atHour(d, m.Center-0.5)), d.Shape(atHour(d, m.Center)), d.Shape(atHour(d, m.Center+0.5))
		if !(before < peak && after < peak && before > 0 && after > 0) {
			t.Errorf("%s: %v, %v, %v is not a peak", m.Name, before, peak, after)
		}
	}
}

func TestCumulativeIsTheIntegralOfShape(t *testing.T) {
	d := DefaultDay()
	const n = 200000
	var sum float64
	for i := 0; i < n; i++ {
		f := (float64(i) + 0.5) / n
		sum += d.Shape(f) / n
		if i%20000 == 0 || i == n-1 {
			if got := d.Cumulative(float64(i+1) / n); math.Abs(got-sum) > 1e-6 {
				t.Fatalf("Cumulative(%v) = %v, numeric integral %v", float64(i+1)/n, got, sum)
			}
		}
	}
	// Closed form for a whole day: sum of height × halfWidth over the span.
	want := (0.55 + 1 + 0.85) * 1.25 / 18
	if got := d.Cumulative(1); math.Abs(got-want) > 1e-12 {
		t.Fatalf("Cumulative(1) = %v, want %v", got, want)
	}
	if got := d.Cumulative(2.5); math.Abs(got-(2*want+d.Cumulative(0.5))) > 1e-12 {
		t.Fatalf("Cumulative(2.5) = %v: days must repeat", got)
	}
	prev := 0.0
	for i := 0; i <= 3000; i++ {
		c := d.Cumulative(float64(i) / 1000)
		if c < prev-1e-15 {
			t.Fatalf("Cumulative decreases at %v", float64(i)/1000)
		}
		prev = c
	}
}

func TestScheduleDue(t *testing.T) {
	s := Schedule{Day: DefaultDay(), DayLength: 3 * time.Minute, PeakRate: 200}
	if s.Due(0) != 0 || s.Due(17*time.Second) != 0 {
		t.Fatalf("orders due before breakfast: %d, %d", s.Due(0), s.Due(17*time.Second))
	}
	total := s.Due(3 * time.Minute)
	// 200/s × 180 s × 2.4 × 1.25 / 18 = 6000.
	if total != 6000 {
		t.Fatalf("orders in a 3-minute day at 200/s = %d, want 6000", total)
	}
	// Lunch (11:00-13:00 = 60..80 s) has the highest rate: 200/s at noon.
	if r := s.Rate(70 * time.Second); math.Abs(r-200) > 1e-9 {
		t.Fatalf("rate at noon = %v", r)
	}
	// Same answers every time: the schedule is a pure function.
	if s.Due(95*time.Second) != s.Due(95*time.Second) || s.Due(2*s.DayLength) != 2*total {
		t.Fatal("schedule is not deterministic")
	}
}

func TestDayValidateAndClock(t *testing.T) {
	d := DefaultDay()
	if got := d.Clock(atHour(d, 12.5)); got != "12:30" {
		t.Errorf("clock = %s", got)
	}
	if err := (Day{StartHour: 10, EndHour: 9}).Validate(); err == nil {
		t.Error("end before start accepted")
	}
	if err := (Day{StartHour: 0, EndHour: 24, Meals: []Meal{{Name: "x", HalfWidth: 0, Height: 1}}}).Validate(); err == nil {
		t.Error("zero-width meal accepted")
	}
}
