package fooddelivery

import (
	"fmt"
	"io"
	"math"
	"slices"
	"sort"
	"strings"
	"text/tabwriter"
	"time"
)

// SentOrder is one order the simulator got acknowledged by the broker (simulator.Sent, without the dependency).
type SentOrder struct {
	OrderID   string
	SentAt    time.Time
	Malformed bool // expected to be dead-lettered, not stored
}

// Sample is one point of a time series: instances at a moment, or a rate over the bucket starting At.
type Sample struct {
	At    time.Time
	Value float64
}

// SummaryInput is everything the demo collected.
type SummaryInput struct {
	Sent        []SentOrder
	SendFailed  int // orders the broker never acknowledged (not sent, so not lost)
	Orders      []StoredOrder
	DeadLetters []DeadLetter
	// Instances is the order service's ready instance count over time, in time order (a sample whenever it changes
	// or periodically).
	Instances []Sample
	// Schedule and Start place the day's meals on the wall clock, for the per-meal figures; optional.
	Schedule *Schedule
	Start    time.Time
	// Played is how long the simulation ran (meals after it are not counted); default one day length.
	Played time.Duration
}

// MealStat describes one meal of a played day.
type MealStat struct {
	Name          string
	From, To      time.Time // the meal's window on the wall clock
	Sent          int       // orders sent inside the window
	PeakInstances int       // most instances seen from the window's start until the next meal starts
	// ValleyZero reports that the instance count reached 0 after this meal, before the next one started (or before
	// the samples end after the last meal); ZeroAfter is how long after the window's end that happened.
	ValleyZero bool
	ZeroAfter  time.Duration
}

// Summary is the demo's result. Every sent order is exactly one of Processed, DeadLettered or Lost.
type Summary struct {
	Sent         int
	SendFailed   int
	Processed    int      // sent orders stored by the order service
	Duplicates   int      // redeliveries of those orders that the store ignored
	DeadLettered int      // sent orders that reached the dead-letter sink
	Lost         int      // sent orders neither stored nor dead-lettered: must be 0
	LostIDs      []string // the first few lost order ids, for investigation
	// MalformedStored counts malformed orders that were stored anyway (must be 0) and ValidDeadLettered valid orders
	// that were dead-lettered (0 unless the service failed for a whole retry budget).
	MalformedStored   int
	ValidDeadLettered int

	// End-to-end latency from the order message's born time (the CloudEvent time; the send time when absent) to the
	// moment the order was stored.
	LatencyP50, LatencyP99, LatencyMax time.Duration
	LatencySamples                     int

	PeakInstances int
	// ScaleToZero is the time from the last stored order (the end of the last peak's work) until the service had no
	// instance; ScaledToZero is false when the samples never show zero after it.
	ScaleToZero  time.Duration
	ScaledToZero bool
	LastStored   time.Time

	Meals []MealStat
}

