package server

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"sort"
	"strings"
	"sync"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/types"

	"github.com/tide-run/tide/controlplane/store"
	"github.com/tide-run/tide/dashboard"
	"github.com/tide-run/tide/mq/admin"
	"github.com/tide-run/tide/mq/mqmeta"
	"github.com/tide-run/tide/serving/runtime"
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
	logsSet bool // logs was set explicitly (SetDashboardLogs); otherwise the serving runtime's are used
	topics  *topicMetrics
}

// setupDashboard mounts the live dashboard at "/" on the API port (the API's own routes are registered more
// specifically, so they win) and adds it as a subsystem, so it samples while the platform runs and /readyz
// includes it. Its metrics come from the subsystems' published state:
//
//   - revisions: status.desiredReplicas / status.actualReplicas the serving runtime writes on each Revision;
//   - deliveries: status.deliveryStats the eventing runtime writes on each Trigger and RocketMQSource;
//   - revisions' live load: requests routed and in flight, from the serving gateway;
//   - logs: the serving runtime's instance logs (the same as `tide logs`);
//   - topics: messages produced and consumer-group lag, from the RocketMQ the platform lists as an endpoint;
//   - extra sources registered with AddDashboardMetrics (live counters such as request totals and topic lag).
//
// Reading the store keeps the dashboard independent of how each runtime is built: it shows whatever the runtimes
// report through the API, which is also what `tide get` shows.
func (s *Server) setupDashboard() error {
	s.dash.topics = &topicMetrics{s: s}
	s.dash.metrics = []dashboard.MetricsSource{storeMetrics{st: s.st}, servingMetrics{s}, s.dash.topics}
	d, err := dashboard.New(dashboard.Options{
		APIURL:    s.APIURL,
		APIToken:  s.access.Token,
		APIClient: s.selfClient(),
		Metrics:   dashboard.MetricsFunc(s.dashboardSnapshot),
		Logs:      dashboard.LogsFunc(s.dashboardLogs),
		Clock:     s.opts.Clock,
		Logger:    s.opts.Logger,
	})
	if err != nil {
		return fmt.Errorf("dashboard: %w", err)
	}
	s.dash.d = d
	s.api.Handle("/", d)
	s.AddSubsystem(dashSubsystem{Subsystem: d.Subsystem(), topics: s.dash.topics})
	return nil
}

// dashSubsystem also closes the topic metrics' RocketMQ admin connection on Shutdown.
type dashSubsystem struct {
	dashboard.Subsystem
	topics *topicMetrics
}

func (d dashSubsystem) Shutdown(ctx context.Context) error {
	err := d.Subsystem.Shutdown(ctx)
	d.topics.close()
	return err
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
	s.dash.logs, s.dash.logsSet = src, true
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
	if !s.dash.logsSet && s.dash.logs == nil && s.serving != nil {
		s.dash.logs = newServingLogs(s)
	}
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

// servingMetrics adds the gateway's live counters per revision: requests routed (cumulative) and requests in
// flight or queued. Instance counts come from the store (status written by the same runtime).
type servingMetrics struct{ s *Server }

func (m servingMetrics) Snapshot(context.Context) (dashboard.Snapshot, error) {
	var snap dashboard.Snapshot
	if m.s.serving == nil {
		return snap, nil
	}
	gw := m.s.serving.rt.Gateway()
	revs, _, err := m.s.st.List(gkRevision, "")
	if err != nil {
		return snap, fmt.Errorf("list revisions: %w", err)
	}
	for _, r := range revs {
		st, ok := gw.Stats(types.NamespacedName{Namespace: r.GetNamespace(), Name: r.GetName()})
		if !ok {
			continue
		}
		snap.Revisions = append(snap.Revisions, dashboard.RevisionStats{Namespace: r.GetNamespace(),
			Service: r.GetLabels()[serviceLabel], Revision: r.GetName(), Requests: st.Requests,
			Concurrency: float64(st.InFlight + st.Queued)})
	}
	return snap, nil
}

// servingLogs reads a service's recent instance logs through the serving runtime's log endpoint, served
// in-process (no HTTP hop): the same lines `tide logs` shows.
type servingLogs struct {
	s   *Server
	mux *http.ServeMux
}

func newServingLogs(s *Server) *servingLogs {
	mux := http.NewServeMux()
	mux.Handle(runtime.ServiceLogPattern, s.serving.rt.LogsHandler())
	return &servingLogs{s: s, mux: mux}
}

func (l *servingLogs) Logs(ctx context.Context, namespace, service string, limit int) ([]dashboard.LogLine, error) {
	u := fmt.Sprintf("/apis/serving.knative.dev/v1/namespaces/%s/services/%s/log?tailLines=%d",
		url.PathEscape(namespace), url.PathEscape(service), limit)
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return nil, err
	}
	rec := &memResponse{header: http.Header{}}
	l.mux.ServeHTTP(rec, req)
	if rec.code == http.StatusNotFound {
		return nil, nil // the service is gone or not created yet: nothing to show
	}
	if rec.code != 0 && rec.code != http.StatusOK {
		return nil, fmt.Errorf("logs of %s/%s: %d %s", namespace, service, rec.code, strings.TrimSpace(rec.body.String()))
	}
	var out []dashboard.LogLine
	dec := json.NewDecoder(&rec.body)
	for {
		var e runtime.LogEntry
		if err := dec.Decode(&e); err == io.EOF {
			break
		} else if err != nil {
			return out, fmt.Errorf("logs of %s/%s: %w", namespace, service, err)
		}
		out = append(out, dashboard.LogLine{Time: e.Time, Revision: e.Revision, Instance: e.Instance,
			Stream: string(e.Stream), Text: e.Text})
	}
	return out, nil
}

