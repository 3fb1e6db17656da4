package fooddelivery

import (
	"fmt"
	"math"
	"time"
)

// Meal is one order peak of the day: a raised-cosine bump centred on Center (hour of day, e.g. 12.0 for noon),
// reaching Height (a fraction of the peak rate) there and falling to exactly 0 at Center ± HalfWidth hours.
// The bumps have compact support, so the valleys between meals are truly quiet: no orders at all, which is what lets
// the order service scale to zero between meals.
type Meal struct {
	Name      string
	Center    float64 // hour of day
	HalfWidth float64 // hours
	Height    float64 // 0..1, relative to the peak rate
}

// Day is the compressed day the simulator plays: the opening hours [StartHour, EndHour) mapped onto the simulated
// day length, with meal peaks. A Day is a value: its methods are pure functions of the day fraction.
type Day struct {
	StartHour, EndHour float64
	Meals              []Meal
}

// DefaultDay is a restaurant day from 05:00 to 23:00: quiet until 06:45, breakfast peaking at 08:00 (55% of the
// peak rate), quiet 09:15-10:45, lunch at 12:00 (the day's peak), quiet 13:15-17:15, dinner at 18:30 (85%), quiet
// from 19:45. On a 3-minute day an hour lasts 10 s: the afternoon valley is 40 s and the evening one 32 s.
func DefaultDay() Day {
	return Day{StartHour: 5, EndHour: 23, Meals: []Meal{
		{Name: "breakfast", Center: 8, HalfWidth: 1.25, Height: 0.55},
		{Name: "lunch", Center: 12, HalfWidth: 1.25, Height: 1},
		{Name: "dinner", Center: 18.5, HalfWidth: 1.25, Height: 0.85},
	}}
}

// Validate reports a Day that cannot be played.
func (d Day) Validate() error {
	if !(d.EndHour > d.StartHour) {
		return fmt.Errorf("day: endHour %v must be after startHour %v", d.EndHour, d.StartHour)
	}
	for i, m := range d.Meals {
		if m.HalfWidth <= 0 || m.Height < 0 || m.Height > 1 || math.IsNaN(m.Center) {
			return fmt.Errorf("day: meals[%d] (%s): halfWidth must be > 0 and height within [0,1]", i, m.Name)
		}
	}
	return nil
}

// Hour is the clock hour at day fraction f (0 = StartHour, 1 = EndHour).
func (d Day) Hour(f float64) float64 { return d.StartHour + f*(d.EndHour-d.StartHour) }

// Shape is the order rate at day fraction f, relative to the peak rate: in [0,1] when meals do not overlap (the sum
// of overlapping bumps otherwise). f outside [0,1) wraps around: the day repeats.
func (d Day) Shape(f float64) float64 {
	h := d.Hour(wrap(f))
	var r float64
	for _, m := range d.Meals {
		if x := h - m.Center; math.Abs(x) < m.HalfWidth {
			r += m.Height * (1 + math.Cos(math.Pi*x/m.HalfWidth)) / 2
		}
	}
	return r
}

// Cumulative is the integral of Shape from 0 to f, in day fractions: the number of orders due by f is
// peakRate × dayLength × Cumulative(f). It is exact (the bumps integrate in closed form), continuous and
// non-decreasing; f beyond 1 counts whole days.
func (d Day) Cumulative(f float64) float64 {
	if f <= 0 {
		return 0
	}
	days := math.Floor(f)
	return days*d.cumulativeWithin(1) + d.cumulativeWithin(f-days)
}

// cumulativeWithin integrates Shape over [0, f] for f in [0, 1].
func (d Day) cumulativeWithin(f float64) float64 {
	span := d.EndHour - d.StartHour
	end := d.Hour(f)
	var total float64 // in rate × hours
	for _, m := range d.Meals {
		lo := math.Max(d.StartHour, m.Center-m.HalfWidth)
		hi := math.Min(end, m.Center+m.HalfWidth)
		if hi <= lo {
			continue
		}
		// Antiderivative of Height·(1+cos(π(x-c)/w))/2.
		F := func(x float64) float64 {
			return m.Height / 2 * (x + m.HalfWidth/math.Pi*math.Sin(math.Pi*(x-m.Center)/m.HalfWidth))
		}
		total += F(hi) - F(lo)
	}
	return total / span
}

// MealAt names the meal whose bump covers day fraction f, or "" in a valley.
func (d Day) MealAt(f float64) string {
	h := d.Hour(wrap(f))
	for _, m := range d.Meals {
		if math.Abs(h-m.Center) < m.HalfWidth {
			return m.Name
		}
	}
	return ""
}

// Clock formats the clock time at day fraction f as "HH:MM".
func (d Day) Clock(f float64) string {
	h := d.Hour(wrap(f))
	mins := int(math.Round(h * 60))
	return fmt.Sprintf("%02d:%02d", (mins/60)%24, mins%60)
}

// Schedule maps wall time onto a Day of a given length at a given peak rate.
type Schedule struct {
	Day       Day
	DayLength time.Duration // how long the simulated day lasts in wall time
	PeakRate  float64       // orders per second at Shape = 1
}

// Fraction is the day fraction after elapsed wall time (beyond one day it keeps counting: 1.5 = noon of day two).
func (s Schedule) Fraction(elapsed time.Duration) float64 {
	return float64(elapsed) / float64(s.DayLength)
}

// Rate is the order rate (orders/s) after elapsed wall time.
func (s Schedule) Rate(elapsed time.Duration) float64 {
	return s.PeakRate * s.Day.Shape(s.Fraction(elapsed))
}

// Due is how many orders should have been sent after elapsed wall time: the integral of Rate, rounded down.
func (s Schedule) Due(elapsed time.Duration) int {
	return int(math.Floor(s.PeakRate*s.DayLength.Seconds()*s.Day.Cumulative(s.Fraction(elapsed)) + 1e-9))
}

func wrap(f float64) float64 {
	f -= math.Floor(f)
	return f
}