// Summarize accounts for every sent order and computes the figures.
func Summarize(in SummaryInput) Summary {
	s := Summary{Sent: len(in.Sent), SendFailed: in.SendFailed}
	stored := make(map[string]StoredOrder, len(in.Orders))
	for _, o := range in.Orders {
		stored[o.OrderID] = o
	}
	dead := make(map[string]bool, len(in.DeadLetters))
	for _, d := range in.DeadLetters {
		if d.OrderID != "" {
			dead[d.OrderID] = true
		}
	}
	var latencies []time.Duration
	for _, so := range in.Sent {
		o, ok := stored[so.OrderID]
		switch {
		case ok:
			s.Processed++
			s.Duplicates += o.Duplicates
			if so.Malformed {
				s.MalformedStored++
			}
			born := o.Born
			if born.IsZero() {
				born = so.SentAt
			}
			if !born.IsZero() {
				latencies = append(latencies, max(0, o.Stored.Sub(born)))
			}
			if o.Stored.After(s.LastStored) {
				s.LastStored = o.Stored
			}
		case dead[so.OrderID]:
			s.DeadLettered++
			if !so.Malformed {
				s.ValidDeadLettered++
			}
		default:
			s.Lost++
			if len(s.LostIDs) < 10 {
				s.LostIDs = append(s.LostIDs, so.OrderID)
			}
		}
	}
	if len(latencies) > 0 {
		slices.Sort(latencies)
		s.LatencySamples = len(latencies)
		s.LatencyP50 = percentile(latencies, 0.50)
		s.LatencyP99 = percentile(latencies, 0.99)
		s.LatencyMax = latencies[len(latencies)-1]
	}
	for _, smp := range in.Instances {
		s.PeakInstances = max(s.PeakInstances, int(math.Round(smp.Value)))
	}
	if !s.LastStored.IsZero() {
		if at, ok := firstZero(in.Instances, s.LastStored, time.Time{}); ok {
			s.ScaledToZero, s.ScaleToZero = true, at.Sub(s.LastStored)
		}
	}
	if in.Schedule != nil && !in.Start.IsZero() {
		end := in.Start
		if n := len(in.Sent); n > 0 {
			end = in.Sent[n-1].SentAt
		}
		for _, smp := range in.Instances {
			end = maxTime(end, smp.At)
		}
		s.Meals = mealStats(in, *in.Schedule, in.Start, end, in.played())
	}
	return s
}

// percentile is the nearest-rank percentile of sorted values.
func percentile(sorted []time.Duration, p float64) time.Duration {
	i := int(math.Ceil(p*float64(len(sorted)))) - 1
	return sorted[min(max(i, 0), len(sorted)-1)]
}

// firstZero finds the first moment at or after from (and before until, when set) where the instance count is 0.
// Samples are a step function: each value holds until the next sample.
func firstZero(samples []Sample, from, until time.Time) (time.Time, bool) {
	for i, smp := range samples {
		if !until.IsZero() && !smp.At.Before(until) {
			break
		}
		if smp.Value >= 0.5 {
			continue
		}
		// This zero holds from smp.At until the next sample.
		holdsUntil := time.Time{}
		if i+1 < len(samples) {
			holdsUntil = samples[i+1].At
		}
		if !smp.At.Before(from) {
			return smp.At, true
		}
		if holdsUntil.IsZero() || holdsUntil.After(from) {
			return from, true // already zero at from
		}
	}
	return time.Time{}, false
}

// MealWindows places the schedule's meals on the wall clock for a run that started at start and lasted d
// (repeating days included).
func MealWindows(sched Schedule, start time.Time, d time.Duration) []MealStat {
	var out []MealStat
	span := sched.Day.EndHour - sched.Day.StartHour
	for day := 0; time.Duration(day)*sched.DayLength < d; day++ {
		dayStart := start.Add(time.Duration(day) * sched.DayLength)
		meals := slices.Clone(sched.Day.Meals)
		sort.Slice(meals, func(i, j int) bool { return meals[i].Center < meals[j].Center })
		for _, m := range meals {
			at := func(hour float64) time.Time {
				f := (hour - sched.Day.StartHour) / span
				f = min(max(f, 0), 1)
				return dayStart.Add(time.Duration(f * float64(sched.DayLength)))
			}
			from, to := at(m.Center-m.HalfWidth), at(m.Center+m.HalfWidth)
			if from.Sub(start) >= d {
				continue
			}
			out = append(out, MealStat{Name: m.Name, From: from, To: to})
		}
	}
	return out
}

// played is the simulation's duration, defaulting to one day.
func (in SummaryInput) played() time.Duration {
	if in.Played > 0 || in.Schedule == nil {
		return in.Played
	}
	return in.Schedule.DayLength
}