// memResponse is a minimal in-memory http.ResponseWriter.
type memResponse struct {
	header http.Header
	code   int
	body   bytes.Buffer
}

func (w *memResponse) Header() http.Header { return w.header }
func (w *memResponse) WriteHeader(code int) {
	if w.code == 0 {
		w.code = code
	}
}
func (w *memResponse) Write(b []byte) (int, error) {
	if w.code == 0 {
		w.code = http.StatusOK
	}
	return w.body.Write(b)
}

// topicMetrics reads produce counts and consumer-group lag from the external cluster eventing runs on
// (Options.RocketMQNameServers) or else the RocketMQ name server the platform lists among its endpoints
// ("rocketmq name server"), through the broker's admin protocol (mq/admin). Without one (no
// RocketMQ in this build) it reports nothing. mu guards c, the cached admin connection (redialed after an error).
type topicMetrics struct {
	s  *Server
	mu sync.Mutex
	c  *admin.Client
}

func (m *topicMetrics) nameServer() string {
	if ns := m.s.opts.RocketMQNameServers; len(ns) > 0 {
		return ns[0] // eventing runs on an external cluster: chart that one
	}
	for _, e := range m.s.Endpoints() {
		if e.Name == "rocketmq name server" {
			return e.URL
		}
	}
	return ""
}

func (m *topicMetrics) Snapshot(ctx context.Context) (dashboard.Snapshot, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	var snap dashboard.Snapshot
	if m.c == nil {
		ns := m.nameServer()
		if ns == "" {
			return snap, nil
		}
		c, err := admin.Dial(admin.WithCredentials(ctx, m.s.mqCreds), ns)
		if err != nil {
			return snap, fmt.Errorf("rocketmq admin: %w", err)
		}
		m.c = c
	}
	snap, err := m.read(ctx)
	if err != nil {
		_ = m.c.Close()
		m.c = nil
		return snap, fmt.Errorf("rocketmq admin: %w", err)
	}
	return snap, nil
}

func (m *topicMetrics) read(ctx context.Context) (dashboard.Snapshot, error) {
	var snap dashboard.Snapshot
	topics, err := m.c.Topics(ctx)
	if err != nil {
		return snap, err
	}
	groups, err := m.c.Groups(ctx)
	if err != nil {
		return snap, err
	}
	lag := map[string]map[string]int64{} // topic -> group -> lag
	for g := range groups {
		stats, err := m.c.ConsumeStats(ctx, g, "")
		if err != nil {
			continue // a group without offsets yet
		}
		for _, q := range stats {
			if mqmeta.IsSystemTopic(q.Topic) {
				continue
			}
			if lag[q.Topic] == nil {
				lag[q.Topic] = map[string]int64{}
			}
			lag[q.Topic][g] += q.Lag
		}
	}
	for name, t := range topics {
		if mqmeta.IsSystemTopic(name) || m.c.IsClusterTopic(name) {
			continue
		}
		ts := dashboard.TopicStats{Topic: name}
		for q := 0; q < t.WriteQueueNums; q++ {
			off, err := m.c.MaxOffset(ctx, name, int32(q))
			if err != nil {
				return snap, err
			}
			ts.Produced += uint64(max(off, 0))
		}
		for g, l := range lag[name] {
			ts.Groups = append(ts.Groups, dashboard.GroupStats{Group: g, Lag: l})
		}
		sort.Slice(ts.Groups, func(i, j int) bool { return ts.Groups[i].Group < ts.Groups[j].Group })
		snap.Topics = append(snap.Topics, ts)
	}
	sort.Slice(snap.Topics, func(i, j int) bool { return snap.Topics[i].Topic < snap.Topics[j].Topic })
	return snap, nil
}

// close drops the admin connection (Shutdown).
func (m *topicMetrics) close() {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.c != nil {
		_ = m.c.Close()
		m.c = nil
	}
}
