package store

import (
	"context"
	"fmt"
	"sync"

	bolt "go.etcd.io/bbolt"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
)

// EventType is the kind of change, as in a Kubernetes watch.
type EventType string

// Event types.
const (
	Added    EventType = "ADDED"
	Modified EventType = "MODIFIED"
	Deleted  EventType = "DELETED"
)

// Event is one change. Object is the object after the change (for Deleted, its last state with the deletion's
// resourceVersion). Consumers must not modify Object.
type Event struct {
	Type            EventType
	Object          *unstructured.Unstructured
	ResourceVersion uint64
}

// WatchOptions selects events.
type WatchOptions struct {
	// GroupKind to watch ("" for every kind).
	GroupKind string
	// Namespace to watch ("" for every namespace).
	Namespace string
	// ResourceVersion to start after. 0 means "now": the watch first delivers a synthetic Added event for every
	// existing matching object, then every later change (Kubernetes' semantics for an unset resourceVersion).
	ResourceVersion uint64
}

// maxPending bounds the events queued for one slow watcher; past it the watch is ended (the consumer re-lists),
// as a Kubernetes API server drops watchers that cannot keep up.
const maxPending = 100000

type watcher struct {
	opts WatchOptions
	out  chan Event

	// mu guards pending and done.
	mu      sync.Mutex
	pending []Event
	done    bool
	wake    chan struct{} // capacity 1: something was queued or the watch stopped
}

func (w *watcher) matches(e Event) bool {
	if w.opts.GroupKind != "" && objGroupKind(e.Object) != w.opts.GroupKind {
		return false
	}
	return w.opts.Namespace == "" || e.Object.GetNamespace() == w.opts.Namespace
}

func (w *watcher) enqueue(events []Event) bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.done {
		return false
	}
	for _, e := range events {
		if w.matches(e) {
			w.pending = append(w.pending, e)
		}
	}
	if len(w.pending) > maxPending {
		w.done = true
	}
	select {
	case w.wake <- struct{}{}:
	default:
	}
	return !w.done
}

func (w *watcher) stop() {
	w.mu.Lock()
	w.done = true
	w.mu.Unlock()
	select {
	case w.wake <- struct{}{}:
	default:
	}
}

// pump moves queued events to out in order until ctx ends or the watch is stopped; then it closes out.
func (w *watcher) pump(ctx context.Context, unregister func()) {
	defer close(w.out)
	defer unregister()
	for {
		w.mu.Lock()
		batch := w.pending
		w.pending = nil
		done := w.done
		w.mu.Unlock()
		for _, e := range batch {
			select {
			case w.out <- e:
			case <-ctx.Done():
				return
			}
		}
		if done && len(batch) == 0 {
			return
		}
		if len(batch) > 0 {
			continue
		}
		select {
		case <-w.wake:
		case <-ctx.Done():
			return
		}
	}
}

// Watch streams changes matching opts until ctx is done, the store closes, or the watcher falls too far behind;
// then the channel is closed. Events arrive in resourceVersion order.
func (s *Store) Watch(ctx context.Context, opts WatchOptions) (<-chan Event, error) {
	w := &watcher{opts: opts, out: make(chan Event), wake: make(chan struct{}, 1)}
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil, ErrClosed
	}
	var initial []Event
	if opts.ResourceVersion == 0 {
		// Under s.mu no write can slip between this snapshot and registering the watcher.
		gks := []string{opts.GroupKind}
		if opts.GroupKind == "" {
			var err error
			if gks, err = s.kindsLocked(); err != nil {
				s.mu.Unlock()
				return nil, err
			}
		}
		for _, gk := range gks {
			objs, _, err := s.List(gk, opts.Namespace)
			if err != nil {
				s.mu.Unlock()
				return nil, err
			}
			for _, o := range objs {
				rv, _ := ParseResourceVersion(o.GetResourceVersion())
				initial = append(initial, Event{Type: Added, Object: o, ResourceVersion: rv})
			}
		}
	} else {
		if opts.ResourceVersion < s.floor {
			s.mu.Unlock()
			return nil, fmt.Errorf("%w: resourceVersion %d is older than the oldest kept (%d)", ErrGone, opts.ResourceVersion, s.floor)
		}
		for _, e := range s.history {
			if e.ResourceVersion > opts.ResourceVersion {
				initial = append(initial, e)
			}
		}
	}
	w.enqueue(initial)
	s.watchers[w] = struct{}{}
	s.mu.Unlock()
	go w.pump(ctx, func() {
		s.mu.Lock()
		if s.watchers != nil {
			delete(s.watchers, w)
		}
		s.mu.Unlock()
	})
	return w.out, nil
}

func (s *Store) kindsLocked() ([]string, error) {
	var out []string
	err := s.db.View(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketObjects).ForEachBucket(func(k []byte) error { out = append(out, string(k)); return nil })
	})
	return out, err
}

// publishLocked appends committed events to the history and hands them to watchers. Caller holds s.mu.
func (s *Store) publishLocked(events []Event) {
	if len(events) == 0 {
		return
	}
	s.history = append(s.history, events...)
	// Trim in chunks (down to maxHist once twice that is reached) so the copy is amortised over many writes.
	if len(s.history) > 2*s.maxHist {
		over := len(s.history) - s.maxHist
		s.floor = s.history[over-1].ResourceVersion
		s.history = append([]Event(nil), s.history[over:]...)
	}
	for w := range s.watchers {
		if !w.enqueue(events) {
			delete(s.watchers, w)
		}
	}
}