func mealStats(in SummaryInput, sched Schedule, start, end time.Time, played time.Duration) []MealStat {
	meals := MealWindows(sched, start, played)
	for i := range meals {
		m := &meals[i]
		for _, so := range in.Sent {
			if !so.SentAt.Before(m.From) && so.SentAt.Before(m.To) {
				m.Sent++
			}
		}
		next := time.Time{}
		if i+1 < len(meals) {
			next = meals[i+1].From
		}
		for j, smp := range in.Instances {
			// The step value holding at any moment within [From, next) counts.
			holdsUntil := end
			if j+1 < len(in.Instances) {
				holdsUntil = in.Instances[j+1].At
			}
			if holdsUntil.After(m.From) && (next.IsZero() || smp.At.Before(next)) {
				m.PeakInstances = max(m.PeakInstances, int(math.Round(smp.Value)))
			}
		}
		if at, ok := firstZero(in.Instances, m.To, next); ok {
			m.ValleyZero, m.ZeroAfter = true, at.Sub(m.To)
		}
	}
	return meals
}

func maxTime(a, b time.Time) time.Time {
	if b.After(a) {
		return b
	}
	return a
}

// OK reports whether nothing was lost and nothing was stored that should not have been.
func (s Summary) OK() bool { return s.Lost == 0 && s.MalformedStored == 0 }

// WriteText prints the summary as the demo shows it.
func (s Summary) WriteText(w io.Writer) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	p := func(k, format string, a ...any) { fmt.Fprintf(tw, "%s\t"+format+"\n", append([]any{k}, a...)...) }
	p("orders sent", "%d", s.Sent)
	if s.SendFailed > 0 {
		p("not accepted by RocketMQ", "%d (never sent, so not lost)", s.SendFailed)
	}
	p("processed", "%d", s.Processed)
	p("duplicates ignored", "%d", s.Duplicates)
	p("dead-lettered", "%d", s.DeadLettered)
	lost := fmt.Sprint(s.Lost)
	if s.Lost > 0 {
		lost += "  e.g. " + strings.Join(s.LostIDs, ", ")
	}
	p("lost", "%s", lost)
	if s.MalformedStored > 0 {
		p("malformed but stored", "%d", s.MalformedStored)
	}
	if s.LatencySamples > 0 {
		p("end-to-end latency", "p50 %s  p99 %s  max %s  (%d orders, born -> stored)",
			roundDur(s.LatencyP50), roundDur(s.LatencyP99), roundDur(s.LatencyMax), s.LatencySamples)
	}
	p("peak instances", "%d", s.PeakInstances)
	if s.ScaledToZero {
		p("scale to zero after last peak", "%.1f s", s.ScaleToZero.Seconds())
	} else if !s.LastStored.IsZero() {
		p("scale to zero after last peak", "not observed")
	}
	for _, m := range s.Meals {
		valley := "no"
		if m.ValleyZero {
			valley = fmt.Sprintf("yes, %.1f s after", m.ZeroAfter.Seconds())
		}
		p("  "+m.Name, "%d orders, up to %d instances, back to zero: %s", m.Sent, m.PeakInstances, valley)
	}
	return tw.Flush()
}

func roundDur(d time.Duration) time.Duration {
	switch {
	case d >= time.Second:
		return d.Round(10 * time.Millisecond)
	case d >= time.Millisecond:
		return d.Round(100 * time.Microsecond)
	default:
		return d.Round(time.Microsecond)
	}
}

// RateSeries bins moments into buckets of width bucket starting at start and returns the rate (per second) of each
// bucket, up to end. Moments outside [start, end) are ignored.
func RateSeries(moments []time.Time, start, end time.Time, bucket time.Duration) []Sample {
	if bucket <= 0 || !end.After(start) {
		return nil
	}
	n := int((end.Sub(start) + bucket - 1) / bucket)
	counts := make([]int, n)
	for _, m := range moments {
		if m.Before(start) || !m.Before(end) {
			continue
		}
		counts[int(m.Sub(start)/bucket)]++
	}
	out := make([]Sample, n)
	for i, c := range counts {
		out[i] = Sample{At: start.Add(time.Duration(i) * bucket), Value: float64(c) / bucket.Seconds()}
	}
	return out
}
