package metrics

import (
	"math"
	"math/rand"
	"testing"
	"time"
)

// The cases below port knative.dev/serving pkg/autoscaler/aggregation/bucketing_test.go.

var base = time.Unix(1_700_000_000, 0) // bucket aligned for 1s and 5s

func sum(b *Buckets, now time.Time) float64 {
	s := 0.
	b.forEach(now, func(_ time.Time, v float64) { s += v })
	return s
}

func TestBucketsSumPerBucket(t *testing.T) {
	type rec struct {
		at time.Duration
		v  float64
	}
	tests := []struct {
		name        string
		granularity time.Duration
		recs        []rec
		want        map[time.Duration]float64
	}{
		{name: "1s", granularity: time.Second,
			recs: []rec{{0, 1}, {100 * time.Millisecond, 10}, {time.Second, 1}, {3 * time.Second, 1}},
			want: map[time.Duration]float64{0: 11, time.Second: 1, 3 * time.Second: 1}},
		{name: "5s", granularity: 5 * time.Second,
			recs: []rec{{0, 1}, {3 * time.Second, 11}, {6 * time.Second, 1}},
			want: map[time.Duration]float64{0: 12, 5 * time.Second: 1}},
		{name: "empty", granularity: time.Second, want: map[time.Duration]float64{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := NewBuckets(2*time.Minute, tt.granularity)
			if !b.IsEmpty(base) {
				t.Error("new buckets are not empty")
			}
			for _, r := range tt.recs {
				b.Record(base.Add(r.at), r.v)
			}
			got := map[time.Duration]float64{}
			b.forEach(base.Add(time.Minute), func(at time.Time, v float64) {
				if v > 0 {
					got[at.Sub(base)] = v
				}
			})
			if len(got) != len(tt.want) {
				t.Fatalf("buckets = %v, want %v", got, tt.want)
			}
			for k, v := range tt.want {
				if got[k] != v {
					t.Errorf("bucket %v = %v, want %v", k, got[k], v)
				}
			}
		})
	}
}

func TestBucketsManyReps(t *testing.T) {
	for _, order := range [][]int{{0, 1, 2, 3, 4}, {0, 3, 2, 1, 4}} {
		b := NewBuckets(time.Minute, time.Second)
		end := base
		for p := range 5 {
			end = base.Add(time.Duration(order[p]) * time.Second)
			for k := range 5 {
				b.Record(end, float64(p+k))
			}
		}
		if got := sum(b, end); got != 100 {
			t.Errorf("order %v: sum = %v, want 100", order, got)
		}
	}
}

func TestBucketsWindowAverage(t *testing.T) {
	b := NewBuckets(5*time.Second, time.Second)
	now := base.Add(300 * time.Millisecond)
	at := func(d time.Duration) time.Time { return now.Add(d) }
	steps := []struct {
		name   string
		record func()
		at     time.Time
		want   float64
	}{
		// The first write counts alone, not diluted over the 5 s window (Knative uses firstWrite).
		{"first write", func() { b.Record(now, 1) }, now, 1},
		{"full window", func() {
			for i := 1; i < 5; i++ {
				b.Record(at(time.Duration(i)*time.Second), float64(i+1))
			}
		}, at(4 * time.Second), 15. / 5},
		{"now lags", nil, at(3600 * time.Millisecond), 15. / 5},
		{"short hole", nil, at(6 * time.Second), (15. - 1 - 2) / (5 - 2)},
		{"long hole", nil, at(10 * time.Second), 0},
		{"write after hole", func() { b.Record(at(6*time.Second), 91) }, at(6 * time.Second), (15. - 1 - 2 + 91) / 5},
	}
	for _, s := range steps {
		if s.record != nil {
			s.record()
		}
		if got := b.WindowAverage(s.at); got != s.want {
			t.Errorf("%s: WindowAverage = %v, want %v", s.name, got, s.want)
		}
	}

	now = now.Add(time.Minute)
	steps = []struct {
		name   string
		record func()
		at     time.Time
		want   float64
	}{
		{"far ahead", func() { b.Record(now, 1984) }, now, 1984},
		{"earlier write", func() { b.Record(now.Add(-3*time.Second), 4) }, now, (4. + 1984) / 4},
	}
	for _, s := range steps {
		s.record()
		if got := b.WindowAverage(s.at); got != s.want {
			t.Errorf("%s: WindowAverage = %v, want %v", s.name, got, s.want)
		}
	}
	now = now.Add(time.Second)
	checks := []struct {
		name string
		at   time.Duration
		v    float64
		want float64
	}{
		{"one more second", 0, 5, (4. + 1984 + 5) / 5},
		{"earlier again", -3 * time.Second, 10, (4. + 10 + 1984 + 5) / 5},
		{"too early ignored", -6 * time.Second, 10, (4. + 10 + 1984 + 5) / 5},
		{"window bound ignored", -5 * time.Second, 10, (4. + 10 + 1984 + 5) / 5},
	}
	for _, c := range checks {
		b.Record(now.Add(c.at), c.v)
		if got := b.WindowAverage(now); got != c.want {
			t.Errorf("%s: WindowAverage = %v, want %v", c.name, got, c.want)
		}
	}
	// Silence for exactly one window clears the data.
	b.Record(now.Add(5*time.Second), 10)
	if got := b.WindowAverage(now.Add(5 * time.Second)); got != 10 {
		t.Errorf("after a window of silence: WindowAverage = %v, want 10", got)
	}
}

