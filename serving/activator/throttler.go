package activator

import (
	"container/list"
	"context"
	"errors"
	"sync"

	"k8s.io/apimachinery/pkg/types"
)

// ErrQueueFull is returned when a request would exceed the revision's wait queue; the gateway answers 503.
var ErrQueueFull = errors.New("pending request queue full")

// DefaultQueueDepth is how many requests the activator holds per revision, as Knative's activator does.
const DefaultQueueDepth = 10000

// QueueDepthPerSlot is queue-proxy's queue depth per unit of containerConcurrency.
const QueueDepthPerSlot = 10

// Backend is one instance that can take requests. *process.Instance implements it.
type Backend interface {
	// TryAcquire admits a request unless the backend is draining.
	TryAcquire() bool
	// Release ends an admitted request.
	Release()
	// InFlight counts admitted, unreleased requests.
	InFlight() int
	// HostPort is the address to send requests to.
	HostPort() string
}

// Poker is the autoscaler's "decide now" hook. Poke must not block.
type Poker interface {
	Poke(rev types.NamespacedName)
}

// Options configures a Throttler.
type Options struct {
	// Revision identifies the revision (for Poke).
	Revision types.NamespacedName
	// ContainerConcurrency is the per-backend hard limit; 0 means unlimited.
	ContainerConcurrency int
	// QueueDepth bounds the activator-mode queue. Default DefaultQueueDepth.
	QueueDepth int
	// Poker is told when requests start waiting with no capacity. Optional.
	Poker Poker
}

// Stats is a snapshot for status and `tide get rev -o wide`.
type Stats struct {
	Ready           int  `json:"ready"`    // backends in rotation
	InFlight        int  `json:"inFlight"` // requests admitted to backends
	Queued          int  `json:"queued"`   // requests waiting for a slot
	ActivatorInPath bool `json:"activatorInPath"`
}

// Throttler hands out request slots on a revision's backends.
type Throttler struct {
	rev        types.NamespacedName
	queueDepth int
	poker      Poker

	mu       sync.Mutex // guards everything below
	cc       int
	inPath   bool
	backends []Backend
	next     int        // rotation start for tie-breaking among equally loaded backends
	waiters  *list.List // of *waiter, oldest first
}

type waiter struct {
	ch   chan Backend // buffered 1; receives the backend already acquired for this waiter
	elem *list.Element
}

// New returns a Throttler with no backends: requests wait until Add.
func New(opts Options) *Throttler {
	if opts.QueueDepth <= 0 {
		opts.QueueDepth = DefaultQueueDepth
	}
	return &Throttler{rev: opts.Revision, queueDepth: opts.QueueDepth, poker: opts.Poker, cc: max(0, opts.ContainerConcurrency),
		waiters: list.New()}
}

// SetContainerConcurrency changes the per-backend limit (0 = unlimited) and releases waiters that now fit.
func (t *Throttler) SetContainerConcurrency(cc int) {
	t.mu.Lock()
	t.cc = max(0, cc)
	t.dispatchLocked()
	t.mu.Unlock()
}

// SetActivatorInPath records the autoscaler's decision that burst capacity is short: requests that find no free
// slot wait in the activator's deep queue instead of being refused at 10 x containerConcurrency.
func (t *Throttler) SetActivatorInPath(in bool) {
	t.mu.Lock()
	t.inPath = in
	t.mu.Unlock()
}

// Add puts a ready backend into rotation and hands it waiting requests. Adding one twice is a no-op.
func (t *Throttler) Add(b Backend) {
	t.mu.Lock()
	defer t.mu.Unlock()
	for _, have := range t.backends {
		if have == b {
			return
		}
	}
	t.backends = append(t.backends, b)
	t.dispatchLocked()
}

// Remove takes a backend out of rotation; requests it holds finish normally. Removing an unknown one is a no-op.
func (t *Throttler) Remove(b Backend) {
	t.mu.Lock()
	t.removeLocked(b)
	poke := len(t.backends) == 0 && t.waiters.Len() > 0
	t.mu.Unlock()
	if poke {
		t.poke()
	}
}

func (t *Throttler) removeLocked(b Backend) {
	for i, have := range t.backends {
		if have == b {
			t.backends = append(t.backends[:i], t.backends[i+1:]...)
			return
		}
	}
}

// Acquire returns a backend with a slot taken for this request, waiting if none is free. The caller must call
// Release(b) when the request is done. Errors: ErrQueueFull, or ctx's error when it ends first.
func (t *Throttler) Acquire(ctx context.Context) (Backend, error) {
	b, _, err := t.AcquireCold(ctx)
	return b, err
}

