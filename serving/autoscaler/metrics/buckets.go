package metrics

import (
	"math"
	"time"
)

// Buckets is a ring of fixed-width time buckets covering a window, summing every value recorded in the same
// bucket. It is not safe for concurrent use; Collector guards it.
//
// Invariants: buckets[i] holds the sum for the bucket whose index (unix time / granularity) is congruent to i
// modulo len(buckets), for indexes in (lastWrite-len, lastWrite]; total is the sum of all buckets; firstWrite
// <= lastWrite are bucket-aligned times (zero before the first write).
type Buckets struct {
	// smoothing is the weighted-exponential coefficient; 0 selects Knative's linear average.
	smoothing   float64
	buckets     []float64
	total       float64
	firstWrite  time.Time
	lastWrite   time.Time
	granularity time.Duration
	window      time.Duration
}

// averagePrecision is the number of decimal digits averages are rounded to, so float noise from adding and
// subtracting bucket values never turns an exact 0 into 1e-17 (which would keep one instance alive).
const averagePrecision = 6

// NewBuckets returns buckets of the given granularity covering window (rounded up to whole buckets).
// granularity is rounded down to whole seconds, at least one (bucket indexes are unix seconds / granularity).
func NewBuckets(window, granularity time.Duration) *Buckets {
	granularity = max(granularity.Truncate(time.Second), time.Second)
	n := int(math.Ceil(float64(window) / float64(granularity)))
	return &Buckets{buckets: make([]float64, max(n, 1)), granularity: granularity, window: window}
}

// Weighted-exponential averaging constants (Knative's): the weights of a full window sum to weightPrecision,
// and the coefficient never drops below minSmoothing, so long windows still favour recent seconds.
const (
	weightPrecision = 0.9999
	minSmoothing    = 0.2
)

// smoothingFor returns the coefficient for a window of nb buckets.
func smoothingFor(nb float64) float64 {
	return math.Max(1-math.Pow(1-weightPrecision, 1/nb), minSmoothing)
}

// NewWeightedBuckets is NewBuckets averaging with Knative's weighted-exponential algorithm
// (autoscaling.knative.dev/metric-aggregation-algorithm: weighted-exponential): the newest second weighs
// most, each older one (1 - coefficient) less.
func NewWeightedBuckets(window, granularity time.Duration) *Buckets {
	b := NewBuckets(window, granularity)
	b.SetWeighted(true)
	return b
}

// SetWeighted switches between the linear and the weighted-exponential average; the stored buckets are the
// same for both.
func (b *Buckets) SetWeighted(weighted bool) {
	b.smoothing = 0
	if weighted {
		b.smoothing = smoothingFor(float64(len(b.buckets)))
	}
}

// Window returns the covered duration.
func (b *Buckets) Window() time.Duration { return b.window }

func (b *Buckets) index(t time.Time) int {
	return int(t.Unix() / int64(b.granularity/time.Second))
}

// Record adds value to the bucket containing now. Values older than the window (relative to the newest
// write) are dropped; a write after a silence of a whole window starts afresh.
func (b *Buckets) Record(now time.Time, value float64) {
	bt := now.Truncate(b.granularity)
	wi := b.index(bt)
	if !bt.Equal(b.lastWrite) {
		if !bt.Add(b.window).After(b.lastWrite) {
			return // too old to matter
		}
		if b.firstWrite.IsZero() || b.firstWrite.After(bt) {
			b.firstWrite = bt
		}
		if bt.After(b.lastWrite) {
			if bt.Sub(b.lastWrite) >= b.window {
				clear(b.buckets)
				b.total = 0
				b.firstWrite = bt
			} else {
				// Zero the buckets skipped since the last write: they now stand for seconds without data.
				for i := b.index(b.lastWrite) + 1; i <= wi; i++ {
					j := i % len(b.buckets)
					b.total -= b.buckets[j]
					b.buckets[j] = 0
				}
			}
			b.lastWrite = bt
		}
	}
	b.buckets[wi%len(b.buckets)] += value
	b.total += value
}

// IsEmpty reports whether nothing was recorded within the window before now.
func (b *Buckets) IsEmpty(now time.Time) bool {
	return now.Truncate(b.granularity).Sub(b.lastWrite) > b.window
}

// WindowAverage returns the average per bucket over the window ending at now (see the package doc for which
// buckets count), rounded to 6 decimals.
func (b *Buckets) WindowAverage(now time.Time) float64 {
	now = now.Truncate(b.granularity)
	if b.smoothing > 0 {
		return b.weightedAverage(now)
	}
	written := float64(b.lastWrite.Sub(b.firstWrite)/b.granularity) + 1 // inclusive of both ends
	switch d := now.Sub(b.lastWrite); {
	case d <= 0:
		return round(b.total / math.Min(written, float64(len(b.buckets))))
	case d < b.window:
		// Buckets between the last write and now have slid out of the window; they hold old data.
		st, en := b.index(b.lastWrite), b.index(now)
		sum := b.total
		for i := st + 1; i <= en; i++ {
			sum -= b.buckets[i%len(b.buckets)]
		}
		return round(sum / math.Min(written, float64(len(b.buckets)-(en-st))))
	default:
		return 0
	}
}

// weightedAverage is the weighted-exponential average at the bucket-aligned now: the bucket k seconds old
// weighs smoothing*(1-smoothing)^k; seconds after the last write count as zeros. Not rounded (as Knative).
func (b *Buckets) weightedAverage(now time.Time) float64 {
	if now.Sub(b.lastWrite) > b.window {
		return 0
	}
	n := len(b.buckets)
	mult := b.smoothing
	if now.After(b.lastWrite) {
		skipped := int(now.Sub(b.lastWrite) / b.granularity)
		mult *= math.Pow(1-b.smoothing, float64(skipped))
		n -= skipped
	}
	start := b.index(b.lastWrite) + len(b.buckets)
	ret := 0.
	for i := range n {
		ret += b.buckets[(start-i)%len(b.buckets)] * mult
		mult *= 1 - b.smoothing
	}
	return ret
}

// Resize changes the window, keeping as many of the newest buckets as fit. now decides whether the kept data
// is still current.
func (b *Buckets) Resize(now time.Time, window time.Duration) {
	if window == b.window {
		return
	}
	n := max(int(math.Ceil(float64(window)/float64(b.granularity))), 1)
	nb := make([]float64, n)
	total := 0.
	if !b.lastWrite.IsZero() && now.Truncate(b.granularity).Sub(b.lastWrite) <= b.window {
		old := len(b.buckets)
		idx := b.index(b.lastWrite)
		for range min(n, old) {
			v := b.buckets[idx%old]
			nb[idx%n] = v
			total += v
			idx--
		}
		// Knative keeps firstWrite at the oldest bucket the old ring could hold.
		b.firstWrite = b.lastWrite.Add(-time.Duration(old-1) * b.granularity)
	} else {
		b.firstWrite = time.Time{}
	}
	b.window, b.buckets, b.total = window, nb, total
	b.SetWeighted(b.smoothing > 0)
}

// forEach calls f for every bucket still in the window ending at now, newest first (for tests).
func (b *Buckets) forEach(now time.Time, f func(t time.Time, v float64)) {
	now = now.Truncate(b.granularity)
	n := len(b.buckets) - int(now.Sub(b.lastWrite)/b.granularity)
	t, idx := b.lastWrite, b.index(b.lastWrite)
	for range n {
		f(t, b.buckets[idx%len(b.buckets)])
		idx--
		t = t.Add(-b.granularity)
	}
}

func round(f float64) float64 {
	p := math.Pow10(averagePrecision)
	return math.Round(f*p) / p
}
