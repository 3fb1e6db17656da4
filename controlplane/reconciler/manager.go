package reconciler

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"k8s.io/client-go/util/workqueue"
	"k8s.io/utils/clock"

	"github.com/tide-run/tide/controlplane/registry"
	"github.com/tide-run/tide/controlplane/store"
)

// Key names an object of the reconciled kind.
type Key struct {
	Namespace string
	Name      string
}

func (k Key) String() string {
	if k.Namespace == "" {
		return k.Name
	}
	return k.Namespace + "/" + k.Name
}

// Reconciler brings one object's world in line with its spec. It must be idempotent and read the current state
// itself (level-triggered): it is told only which object to look at. A nil error means done; an error requeues
// with backoff. A missing object (deleted) is normal and should return nil.
type Reconciler interface {
	Reconcile(ctx context.Context, key Key) error
}

// Func adapts a function to Reconciler.
type Func func(ctx context.Context, key Key) error

// Reconcile implements Reconciler.
func (f Func) Reconcile(ctx context.Context, key Key) error { return f(ctx, key) }

// Registration binds a reconciler to a kind.
type Registration struct {
	// GroupKind of the reconciled kind ("Service.serving.knative.dev"; see registry.Kind.GroupKind).
	GroupKind string
	// Reconciler to call.
	Reconciler Reconciler
	// Owns lists GroupKinds of children: a change to a child enqueues each owner of kind GroupKind named in its
	// ownerReferences.
	Owns []string
	// Watches maps changes of other kinds to keys of this kind (e.g. a Route re-resolves its traffic when a
	// Configuration changes).
	Watches []Watch
	// Workers is how many keys are reconciled at once (never the same key twice at once). Default 1.
	Workers int
}

// Watch maps events of another kind to keys to reconcile.
type Watch struct {
	GroupKind string
	Map       func(e store.Event) []Key
}

// AllInNamespace is a Watch map to every object of kind gk in the event's namespace, for kinds whose objects may
// name the changed one (a Trigger its Broker, a Route its Configuration) and are few enough to re-resolve them all.
// If listing fails it maps to nothing.
func AllInNamespace(st *store.Store, gk string) func(store.Event) []Key {
	return func(e store.Event) []Key {
		objs, _, err := st.List(gk, e.Object.GetNamespace())
		if err != nil {
			return nil
		}
		keys := make([]Key, 0, len(objs))
		for _, o := range objs {
			keys = append(keys, Key{Namespace: o.GetNamespace(), Name: o.GetName()})
		}
		return keys
	}
}

// ManagerOptions configures a Manager.
type ManagerOptions struct {
	Store    *store.Store       // required
	Registry *registry.Registry // optional, for log attributes
	Clock    clock.WithTicker   // drives retry delays; default real clock
	Logger   *slog.Logger       // default slog.Default(); adds component=reconciler
	// BaseDelay and MaxDelay bound the exponential retry backoff. Defaults 5ms and 30s.
	BaseDelay, MaxDelay time.Duration
}

// Manager runs registered reconcilers. regs and queues are guarded by mu.
type Manager struct {
	opts ManagerOptions
	log  *slog.Logger

	mu      sync.Mutex
	running bool
	regs    map[string]Registration
	order   []string
	queues  map[string]workqueue.TypedRateLimitingInterface[Key]
}

// NewManager returns a manager with no reconcilers.
func NewManager(opts ManagerOptions) *Manager {
	if opts.Clock == nil {
		opts.Clock = clock.RealClock{}
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	if opts.BaseDelay <= 0 {
		opts.BaseDelay = 5 * time.Millisecond
	}
	if opts.MaxDelay <= 0 {
		opts.MaxDelay = 30 * time.Second
	}
	return &Manager{opts: opts, log: opts.Logger.With("component", "reconciler"), regs: map[string]Registration{},
		queues: map[string]workqueue.TypedRateLimitingInterface[Key]{}}
}

// Register adds a reconciler for reg.GroupKind, replacing any earlier one for that kind (so the composition root
// can swap a default for the real thing). Call before Run.
func (m *Manager) Register(reg Registration) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if reg.Workers <= 0 {
		reg.Workers = 1
	}
	if _, ok := m.regs[reg.GroupKind]; !ok {
		m.order = append(m.order, reg.GroupKind)
	}
	m.regs[reg.GroupKind] = reg
}

// Registered lists the reconciled GroupKinds in registration order.
func (m *Manager) Registered() []string {
	m.mu.Lock()
	defer m.mu.Unlock()
	return append([]string(nil), m.order...)
}

