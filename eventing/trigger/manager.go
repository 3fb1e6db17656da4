package trigger

import (
	"context"
	"errors"
	"fmt"
	"go.opentelemetry.io/otel/trace"
	"log/slog"
	"sort"
	"sync"
	"time"

	"k8s.io/utils/clock"

	"github.com/tide-run/tide/eventing/bus"
	"github.com/tide-run/tide/eventing/filter"
)

// Options configure NewManager.
type Options struct {
	Bus       bus.Bus   // required
	Sender    Sender    // required: *delivery.Sender
	Publisher Publisher // required: *ingress.Ingress (replies)
	// Logger; default slog.Default(). A component attribute is added.
	Logger *slog.Logger
	// MaxReconsumeTimes bounds RocketMQ redeliveries of a failed event before
	// it moves to %DLQ%<group>. 0 means RocketMQ's default (16).
	// OrderedRetryPause: see bus.SubscribeOptions. Default 1s.
	OrderedRetryPause time.Duration
	MaxReconsumeTimes int32
	// Clock dates a new Trigger's starting point; default the real clock.
	Clock clock.PassiveClock
	// GroupDeleteTimeout bounds deleting a consumer group on the broker (Delete, a
	// Trigger's UID change, a Tail ending). Default DefaultGroupDeleteTimeout.
	GroupDeleteTimeout time.Duration
	// Metrics, if set, records every dispatch in Knative's broker-filter metrics (metrics.go).
	Metrics *DispatchMetrics
	// TracerProvider records a consumer span per event (tracing.go). Nil: none.
	TracerProvider trace.TracerProvider
}

// DefaultGroupDeleteTimeout is Options.GroupDeleteTimeout's default.
const DefaultGroupDeleteTimeout = 10 * time.Second

// Manager runs the Triggers of this process. Safe for concurrent use.
type Manager struct {
	opts Options
	log  *slog.Logger

	// opMu serializes Upsert, Remove and Close, which start and stop
	// consumers (slow); mu guards triggers and closed and is held only
	// briefly, so Stats never waits behind a consumer start.
	opMu     sync.Mutex
	mu       sync.RWMutex
	triggers map[string]*running
	// groups remembers each Trigger's last consumer group, running or stopped
	// (Remove keeps the group), so Delete can remove it from the broker.
	groups map[string]string
	closed bool
}

type running struct {
	d      *dispatcher
	stats  *counters
	sub    bus.Subscription
	cancel context.CancelFunc
	// consumer-level settings: changing any of them restarts the consumer.
	topic       string
	ordered     bool
	concurrency int
	group       string
}