func TestBucketsDescendingRecord(t *testing.T) {
	b := NewBuckets(5*time.Second, time.Second)
	for i := 8 * time.Second; i >= 0; i -= time.Second {
		b.Record(base.Add(i), 5)
	}
	if got := b.WindowAverage(base.Add(5 * time.Second)); got != 5 {
		t.Errorf("WindowAverage = %v, want 5", got)
	}
}

func TestBucketsHoles(t *testing.T) {
	b := NewBuckets(5*time.Second, time.Second)
	for i := range 5 {
		b.Record(base.Add(time.Duration(i)*time.Second), float64(i+1))
	}
	if got := sum(b, base.Add(4*time.Second)); got != 15 {
		t.Errorf("sum = %v, want 15", got)
	}
	if got := b.WindowAverage(base.Add(4 * time.Second)); got != 3 {
		t.Errorf("WindowAverage = %v, want 3", got)
	}
	// Writing at 8 s zeroes seconds 5..7 (and drops 0..3 from the ring): 5 (at 4 s) + 2 remain.
	b.Record(base.Add(8*time.Second), 2)
	if got := sum(b, base.Add(8*time.Second)); got != 7 {
		t.Errorf("sum = %v, want 7", got)
	}
	// Missing seconds between writes count as 0: (5+0+0+0+2)/5.
	if got := b.WindowAverage(base.Add(8 * time.Second)); got != 7./5 {
		t.Errorf("WindowAverage = %v, want 1.4", got)
	}
}

func TestBucketsResize(t *testing.T) {
	b := NewBuckets(5*time.Second, time.Second)
	for i := range 6 {
		b.Record(base.Add(time.Duration(i)*time.Second), float64(i+1))
	}
	now := base.Add(5 * time.Second)
	const initial = 2. + 3 + 4 + 5 + 6
	if got := sum(b, now); got != initial {
		t.Fatalf("sum = %v, want %v", got, initial)
	}
	if got := b.WindowAverage(now); got != initial/5 {
		t.Fatalf("avg = %v", got)
	}
	b.Resize(now, 10*time.Second)
	if len(b.buckets) != 10 || b.Window() != 10*time.Second {
		t.Fatalf("resized to %d buckets / %v", len(b.buckets), b.Window())
	}
	if got := sum(b, now); got != initial {
		t.Errorf("sum after grow = %v, want %v", got, initial)
	}
	// Still 5 buckets of data: the average does not change.
	if got := b.WindowAverage(now); got != initial/5 {
		t.Errorf("avg after grow = %v, want %v", got, initial/5)
	}
	now = now.Add(time.Second)
	b.Record(now, 7)
	if got := sum(b, now); got != initial+7 {
		t.Errorf("sum = %v, want %v", got, initial+7)
	}
	if got, want := b.WindowAverage(now), round((initial+7)/6); got != want {
		t.Errorf("avg = %v, want %v", got, want)
	}
	b.Resize(now, 4*time.Second)
	const shrunk = initial + 7 - 2 - 3
	if len(b.buckets) != 4 || sum(b, now) != shrunk {
		t.Errorf("after shrink: %d buckets, sum %v, want 4, %v", len(b.buckets), sum(b, now), shrunk)
	}
	if got := b.WindowAverage(now); got != shrunk/4 {
		t.Errorf("avg after shrink = %v, want %v", got, shrunk/4)
	}
	old := &b.buckets[0]
	b.Resize(now, 4*time.Second)
	if &b.buckets[0] != old {
		t.Error("resizing to the same window reallocated")
	}
}

func TestBucketsResize3sGranularity(t *testing.T) {
	const gr = 3 * time.Second
	start := base.Truncate(gr)
	b := NewBuckets(5*time.Second, gr) // ceil(5/3) = 2 buckets
	if len(b.buckets) != 2 {
		t.Fatalf("buckets = %d, want 2", len(b.buckets))
	}
	for i, v := range []float64{10, 2, 3, 4, 5, 6, 7} {
		b.Record(start.Add(time.Duration(i)*time.Second), v)
	}
	want := 4. + 5 + 6 + 7 // 10+2+3 was overwritten by 7
	if got := sum(b, start.Add(6*time.Second)); got != want {
		t.Fatalf("sum = %v, want %v", got, want)
	}
	b.Resize(start.Add(6*time.Second), 10*time.Second)
	if len(b.buckets) != 4 || sum(b, start.Add(6*time.Second)) != want {
		t.Fatalf("after grow: %d buckets, sum %v", len(b.buckets), sum(b, start.Add(6*time.Second)))
	}
	b.Record(start.Add(9*time.Second+300*time.Millisecond), 42)
	want += 42
	if got := sum(b, start.Add(9*time.Second)); got != want {
		t.Fatalf("sum = %v, want %v", got, want)
	}
	b.Resize(start.Add(9*time.Second), 4*time.Second)
	if got := sum(b, start.Add(9*time.Second)); len(b.buckets) != 2 || got != 42+7 {
		t.Errorf("after shrink: %d buckets, sum %v, want 2, 49", len(b.buckets), got)
	}
}

