package server

import (
	"context"
	"fmt"
	"sync"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/tide-run/tide/controlplane/store"
	"github.com/tide-run/tide/dashboard"
)

// Group/kinds the dashboard's store-backed metrics read.
const (
	gkRevision       = "Revision.serving.knative.dev"
	gkTrigger        = "Trigger.eventing.knative.dev"
	gkRocketMQSource = "RocketMQSource.sources.knative.dev"
	// serviceLabel names a Revision's owning Knative Service.
	serviceLabel = "serving.knative.dev/service"
)

// dashWiring is the dashboard and what feeds it. mu guards metrics and logs.
type dashWiring struct {
	d       *dashboard.Dashboard
	mu      sync.Mutex
	metrics []dashboard.MetricsSource
	logs    dashboard.LogSource
}

// setupDashboard mounts the live dashboard at "/" on the API port (the API's own routes are registered more
// specifically, so they win) and adds it as a subsystem, so it samples while the platform runs and /readyz
// includes it. Its metrics come from the subsystems' published state:
//
//   - revisions: status.desiredReplicas / status.actualReplicas the serving runtime writes on each Revision;
//   - deliveries: status.deliveryStats the eventing runtime writes on each Trigger and RocketMQSource;
//   - extra sources registered with AddDashboardMetrics (live counters such as request totals and topic lag).
//
// Reading the store keeps the dashboard independent of how each runtime is built: it shows whatever the runtimes
// report through the API, which is also what `tide get` shows.
func (s *Server) setupDashboard() error {
	s.dash.metrics = []dashboard.MetricsSource{storeMetrics{st: s.st}}
	d, err := dashboard.New(dashboard.Options{
		APIURL:  s.APIURL,
		Metrics: dashboard.MetricsFunc(s.dashboardSnapshot),
		Logs:    dashboard.LogsFunc(s.dashboardLogs),
		Clock:   s.opts.Clock,
		Logger:  s.opts.Logger,
	})
	if err != nil {
		return fmt.Errorf("dashboard: %w", err)
	}
	s.dash.d = d
	s.api.Handle("/", d)
	s.AddSubsystem(d.Subsystem())
	return nil
}

// Dashboard is the live dashboard served at "/" on the API port.
func (s *Server) Dashboard() *dashboard.Dashboard { return s.dash.d }

// AddDashboardMetrics adds a metrics source the dashboard merges with the store-backed one (a subsystem's live
// counters). Safe to call at any time; a failing source is skipped (see dashboard.MergeMetrics).
func (s *Server) AddDashboardMetrics(src dashboard.MetricsSource) {
	s.dash.mu.Lock()
	s.dash.metrics = append(s.dash.metrics, src)
	s.dash.mu.Unlock()
}

// SetDashboardLogs sets where the dashboard's recent-logs panel reads a service's logs.
func (s *Server) SetDashboardLogs(src dashboard.LogSource) {
	s.dash.mu.Lock()
	s.dash.logs = src
	s.dash.mu.Unlock()
}

func (s *Server) dashboardSnapshot(ctx context.Context) (dashboard.Snapshot, error) {
	s.dash.mu.Lock()
	srcs := append([]dashboard.MetricsSource(nil), s.dash.metrics...)
	s.dash.mu.Unlock()
	snap, err := dashboard.MergeMetrics(srcs...).Snapshot(ctx)
	if err != nil {
		return snap, err
	}
	snap.Revisions = mergeRevisions(snap.Revisions)
	return snap, nil
}

func (s *Server) dashboardLogs(ctx context.Context, namespace, service string, limit int) ([]dashboard.LogLine, error) {
	s.dash.mu.Lock()
	src := s.dash.logs
	s.dash.mu.Unlock()
	if src == nil {
		return nil, nil // no runtime keeps logs in this build: an empty panel, not an error on every refresh
	}
	return src.Logs(ctx, namespace, service, limit)
}

// mergeRevisions folds several sources' reports of the same revision into one: the store knows the instance
// counts, a live source the request counters. Non-zero fields win; order is kept by first appearance.
func mergeRevisions(in []dashboard.RevisionStats) []dashboard.RevisionStats {
	type key struct{ ns, rev string }
	idx := map[key]int{}
	var out []dashboard.RevisionStats
	for _, r := range in {
		k := key{r.Namespace, r.Revision}
		i, ok := idx[k]
		if !ok {
			idx[k] = len(out)
			out = append(out, r)
			continue
		}
		m := &out[i]
		if m.Service == "" {
			m.Service = r.Service
		}
		m.DesiredInstances = max(m.DesiredInstances, r.DesiredInstances)
		m.ReadyInstances = max(m.ReadyInstances, r.ReadyInstances)
		m.Requests = max(m.Requests, r.Requests)
		m.Concurrency = max(m.Concurrency, r.Concurrency)
	}
	return out
}

// storeMetrics reads the runtimes' published status from the object store (a local bbolt read per kind, cheap
// enough for one sample a second).
type storeMetrics struct{ st *store.Store }

func (m storeMetrics) Snapshot(context.Context) (dashboard.Snapshot, error) {
	var snap dashboard.Snapshot
	revs, _, err := m.st.List(gkRevision, "")
	if err != nil {
		return snap, fmt.Errorf("list revisions: %w", err)
	}
	for _, r := range revs {
		desired, _, _ := unstructured.NestedInt64(r.Object, "status", "desiredReplicas")
		actual, _, _ := unstructured.NestedInt64(r.Object, "status", "actualReplicas")
		snap.Revisions = append(snap.Revisions, dashboard.RevisionStats{Namespace: r.GetNamespace(),
			Service: r.GetLabels()[serviceLabel], Revision: r.GetName(),
			DesiredInstances: int(desired), ReadyInstances: int(actual)})
	}
	for _, k := range []struct{ gk, kind string }{{gkTrigger, "Trigger"}, {gkRocketMQSource, "RocketMQSource"}} {
		objs, _, err := m.st.List(k.gk, "")
		if err != nil {
			return snap, fmt.Errorf("list %s: %w", k.gk, err)
		}
		for _, o := range objs {
			stats, ok, _ := unstructured.NestedMap(o.Object, "status", "deliveryStats")
			if !ok {
				continue
			}
			snap.Deliveries = append(snap.Deliveries, dashboard.DeliveryStats{Kind: k.kind,
				Namespace: o.GetNamespace(), Name: o.GetName(), Delivered: counter(stats["delivered"]),
				Retried: counter(stats["retried"]), DeadLettered: counter(stats["deadLettered"])})
		}
	}
	return snap, nil
}

// counter reads a JSON number of a status counter (int64 from the store's decoding, float64 from plain JSON).
func counter(v any) uint64 {
	switch n := v.(type) {
	case int64:
		return uint64(max(n, 0))
	case float64:
		return uint64(max(n, 0))
	case int:
		return uint64(max(n, 0))
	}
	return 0
}
