package runtime

import (
	"context"
	"encoding/json"
	"net/http"
	"sync"

	"github.com/cloudevents/sdk-go/v2/event"
	"knative.dev/pkg/apis"

	"github.com/tide-run/tide/apis/sources/v1alpha1"
	"github.com/tide-run/tide/controlplane/reconciler"
	"github.com/tide-run/tide/controlplane/registry"
	"github.com/tide-run/tide/eventing/trigger"
)

// Register adds the Broker, Trigger, RocketMQSource and KafkaSource reconcilers to m (replacing the NotImplemented defaults).
// Triggers and sources re-resolve when a Broker or Service in their namespace changes (their subscriber's or sink's
// URL may have), and sources when a Secret changes.
func (r *Runtime) Register(m *reconciler.Manager) {
	r.recons = m
	m.Register(reconciler.Registration{GroupKind: GKBroker, Reconciler: reconciler.Func(r.reconcileBroker), Workers: 2})
	m.Register(reconciler.Registration{GroupKind: GKTrigger, Reconciler: reconciler.Func(r.reconcileTrigger), Workers: 2,
		Watches: []reconciler.Watch{
			{GroupKind: GKBroker, Map: reconciler.AllInNamespace(r.st, GKTrigger)},
			{GroupKind: GKService, Map: reconciler.AllInNamespace(r.st, GKTrigger)},
		}})
	m.Register(reconciler.Registration{GroupKind: GKSource, Reconciler: reconciler.Func(r.reconcileSource), Workers: 2,
		Watches: []reconciler.Watch{
			{GroupKind: GKBroker, Map: reconciler.AllInNamespace(r.st, GKSource)},
			{GroupKind: GKService, Map: reconciler.AllInNamespace(r.st, GKSource)},
			{GroupKind: GKSecret, Map: reconciler.AllInNamespace(r.st, GKSource)},
		}})
	m.Register(reconciler.Registration{GroupKind: GKKafkaSource, Reconciler: reconciler.Func(r.reconcileKafkaSource), Workers: 2,
		Watches: []reconciler.Watch{
			{GroupKind: GKBroker, Map: reconciler.AllInNamespace(r.st, GKKafkaSource)},
			{GroupKind: GKService, Map: reconciler.AllInNamespace(r.st, GKKafkaSource)},
			{GroupKind: GKSecret, Map: reconciler.AllInNamespace(r.st, GKKafkaSource)},
		}})
}

// RegisterKinds registers the RocketMQSource and KafkaSource (kafkasource.go) Go types over the generic entries.
// RocketMQSource: sources.knative.dev/v1alpha1
// decoded strictly, defaulted and validated in the Knative style, and the 2020 group
// sources.eventing.knative.dev/v1alpha1, converted on input and stored as the current form (so `tide get` shows the
// converted object). spec.nameServers left empty means "the platform's name servers" (resolved when the adapter
// starts, so a restart on other ports keeps working); validation checks the spec as if they were filled in.
func RegisterKinds(reg *registry.Registry, nameServers func() []string) error {
	validate := func(ctx context.Context, obj any) *apis.FieldError {
		var s *v1alpha1.RocketMQSource
		switch v := obj.(type) {
		case *v1alpha1.RocketMQSource:
			s = v
		case *legacySource:
			s = v.RocketMQSource
		}
		if s == nil {
			return apis.ErrGeneric("not a RocketMQSource")
		}
		c := s.DeepCopy()
		if len(c.Spec.NameServers) == 0 {
			c.Spec.NameServers = nameServers()
		}
		return c.Validate(ctx)
	}
	def := func(ctx context.Context, obj any) {
		switch v := obj.(type) {
		case *v1alpha1.RocketMQSource:
			v.SetDefaults(ctx)
		case *legacySource:
			if v.RocketMQSource != nil {
				v.SetDefaults(ctx)
			}
		}
	}
	cols := []string{"SINK", "READY", "REASON"}
	if err := reg.Register(registry.Kind{Group: v1alpha1.GroupName, Version: v1alpha1.Version, Kind: v1alpha1.Kind,
		Plural: v1alpha1.Resource, Singular: "rocketmqsource", Namespaced: true, ActedOn: true, Columns: cols,
		Categories: registry.SourceCategories, PrinterColumns: registry.SourceColumns,
		New: func() any { return &v1alpha1.RocketMQSource{} }, Default: def, Validate: validate}); err != nil {
		return err
	}
	if err := registerKafkaSourceKind(reg); err != nil {
		return err
	}
	return reg.Register(registry.Kind{Group: v1alpha1.LegacyGroupName, Version: v1alpha1.Version, Kind: v1alpha1.Kind,
		Plural: v1alpha1.Resource, Singular: "rocketmqsource", Namespaced: true, ActedOn: true, Columns: cols,
		PrinterColumns: registry.SourceColumns, // no categories: `get all` lists the objects once, in the current group
		New:            func() any { return &legacySource{} }, Default: def, Validate: validate, StoredAs: GKSource})
}

// legacySource decodes either form (v1alpha1.Decode: strict, the 2020 form converted) and encodes the current
// form, which is what the store keeps for documents sent in the 2020 group.
type legacySource struct {
	*v1alpha1.RocketMQSource
}

func (l *legacySource) UnmarshalJSON(b []byte) error {
	s, err := v1alpha1.Decode(b)
	if err != nil {
		return err
	}
	l.RocketMQSource = s
	return nil
}

