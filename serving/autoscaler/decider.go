package autoscaler

import (
	"math"
	"time"

	"github.com/tide-run/tide/serving/autoscaler/config"
)

// DefaultTickInterval is how often a revision's decision is recomputed (Knative's tickInterval).
const DefaultTickInterval = 2 * time.Second

// ScaleResult is one Decider recommendation.
type ScaleResult struct {
	// DesiredScale is the recommended instance count before min/max/initial bounds and scale-to-zero rules.
	DesiredScale int32
	// ExcessBurstCapacity is floor(ready*TotalValue - TargetBurstCapacity - panicAverage); negative means the
	// instances cannot absorb the configured burst, so the activator should stay in the path. It is -1 when
	// TargetBurstCapacity is -1 and 0 when it is 0.
	ExcessBurstCapacity int32
	// Panicking reports whether the decider is in panic mode after this decision.
	Panicking bool
}

// Decider is Knative's KPA algorithm for one revision. Not safe for concurrent use (the Multiscaler gives
// each revision its own goroutine).
//
// State: panicTime is when panic mode was last (re)confirmed, zero when not panicking; maxPanicPods is the
// highest recommendation while panicking (recommendations never decrease in panic mode); delay, present only
// with a positive ScaleDownDelay, holds the maximum recommendation over the trailing delay.
type Decider struct {
	spec         config.Settings
	panicTime    time.Time
	maxPanicPods int32
	delay        *maxWindow
}

// NewDecider creates a Decider. Like Knative, a decider created while more than one instance is ready
// starts in panic mode, so losing metric history (a restart) never scales an established revision down
// before a stable window of data has been seen.
func NewDecider(spec config.Settings, readyNow int, now time.Time) *Decider {
	d := &Decider{spec: spec, maxPanicPods: int32(readyNow)}
	if readyNow > 1 {
		d.panicTime = now
	}
	if spec.ScaleDownDelay > 0 {
		d.delay = newMaxWindow(spec.ScaleDownDelay, DefaultTickInterval)
	}
	return d
}

// Update replaces the settings. A changed scale-down-delay starts a new delay window.
func (d *Decider) Update(spec config.Settings) {
	if spec.ScaleDownDelay != d.spec.ScaleDownDelay {
		d.delay = nil
		if spec.ScaleDownDelay > 0 {
			d.delay = newMaxWindow(spec.ScaleDownDelay, DefaultTickInterval)
		}
	}
	d.spec = spec
}

// Panicking reports whether the decider is in panic mode.
func (d *Decider) Panicking() bool { return !d.panicTime.IsZero() }

// Scale computes a recommendation at now from the ready instance count and the observed stable and panic
// window averages of the revision's metric (concurrency or rps, totals over all instances).
func (d *Decider) Scale(now time.Time, ready int, stable, panic float64) ScaleResult {
	spec := d.spec
	// With no ready instance the rates are computed as if there were one, so a revision at zero can grow.
	readyF := math.Max(1, float64(ready))

	// ceil lets a conservative rate still add an instance (rate 1.1 on 2 instances allows 3).
	maxUp := math.Ceil(spec.MaxScaleUpRate * readyF)
	maxDown := 0.
	if spec.Reachable {
		maxDown = math.Floor(readyF / spec.MaxScaleDownRate)
	}

	dspc := math.Ceil(stable / spec.TargetValue)
	dppc := math.Ceil(panic / spec.TargetValue)
	stablePods := int32(math.Min(math.Max(dspc, maxDown), maxUp))
	panicPods := int32(math.Min(math.Max(dppc, maxDown), maxUp))

	if spec.ActivationScale > 1 {
		if dspc > 0 && spec.ActivationScale > stablePods {
			stablePods = spec.ActivationScale
		}
		if dppc > 0 && spec.ActivationScale > panicPods {
			panicPods = spec.ActivationScale
		}
	}

	over := dppc/readyF >= spec.PanicThreshold
	switch {
	case over:
		// Enter panic, or extend it: panic lasts until a whole stable window passes without crossing.
		d.panicTime = now
	case !d.panicTime.IsZero() && d.panicTime.Add(spec.StableWindow).Before(now):
		d.panicTime = time.Time{}
		d.maxPanicPods = 0
	}

	desired := stablePods
	if !d.panicTime.IsZero() {
		// Provision for the larger of the two windows, and never scale down while panicking.
		desired = max(desired, panicPods)
		if desired > d.maxPanicPods {
			d.maxPanicPods = desired
		}
		desired = d.maxPanicPods
	}

	// Scale-down delay: apply the maximum over the trailing delay window. Unreachable revisions skip it.
	if spec.Reachable && d.delay != nil {
		d.delay.record(now, desired)
		desired = d.delay.current()
	}

	ebc := -1.
	switch {
	case spec.TargetBurstCapacity == 0:
		ebc = 0
	case spec.TargetBurstCapacity > 0:
		ebc = math.Floor(float64(ready)*spec.TotalValue - spec.TargetBurstCapacity - panic)
	}
	return ScaleResult{DesiredScale: desired, ExcessBurstCapacity: int32(ebc), Panicking: !d.panicTime.IsZero()}
}

// maxWindow keeps the maximum value recorded over a trailing window of fixed-width buckets.
// Invariant: entries are in increasing index order with strictly decreasing values (a monotonic deque),
// all within the last n buckets of the newest index; entries[0] is the maximum.
type maxWindow struct {
	n           int
	granularity time.Duration
	entries     []maxEntry
}

type maxEntry struct {
	index int64
	value int32
}

func newMaxWindow(window, granularity time.Duration) *maxWindow {
	return &maxWindow{n: int(math.Ceil(float64(window) / float64(granularity))), granularity: granularity}
}

func (w *maxWindow) record(now time.Time, v int32) {
	idx := now.Unix() / int64(w.granularity/time.Second)
	for len(w.entries) > 0 && idx-w.entries[0].index >= int64(w.n) {
		w.entries = w.entries[1:] // slid out of the window
	}
	// Older values not larger than v can never be the maximum again while v is in the window.
	for len(w.entries) > 0 && w.entries[len(w.entries)-1].value <= v {
		w.entries = w.entries[:len(w.entries)-1]
	}
	if k := len(w.entries); k > 0 && w.entries[k-1].index == idx {
		return // a larger value was already recorded in this bucket
	}
	w.entries = append(w.entries, maxEntry{index: idx, value: v})
}

func (w *maxWindow) current() int32 {
	if len(w.entries) == 0 {
		return 0
	}
	return w.entries[0].value
}