// Enqueue asks for a reconcile of key of kind gk (no-op when gk has no reconciler or Run has not started).
func (m *Manager) Enqueue(gk string, key Key) {
	m.mu.Lock()
	q := m.queues[gk]
	m.mu.Unlock()
	if q != nil {
		q.Add(key)
	}
}

// Ready reports whether Run has started every reconciler (a readiness check for /readyz).
func (m *Manager) Ready() error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if !m.running {
		return errors.New("reconcilers not running")
	}
	return nil
}

// Run starts every registered reconciler and blocks until ctx is done; in-flight reconciles finish first.
func (m *Manager) Run(ctx context.Context) error {
	m.mu.Lock()
	if len(m.queues) > 0 {
		m.mu.Unlock()
		return errors.New("reconciler: manager already running")
	}
	regs := make([]Registration, 0, len(m.order))
	for _, gk := range m.order {
		reg := m.regs[gk]
		regs = append(regs, reg)
		m.queues[gk] = workqueue.NewTypedRateLimitingQueueWithConfig(
			workqueue.NewTypedItemExponentialFailureRateLimiter[Key](m.opts.BaseDelay, m.opts.MaxDelay),
			workqueue.TypedRateLimitingQueueConfig[Key]{Clock: m.opts.Clock})
	}
	m.mu.Unlock()

	var wg sync.WaitGroup
	for _, reg := range regs {
		q := m.queues[reg.GroupKind]
		wg.Add(1)
		go func() { defer wg.Done(); m.feed(ctx, reg.GroupKind, func(e store.Event) { q.Add(keyOf(e)) }) }()
		for _, child := range reg.Owns {
			wg.Add(1)
			go func() {
				defer wg.Done()
				m.feed(ctx, child, func(e store.Event) {
					for _, ref := range e.Object.GetOwnerReferences() {
						if store.GroupKindOf(ref.APIVersion, ref.Kind) == reg.GroupKind {
							q.Add(Key{Namespace: e.Object.GetNamespace(), Name: ref.Name})
						}
					}
				})
			}()
		}
		for _, w := range reg.Watches {
			wg.Add(1)
			go func() {
				defer wg.Done()
				m.feed(ctx, w.GroupKind, func(e store.Event) {
					for _, k := range w.Map(e) {
						q.Add(k)
					}
				})
			}()
		}
		for range reg.Workers {
			wg.Add(1)
			go func() { defer wg.Done(); m.work(ctx, reg, q) }()
		}
	}
	m.mu.Lock()
	m.running = true
	m.mu.Unlock()
	<-ctx.Done()
	m.mu.Lock()
	m.running = false
	for _, q := range m.queues {
		q.ShutDown()
	}
	m.queues = map[string]workqueue.TypedRateLimitingInterface[Key]{}
	m.mu.Unlock()
	wg.Wait()
	return nil
}

func keyOf(e store.Event) Key {
	return Key{Namespace: e.Object.GetNamespace(), Name: e.Object.GetName()}
}

// feed watches kind gk from "now" (every existing object arrives first, which is the resync) and re-watches when a
// watch ends early (the store drops watchers that fall too far behind).
func (m *Manager) feed(ctx context.Context, gk string, add func(store.Event)) {
	for ctx.Err() == nil {
		ch, err := m.opts.Store.Watch(ctx, store.WatchOptions{GroupKind: gk})
		if err != nil {
			if errors.Is(err, store.ErrClosed) {
				return
			}
			m.log.Error("watch failed", "kind", gk, "err", err)
			select {
			case <-ctx.Done():
				return
			case <-m.opts.Clock.After(time.Second):
			}
			continue
		}
		for e := range ch {
			add(e)
		}
	}
}

func (m *Manager) work(ctx context.Context, reg Registration, q workqueue.TypedRateLimitingInterface[Key]) {
	for {
		key, shutdown := q.Get()
		if shutdown {
			return
		}
		err := m.reconcileOne(ctx, reg, key)
		switch {
		case err == nil:
			q.Forget(key)
		case ctx.Err() != nil:
			q.Forget(key)
		default:
			m.log.Info("reconcile failed, retrying", "kind", reg.GroupKind, "key", key.String(),
				"retries", q.NumRequeues(key), "err", err)
			if obj, gerr := m.opts.Store.Get(reg.GroupKind, key.Namespace, key.Name); gerr == nil {
				_ = Recorder{Store: m.opts.Store, Clock: m.opts.Clock}.Event(obj, "Warning", "InternalError", err.Error())
			}
			q.AddRateLimited(key)
		}
		q.Done(key)
	}
}

func (m *Manager) reconcileOne(ctx context.Context, reg Registration, key Key) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("reconciler panic: %v", r)
		}
	}()
	return reg.Reconciler.Reconcile(ctx, key)
}
