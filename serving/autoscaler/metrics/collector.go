package metrics

import (
	"errors"
	"fmt"
	"sync"
	"time"
)

// BucketSize is the width of one aggregation bucket.
const BucketSize = time.Second

// Sentinel errors of the collector.
var (
	// ErrNotCollecting: the revision was never added (or was removed).
	ErrNotCollecting = errors.New("no metrics are being collected for the revision")
	// ErrNoData: nothing was reported within the stable window, so there is nothing to decide on.
	ErrNoData = errors.New("no data available")
)

// Window describes the windows of one revision's collection.
type Window struct {
	Stable time.Duration
	Panic  time.Duration
	// NoDataIsZero makes an empty window read as 0 instead of ErrNoData. Knative does this when
	// target-burst-capacity is -1, because then only the activator reports and silence means idle.
	NoDataIsZero bool
	// Weighted selects the weighted-exponential average instead of the linear one.
	Weighted bool
}

// Collector keeps the bucketed metrics of every revision. Safe for concurrent use.
//
// mu guards the map; each collection has its own lock so recording for one revision never waits on
// another.
type Collector struct {
	mu   sync.RWMutex
	revs map[string]*collection
}

type collection struct {
	mu                    sync.Mutex // guards everything below
	win                   Window
	concStable, concPanic *Buckets
	rpsStable, rpsPanic   *Buckets
}

// NewCollector returns an empty Collector.
func NewCollector() *Collector {
	return &Collector{revs: map[string]*collection{}}
}

// Watch starts (or, with new windows, resizes) the collection for revision. now is used only when resizing.
func (c *Collector) Watch(revision string, now time.Time, w Window) error {
	if w.Stable < BucketSize || w.Panic < BucketSize || w.Panic > w.Stable {
		return fmt.Errorf("metrics: revision %q: windows stable=%v panic=%v: want 1s <= panic <= stable",
			revision, w.Stable, w.Panic)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if col, ok := c.revs[revision]; ok {
		col.mu.Lock()
		defer col.mu.Unlock()
		col.win = w
		col.concStable.Resize(now, w.Stable)
		col.rpsStable.Resize(now, w.Stable)
		col.concPanic.Resize(now, w.Panic)
		col.rpsPanic.Resize(now, w.Panic)
		col.setWeighted(w.Weighted)
		return nil
	}
	col := &collection{
		win:        w,
		concStable: NewBuckets(w.Stable, BucketSize),
		concPanic:  NewBuckets(w.Panic, BucketSize),
		rpsStable:  NewBuckets(w.Stable, BucketSize),
		rpsPanic:   NewBuckets(w.Panic, BucketSize),
	}
	col.setWeighted(w.Weighted)
	c.revs[revision] = col
	return nil
}

// Forget drops a revision's data.
func (c *Collector) Forget(revision string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	delete(c.revs, revision)
}

// Record adds one Stat for revision in the second containing now. Several instances reporting in the same
// second add up. Stats for a revision that is not watched are dropped (it was removed, or not added yet).
func (c *Collector) Record(revision string, now time.Time, stat Stat) {
	c.mu.RLock()
	col, ok := c.revs[revision]
	c.mu.RUnlock()
	if !ok {
		return
	}
	// Proxied requests are counted by both the activator and the instance; count them once.
	conc := stat.AverageConcurrency - stat.AverageProxiedConcurrency
	rps := stat.RequestCount - stat.ProxiedRequestCount
	col.mu.Lock()
	defer col.mu.Unlock()
	col.concStable.Record(now, conc)
	col.concPanic.Record(now, conc)
	col.rpsStable.Record(now, rps)
	col.rpsPanic.Record(now, rps)
}

// Watching reports whether revision is being collected.
func (c *Collector) Watching(revision string) bool {
	c.mu.RLock()
	defer c.mu.RUnlock()
	_, ok := c.revs[revision]
	return ok
}

// StableAndPanicConcurrency returns the revision's total concurrency averaged over its stable and panic
// windows ending at now.
func (c *Collector) StableAndPanicConcurrency(revision string, now time.Time) (stable, panic float64, err error) {
	return c.averages(revision, now, false)
}

// StableAndPanicRPS returns the revision's total requests per second averaged over its windows.
func (c *Collector) StableAndPanicRPS(revision string, now time.Time) (stable, panic float64, err error) {
	return c.averages(revision, now, true)
}

func (c *Collector) averages(revision string, now time.Time, rps bool) (float64, float64, error) {
	c.mu.RLock()
	col, ok := c.revs[revision]
	c.mu.RUnlock()
	if !ok {
		return 0, 0, fmt.Errorf("metrics: revision %q: %w", revision, ErrNotCollecting)
	}
	col.mu.Lock()
	defer col.mu.Unlock()
	st, pa := col.concStable, col.concPanic
	if rps {
		st, pa = col.rpsStable, col.rpsPanic
	}
	if st.IsEmpty(now) && !col.win.NoDataIsZero {
		return 0, 0, fmt.Errorf("metrics: revision %q: %w", revision, ErrNoData)
	}
	return st.WindowAverage(now), pa.WindowAverage(now), nil
}

func (col *collection) setWeighted(w bool) {
	for _, b := range []*Buckets{col.concStable, col.concPanic, col.rpsStable, col.rpsPanic} {
		b.SetWeighted(w)
	}
}