func TestBucketsResizeStaleData(t *testing.T) {
	b := NewBuckets(5*time.Second, time.Second)
	b.Record(base, 19.82)
	if !b.firstWrite.Equal(b.lastWrite) {
		t.Errorf("firstWrite %v != lastWrite %v", b.firstWrite, b.lastWrite)
	}
	b.Resize(base.Add(time.Minute), 10*time.Second)
	if !b.firstWrite.IsZero() {
		t.Errorf("firstWrite after resizing stale data = %v, want zero", b.firstWrite)
	}
}

func TestRound(t *testing.T) {
	if got := round(0.1 + 0.2 - 0.3); got != 0 {
		t.Errorf("round(float noise) = %v, want 0", got)
	}
	if got := round(1.23456789); got != 1.234568 {
		t.Errorf("round = %v", got)
	}
}

// BenchmarkWindowAverage: go test ./serving/autoscaler/metrics -run XXX -bench WindowAverage
func BenchmarkWindowAverage(b *testing.B) {
	for _, wl := range []int{60, 600} {
		bk := NewBuckets(time.Duration(wl)*time.Second, time.Second)
		for i := range wl {
			bk.Record(base.Add(time.Duration(i)*time.Second), rand.Float64()*100)
		}
		b.Run(time.Duration(wl*int(time.Second)).String(), func(b *testing.B) {
			for b.Loop() {
				bk.WindowAverage(base.Add(time.Duration(wl) * time.Second))
			}
		})
	}
}

func TestSmoothingFor(t *testing.T) {
	for _, tc := range []struct{ nb, want float64 }{{100, minSmoothing}, {60, minSmoothing}, {40, 0.20567}, {6, 0.78456}} {
		if got := smoothingFor(tc.nb); math.Abs(got-tc.want) > 1e-4 {
			t.Errorf("smoothingFor(%v) = %v, want %v", tc.nb, got, tc.want)
		}
	}
}

func TestWeightedAverage(t *testing.T) {
	now := base.Add(300 * time.Millisecond)
	b := NewWeightedBuckets(5*time.Second, time.Second)
	m := b.smoothing
	b.Record(now, 2)
	want := 2 * m
	if got := b.WindowAverage(now); got != want {
		t.Errorf("one write: %v, want %v", got, want)
	}
	// A second later with no write: the value decays.
	want *= 1 - m
	if got := b.WindowAverage(now.Add(time.Second)); got != want {
		t.Errorf("decayed: %v, want %v", got, want)
	}
	b.Record(now.Add(time.Second), 2)
	want += 2 * m
	if got := b.WindowAverage(now.Add(time.Second)); got != want {
		t.Errorf("second write: %v, want %v", got, want)
	}
	for i := range 5 {
		b.Record(now.Add(time.Duration(2+i)*time.Second), float64(i+2))
	}
	want = 6*m + 5*m*(1-m) + 4*m*(1-m)*(1-m) + 3*m*(1-m)*(1-m)*(1-m) + 2*m*(1-m)*(1-m)*(1-m)*(1-m)
	if got := b.WindowAverage(now.Add(6 * time.Second)); math.Abs(got-want) > 1e-12 {
		t.Errorf("full window: %v, want %v", got, want)
	}
	if got := b.WindowAverage(now.Add(16 * time.Second)); got != 0 {
		t.Errorf("empty window: %v, want 0", got)
	}
}

func TestWeightedResize(t *testing.T) {
	b := NewWeightedBuckets(5*time.Second, time.Second)
	if b.smoothing != smoothingFor(5) {
		t.Errorf("smoothing = %v", b.smoothing)
	}
	for i := range 6 {
		b.Record(base.Add(time.Duration(i)*time.Second), float64(i+1))
	}
	now := base.Add(5 * time.Second)
	if got := sum(b, now); got != 2.+3+4+5+6 {
		t.Fatalf("sum = %v", got)
	}
	if got := math.Round(b.WindowAverage(now)*1000) / 1000; got != 5.812 { // Knative's hand-computed value
		t.Fatalf("weighted average = %v, want 5.812", got)
	}
	b.Resize(now, 10*time.Second)
	if len(b.buckets) != 10 || b.smoothing != smoothingFor(10) {
		t.Errorf("after resize: %d buckets, smoothing %v", len(b.buckets), b.smoothing)
	}
	b.SetWeighted(false)
	if got := b.WindowAverage(now); got != 20./5 {
		t.Errorf("linear after switching: %v, want 4", got)
	}
}