// AcquireCold is Acquire that also reports whether the request found the revision with no backend in rotation
// and so waited for an instance to start (a cold start; metrics count them and their wait).
func (t *Throttler) AcquireCold(ctx context.Context) (Backend, bool, error) {
	t.mu.Lock()
	if t.waiters.Len() == 0 { // FIFO: nobody may overtake a waiting request
		if b := t.pickLocked(); b != nil {
			t.mu.Unlock()
			return b, false, nil
		}
	}
	cold := len(t.backends) == 0
	activatorMode := cold || t.inPath
	var limit int
	switch {
	case activatorMode:
		limit = t.queueDepth
	case t.cc == 0:
		// Unlimited concurrency only finds no slot when every backend refused (draining): hold the request as the
		// activator would until a backend is ready.
		limit = t.queueDepth
	default:
		limit = QueueDepthPerSlot * t.cc * len(t.backends)
	}
	if t.waiters.Len() >= limit {
		t.mu.Unlock()
		return nil, cold, ErrQueueFull
	}
	w := &waiter{ch: make(chan Backend, 1)}
	w.elem = t.waiters.PushBack(w)
	poke := activatorMode && t.waiters.Len() == 1
	t.mu.Unlock()
	if poke {
		t.poke()
	}

	select {
	case b := <-w.ch:
		return b, cold, nil
	case <-ctx.Done():
		t.mu.Lock()
		if w.elem != nil {
			t.waiters.Remove(w.elem)
			w.elem = nil
			t.mu.Unlock()
			return nil, cold, ctx.Err()
		}
		t.mu.Unlock()
		// A backend was handed over at the same moment: give the slot to the next waiter.
		t.Release(<-w.ch)
		return nil, cold, ctx.Err()
	}
}

// TryAcquire takes a slot on a free backend without waiting, or returns nil when none is free or requests are
// already waiting (FIFO: nobody overtakes them); the caller then goes through Acquire, which queues. The slot is
// released with Release, as Acquire's. It never pokes the autoscaler: a request that finds no slot here is counted
// when it calls Acquire.
func (t *Throttler) TryAcquire() Backend {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.waiters.Len() != 0 {
		return nil
	}
	return t.pickLocked()
}

// Release ends a request acquired with Acquire and hands the freed slot to the oldest waiter.
func (t *Throttler) Release(b Backend) {
	t.mu.Lock()
	b.Release()
	t.dispatchLocked()
	t.mu.Unlock()
}

// pickLocked takes a slot on the least-loaded backend below the limit, starting the scan at a rotating index so
// equally loaded backends share work. Backends that refuse (draining) leave the rotation.
func (t *Throttler) pickLocked() Backend {
	for len(t.backends) > 0 {
		n := len(t.backends)
		best, bestLoad := -1, 0
		for k := 0; k < n; k++ {
			i := (t.next + k) % n
			load := t.backends[i].InFlight()
			if t.cc > 0 && load >= t.cc {
				continue
			}
			if best < 0 || load < bestLoad {
				best, bestLoad = i, load
				if load == 0 {
					break
				}
			}
		}
		if best < 0 {
			return nil
		}
		b := t.backends[best]
		if b.TryAcquire() {
			t.next = (best + 1) % n
			return b
		}
		t.removeLocked(b)
	}
	return nil
}

// dispatchLocked hands free slots to waiters, oldest first.
func (t *Throttler) dispatchLocked() {
	for t.waiters.Len() > 0 {
		b := t.pickLocked()
		if b == nil {
			return
		}
		w := t.waiters.Remove(t.waiters.Front()).(*waiter)
		w.elem = nil
		w.ch <- b
	}
}

func (t *Throttler) poke() {
	if t.poker != nil {
		t.poker.Poke(t.rev)
	}
}

// Stats returns a snapshot.
func (t *Throttler) Stats() Stats {
	t.mu.Lock()
	defer t.mu.Unlock()
	s := Stats{Ready: len(t.backends), Queued: t.waiters.Len(), ActivatorInPath: t.inPath || len(t.backends) == 0}
	for _, b := range t.backends {
		s.InFlight += b.InFlight()
	}
	return s
}

// PokerFunc adapts a function to Poker (e.g. func(k) { multiscaler.Poke(k.String()) }).
type PokerFunc func(rev types.NamespacedName)

// Poke calls f.
func (f PokerFunc) Poke(rev types.NamespacedName) { f(rev) }
