package rocketmqsource

import (
	"context"
	"errors"
	"log/slog"
	"net/url"
	"reflect"
	"sync"

	"knative.dev/pkg/apis"

	"github.com/tide-run/tide/apis/sources/v1alpha1"
	"github.com/tide-run/tide/eventing/delivery"
)

// Manager runs one Adapter per RocketMQSource for `tide up`: the reconciler calls Apply with each source's
// resolved Config and Remove when a source goes away. A changed Config replaces the adapter (stop, then start with
// the same consumer group, which resumes from the committed offsets); an unchanged one is left running. All
// adapters share one delivery.Sender, so one connection pool.
type Manager struct {
	sender *delivery.Sender
	log    *slog.Logger

	mu       sync.Mutex // guards adapters and their configs
	adapters map[string]*managed
}

type managed struct {
	cfg     Config
	adapter *Adapter
}

// NewManager returns a Manager. sender may be nil (a new one is made); logger nil means slog.Default().
func NewManager(sender *delivery.Sender, logger *slog.Logger) *Manager {
	if logger == nil {
		logger = slog.Default()
	}
	if sender == nil {
		sender = delivery.New(delivery.Options{Logger: logger})
	}
	return &Manager{sender: sender, log: logger, adapters: map[string]*managed{}}
}

// comparable strips what does not change behaviour (shared plumbing) so configs can be compared.
func comparable(c Config) Config {
	c.Sender, c.Logger, c.HTTPClient = nil, nil, nil
	return c
}

// Apply makes the adapter for key (namespace/name) run with cfg. It returns the adapter's status; on a start
// failure the status carries the reason (v1alpha1.Reason*) and the error wraps the matching sentinel, and the next
// Apply tries again.
func (m *Manager) Apply(ctx context.Context, key string, cfg Config) (Status, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if cur, ok := m.adapters[key]; ok {
		if reflect.DeepEqual(comparable(cur.cfg), comparable(cfg)) && cur.adapter.Status().Deployed {
			return cur.adapter.Status(), nil
		}
		if err := cur.adapter.Stop(ctx); err != nil {
			m.log.Warn("stopping replaced adapter", "source", key, "err", err)
		}
		delete(m.adapters, key)
	}
	if cfg.Sender == nil {
		cfg.Sender = m.sender
	}
	if cfg.Logger == nil {
		cfg.Logger = m.log
	}
	a, err := New(cfg)
	if err != nil {
		return Status{Reason: "InvalidConfig", Message: err.Error()}, err
	}
	if err := a.Start(ctx); err != nil {
		st := a.Status()
		_ = a.Stop(ctx)
		return st, err
	}
	m.adapters[key] = &managed{cfg: cfg, adapter: a}
	return a.Status(), nil
}

// Remove stops and forgets the adapter for key, if any.
func (m *Manager) Remove(ctx context.Context, key string) error {
	m.mu.Lock()
	cur, ok := m.adapters[key]
	delete(m.adapters, key)
	m.mu.Unlock()
	if !ok {
		return nil
	}
	return cur.adapter.Stop(ctx)
}

// Counters returns the counters of key's adapter (zero when none runs).
func (m *Manager) Counters(key string) Counters {
	m.mu.Lock()
	defer m.mu.Unlock()
	if cur, ok := m.adapters[key]; ok {
		return cur.adapter.Counters()
	}
	return Counters{}
}

// Shutdown stops every adapter, sharing ctx's deadline.
func (m *Manager) Shutdown(ctx context.Context) error {
	m.mu.Lock()
	all := m.adapters
	m.adapters = map[string]*managed{}
	m.mu.Unlock()
	var wg sync.WaitGroup
	errs := make(chan error, len(all))
	for _, cur := range all {
		wg.Add(1)
		go func(a *Adapter) {
			defer wg.Done()
			errs <- a.Stop(ctx)
		}(cur.adapter)
	}
	wg.Wait()
	close(errs)
	var out []error
	for err := range errs {
		if err != nil {
			out = append(out, err)
		}
	}
	return errors.Join(out...)
}

// Reconcile is the data-plane half of a RocketMQSource reconciler: given a defaulted, valid source and what the
// control plane resolved (the sink URL or the error resolving it, the dead-letter sink URL, the credentials), it
// applies the adapter and writes src.Status: SinkProvided, Deployed (with the adapter's reason), sinkUri,
// consumerGroup, ceAttributes and observedGeneration. When the sink cannot be resolved the adapter is stopped (no
// consumption without somewhere to deliver). The returned error asks the caller to retry later.
func (m *Manager) Reconcile(ctx context.Context, src *v1alpha1.RocketMQSource, sink *url.URL, sinkErr error, deadLetter *url.URL, creds Credentials) error {
	key := src.Namespace + "/" + src.Name
	st := &src.Status
	st.Observe(src)
	if sinkErr != nil || sink == nil {
		msg := "the sink did not resolve to a URL"
		if sinkErr != nil {
			msg = sinkErr.Error()
		}
		st.MarkNoSink(v1alpha1.ReasonSinkNotFound, msg)
		st.MarkNotDeployed(v1alpha1.ReasonSinkNotFound, "not consuming without a sink")
		if err := m.Remove(ctx, key); err != nil {
			m.log.Warn("stopping adapter of a source without sink", "source", key, "err", err)
		}
		if sinkErr == nil {
			sinkErr = errors.New(msg)
		}
		return sinkErr
	}
	u := apis.URL(*sink)
	st.MarkSink(&u)
	cfg, err := ConfigFromSource(src, sink, deadLetter, creds)
	if err != nil {
		st.MarkNotDeployed(v1alpha1.ReasonConsumerFailed, err.Error())
		return err
	}
	as, err := m.Apply(ctx, key, cfg)
	if err != nil {
		reason := as.Reason
		if reason == "" {
			reason = v1alpha1.ReasonConsumerFailed
		}
		st.MarkNotDeployed(reason, as.Message)
		return err
	}
	st.MarkDeployed()
	return nil
}