// NewManager validates options.
func NewManager(opts Options) (*Manager, error) {
	switch {
	case opts.Bus == nil:
		return nil, fmt.Errorf("%w: Bus: required", ErrInvalidConfig)
	case opts.Sender == nil:
		return nil, fmt.Errorf("%w: Sender: required", ErrInvalidConfig)
	case opts.Publisher == nil:
		return nil, fmt.Errorf("%w: Publisher: required", ErrInvalidConfig)
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	if opts.Clock == nil {
		opts.Clock = clock.RealClock{}
	}
	if opts.GroupDeleteTimeout <= 0 {
		opts.GroupDeleteTimeout = DefaultGroupDeleteTimeout
	}
	return &Manager{opts: opts, log: opts.Logger.With("component", "trigger"), triggers: map[string]*running{},
		groups: map[string]string{}}, nil
}

// Upsert starts a Trigger or updates a running one. Filter, subscriber and
// delivery changes apply to the next event without restarting the consumer;
// a change of topic, order or concurrency restarts it (the consumer group and
// its offsets stay). It returns once the consumer has started; a bad config
// changes nothing and the error names the field.
func (m *Manager) Upsert(ctx context.Context, cfg Config) error {
	if err := cfg.validate(); err != nil {
		return err
	}
	f, err := filter.Compile(cfg.Filter, cfg.Filters)
	if err != nil {
		return fmt.Errorf("%w: %w", ErrInvalidConfig, err)
	}
	if cfg.Concurrency <= 0 {
		cfg.Concurrency = DefaultConcurrency
	}
	rc := &runtimeConfig{cfg: cfg, filter: f}

	m.opMu.Lock()
	defer m.opMu.Unlock()
	m.mu.RLock()
	closed := m.closed
	r, ok := m.triggers[cfg.key()]
	m.mu.RUnlock()
	if closed {
		return ErrClosed
	}
	key := cfg.key()
	stats := &counters{}
	m.mu.RLock()
	oldGroup := m.groups[key]
	m.mu.RUnlock()
	if ok {
		if r.topic == cfg.Topic && r.ordered == cfg.Ordered && r.concurrency == cfg.Concurrency && r.group == GroupOf(cfg) {
			r.d.rc.Store(rc)
			return nil
		}
		stats = r.stats // counters survive a consumer restart
		m.stop(key, r)
	}
	dctx, cancel := context.WithCancel(context.Background())
	d := &dispatcher{
		sender: m.opts.Metrics.instrument(m.opts.Sender, cfg), publisher: m.opts.Publisher, stats: stats, ctx: dctx,
		log: m.log.With("trigger", key), tracer: newTracer(m.opts.TracerProvider), group: GroupOf(cfg),
	}
	d.rc.Store(rc)
	sub, err := m.opts.Bus.Subscribe(ctx, bus.SubscribeOptions{
		Topic:             cfg.Topic,
		Group:             GroupOf(cfg),
		Ordered:           cfg.Ordered,
		Concurrency:       cfg.Concurrency,
		MaxReconsumeTimes: m.opts.MaxReconsumeTimes,
		OrderedRetryPause: m.opts.OrderedRetryPause,
		// A new group starts with the events stored since just before the
		// Trigger was created (a second of slack for RocketMQ's one-second
		// timestamp precision); an existing group resumes from its offsets.
		From:  bus.FromTime,
		Since: m.opts.Clock.Now().Add(-time.Second),
	}, d.handle)
	if err != nil {
		cancel()
		return fmt.Errorf("trigger %s: %w", key, err)
	}
	m.mu.Lock()
	m.triggers[key] = &running{d: d, stats: stats, sub: sub, cancel: cancel,
		topic: cfg.Topic, ordered: cfg.Ordered, concurrency: cfg.Concurrency, group: GroupOf(cfg)}
	m.groups[key] = GroupOf(cfg)
	m.mu.Unlock()
	m.log.Info("trigger running", "trigger", key, "topic", cfg.Topic, "ordered", cfg.Ordered, "subscriber", cfg.Subscriber.Redacted())
	if oldGroup != "" && oldGroup != GroupOf(cfg) {
		// Same name, new UID: the Trigger was deleted and created again without
		// this process seeing the deletion. The old group is nobody's now.
		m.deleteGroup(key, oldGroup)
	}
	return nil
}

// stop closes the consumer, then cancels in-flight deliveries. m.opMu is held.
//
// The order matters: closing first marks the consumer's queues dropped and
// persists offsets below every unacknowledged message, so the Retry verdicts
// of the cancelled deliveries are ignored by the client and those messages
// come back from the main queue (not via a delayed %RETRY% hop) next time.
func (m *Manager) stop(key string, r *running) {
	if err := r.sub.Close(); err != nil {
		m.log.Warn("closing trigger consumer", "trigger", key, "err", err)
	}
	r.cancel()
	m.mu.Lock()
	delete(m.triggers, key)
	m.mu.Unlock()
}

// Remove stops a Trigger. Its consumer group's offsets stay in RocketMQ, so
// starting it again resumes where it stopped; use Delete for a deleted Trigger.
func (m *Manager) Remove(namespace, name string) error {
	m.opMu.Lock()
	defer m.opMu.Unlock()
	key := namespace + "/" + name
	m.mu.RLock()
	r, ok := m.triggers[key]
	m.mu.RUnlock()
	if !ok {
		return fmt.Errorf("%w: %s", ErrNotFound, key)
	}
	m.stop(key, r)
	return nil
}

// Delete stops a Trigger that was deleted and removes its consumer group from
// the broker (config, offsets, %RETRY% topic; see bus.Bus.DeleteGroup), so
// deleted Triggers do not leave groups behind. It also works for a Trigger
// that is known but stopped (Remove). A failure to delete the group is logged
// (one line) and does not fail Delete: the Trigger is gone either way.
// ErrNotFound: the Manager never ran the Trigger.
func (m *Manager) Delete(namespace, name string) error {
	key := namespace + "/" + name
	m.opMu.Lock()
	m.mu.RLock()
	r, running := m.triggers[key]
	group := m.groups[key]
	m.mu.RUnlock()
	if running {
		// The consumer must be closed before its group is deleted: closing
		// persists offsets, and a live consumer's heartbeat would re-create it.
		m.stop(key, r)
	}
	m.mu.Lock()
	delete(m.groups, key)
	m.mu.Unlock()
	m.opMu.Unlock()
	m.opts.Metrics.forget(namespace, name)
	if group == "" {
		if running {
			return nil
		}
		return fmt.Errorf("%w: %s", ErrNotFound, key)
	}
	m.deleteGroup(key, group)
	return nil
}

// deleteGroup removes a consumer group from the broker, logging a failure.
func (m *Manager) deleteGroup(key, group string) {
	ctx, cancel := context.WithTimeout(context.Background(), m.opts.GroupDeleteTimeout)
	defer cancel()
	err := m.opts.Bus.DeleteGroup(ctx, group)
	switch {
	case err == nil:
		m.log.Info("trigger consumer group deleted", "trigger", key, "group", group)
	case errors.Is(err, bus.ErrUnsupported):
		m.log.Debug("trigger consumer group left on the broker: the bus cannot delete groups", "trigger", key, "group", group)
	default:
		m.log.Warn("deleting the trigger's consumer group failed; it stays on the broker", "trigger", key, "group", group, "err", err)
	}
}

// Stats returns a Trigger's counters.
func (m *Manager) Stats(namespace, name string) (Stats, bool) {
	m.mu.RLock()
	r, ok := m.triggers[namespace+"/"+name]
	m.mu.RUnlock()
	if !ok {
		return Stats{}, false
	}
	return r.stats.snapshot(), true
}

// Names lists running Triggers as namespace/name, sorted.
func (m *Manager) Names() []string {
	m.mu.RLock()
	defer m.mu.RUnlock()
	out := make([]string, 0, len(m.triggers))
	for k := range m.triggers {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// Close stops every Trigger.
func (m *Manager) Close() error {
	m.opMu.Lock()
	defer m.opMu.Unlock()
	m.mu.Lock()
	m.closed = true
	all := make(map[string]*running, len(m.triggers))
	for k, r := range m.triggers {
		all[k] = r
	}
	m.mu.Unlock()
	for k, r := range all {
		m.stop(k, r)
	}
	return nil
}