func (l *legacySource) MarshalJSON() ([]byte, error) { return json.Marshal(l.RocketMQSource) }

// resyncStats enqueues Triggers and sources whose counters changed since their status was last written, every
// StatsInterval, until Shutdown.
func (r *Runtime) resyncStats() {
	defer close(r.done)
	t := r.opts.Clock.NewTicker(r.opts.StatsInterval)
	defer t.Stop()
	for tick := 1; ; tick++ {
		select {
		case <-r.stop:
			return
		case <-t.C():
		}
		if r.recons == nil {
			continue
		}
		if tick%notReadyResyncTicks == 0 {
			// Watches re-resolve on Broker, Service and Secret changes; a Destination may point at any other
			// addressable kind, so not-Ready Triggers and sources are also retried now and then.
			for _, gk := range []string{GKTrigger, GKSource, GKKafkaSource} {
				objs, _, err := r.st.List(gk, "")
				if err != nil {
					continue
				}
				for _, o := range objs {
					if !readyTrue(o.Object) {
						r.recons.Enqueue(gk, reconciler.Key{Namespace: o.GetNamespace(), Name: o.GetName()})
					}
				}
			}
		}
		for _, name := range r.mgr.Names() {
			k := keyOf(name)
			if s, ok := r.mgr.Stats(k.Namespace, k.Name); ok {
				s.InFlight = 0
				if r.statsChanged("trigger", k, s) {
					r.recons.Enqueue(GKTrigger, k)
				}
			}
		}
		r.mu.Lock()
		srcs := make(map[string]*runningSource, len(r.sources))
		for k, v := range r.sources {
			srcs[k] = v
		}
		r.mu.Unlock()
		for name, rs := range srcs {
			c := rs.adapter.Counters()
			k := keyOf(name)
			if r.statsChanged("source", k, SourceStats{Delivered: c.Delivered, Retried: c.Retried, DeadLettered: c.DeadLettered}) {
				r.recons.Enqueue(GKSource, k)
			}
		}
		r.mu.Lock()
		kafka := make(map[string]*runningKafkaSource, len(r.kafkaSources))
		for k, v := range r.kafkaSources {
			kafka[k] = v
		}
		r.mu.Unlock()
		for name, rs := range kafka {
			c := rs.adapter.Counters()
			k := keyOf(name)
			if r.statsChanged("kafkasource", k, SourceStats{Delivered: c.Delivered, Retried: c.Retried, DeadLettered: c.DeadLettered}) {
				r.recons.Enqueue(GKKafkaSource, k)
			}
		}
	}
}

// notReadyResyncTicks: not-Ready Triggers and sources are retried every this many StatsIntervals.
const notReadyResyncTicks = 10

func readyTrue(obj map[string]any) bool {
	st, _ := obj["status"].(map[string]any)
	conds, _ := st["conditions"].([]any)
	for _, c := range conds {
		if m, ok := c.(map[string]any); ok && m["type"] == "Ready" {
			return m["status"] == "True"
		}
	}
	return false
}

func keyOf(nsName string) reconciler.Key {
	for i := 0; i < len(nsName); i++ {
		if nsName[i] == '/' {
			return reconciler.Key{Namespace: nsName[:i], Name: nsName[i+1:]}
		}
	}
	return reconciler.Key{Name: nsName}
}

// TailPath is the API pattern of the events stream `tide events tail` reads: newline-delimited JSON CloudEvents
// (structured format) entering the Broker, from the moment of the request.
const TailPath = "GET /tide/v1/namespaces/{namespace}/brokers/{name}/events"

// TailHandler serves TailPath.
func (r *Runtime) TailHandler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		ns, name := req.PathValue("namespace"), req.PathValue("name")
		topic, ok := r.brokerTopic(ns, name)
		r.mu.Lock()
		b := r.bus
		r.mu.Unlock()
		if !ok || b == nil {
			http.Error(w, "broker "+ns+"/"+name+" not found or not ready", http.StatusNotFound)
			return
		}
		ctx, cancel := context.WithCancel(req.Context())
		defer cancel()
		events := make(chan []byte, 256)
		var mu sync.Mutex
		closed := false
		sub, err := trigger.Tail(ctx, b, trigger.TailOptions{Topic: topic, Now: r.opts.Clock.Now, Logger: r.opts.Logger}, func(e *event.Event) {
			js, err := json.Marshal(e)
			if err != nil {
				return
			}
			mu.Lock()
			defer mu.Unlock()
			if closed {
				return
			}
			select {
			case events <- js:
			default: // a slow reader loses lines rather than holding up the tail consumer
			}
		})
		if err != nil {
			http.Error(w, err.Error(), http.StatusServiceUnavailable)
			return
		}
		defer func() {
			_ = sub.Close()
			mu.Lock()
			closed = true
			mu.Unlock()
		}()
		w.Header().Set("Content-Type", "application/x-ndjson")
		w.WriteHeader(http.StatusOK)
		fl, _ := w.(http.Flusher)
		if fl != nil {
			fl.Flush()
		}
		r.mu.Lock()
		stop := r.stop
		r.mu.Unlock()
		for {
			select {
			case <-ctx.Done():
				return
			case <-stop:
				return
			case js := <-events:
				if _, err := w.Write(append(js, '\n')); err != nil {
					return
				}
				if fl != nil {
					fl.Flush()
				}
			}
		}
	})
}
