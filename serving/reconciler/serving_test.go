package reconciler

import (
	"context"
	"encoding/json"
	"path/filepath"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	clocktesting "k8s.io/utils/clock/testing"
	"knative.dev/pkg/apis"
	servingv1 "knative.dev/serving/pkg/apis/serving/v1"
	"sigs.k8s.io/yaml"

	"github.com/tide-run/tide/controlplane/reconciler"
	"github.com/tide-run/tide/controlplane/registry"
	"github.com/tide-run/tide/controlplane/store"
)

var t0 = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

type fixture struct {
	t     *testing.T
	st    *store.Store
	clock *clocktesting.FakeClock
	reg   *registry.Registry
	svc   *ServiceReconciler
	cfg   *ConfigurationReconciler
	route *RouteReconciler
	rev   reconciler.NotImplemented
	ready bool // what IngressReady answers
}

func newFixture(t *testing.T) *fixture {
	f := &fixture{t: t, clock: clocktesting.NewFakeClock(t0), reg: registry.NewDefault()}
	st, err := store.Open(store.Options{Path: filepath.Join(t.TempDir(), "db"), Clock: f.clock})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = st.Close() })
	f.st = st
	opts := Options{Store: st, Clock: f.clock, IngressReady: func(*servingv1.Route) (bool, string, string) {
		if f.ready {
			return true, "", ""
		}
		return false, reconciler.ReasonNotImplemented, "no gateway"
	}}
	opts.fill()
	sw := reconciler.StatusWriter{Store: st, Clock: f.clock}
	f.svc = &ServiceReconciler{Store: st, Status: sw}
	f.cfg = &ConfigurationReconciler{Store: st, Status: sw}
	f.route = &RouteReconciler{Store: st, Status: sw, URL: opts.URL, IngressReady: opts.IngressReady}
	f.rev = reconciler.NotImplemented{Store: st, Status: sw, GroupKind: RevisionGK, Message: "no runtime"}
	return f
}

// apply stores a YAML document the way the API does (registry defaults and validation, then create or update).
func (f *fixture) apply(doc string) {
	f.t.Helper()
	js, err := yaml.YAMLToJSON([]byte(doc))
	if err != nil {
		f.t.Fatal(err)
	}
	p, err := f.reg.Prepare(context.Background(), js, "", nil)
	if err != nil {
		f.t.Fatal(err)
	}
	if _, err := f.st.Create(p.Object); err != nil {
		if _, err := f.st.Update(p.Object); err != nil {
			f.t.Fatal(err)
		}
	}
}

func (f *fixture) reconcile(r reconciler.Reconciler, name string) {
	f.t.Helper()
	if err := r.Reconcile(context.Background(), reconciler.Key{Namespace: "default", Name: name}); err != nil {
		f.t.Fatal(err)
	}
}

// settle runs the reconcilers in dependency order, as the manager's watches would eventually.
func (f *fixture) settle(name string, revs ...string) {
	f.t.Helper()
	for range 2 {
		f.reconcile(f.svc, name)
		f.reconcile(f.cfg, name)
		for _, r := range revs {
			f.reconcile(f.rev, r)
		}
		f.reconcile(f.cfg, name)
		f.reconcile(f.route, name)
		f.reconcile(f.svc, name)
	}
}

func (f *fixture) get(gk, name string, into any) *unstructured.Unstructured {
	f.t.Helper()
	u, err := f.st.Get(gk, "default", name)
	if err != nil {
		f.t.Fatal(err)
	}
	if into != nil {
		if err := reconciler.FromUnstructured(u, into); err != nil {
			f.t.Fatal(err)
		}
	}
	return u
}

func svcDoc(image string) string {
	return `apiVersion: serving.knative.dev/v1
kind: Service
metadata: {name: hello, labels: {team: a}}
spec:
  template:
    spec:
      containers: [{image: ` + image + `}]
`
}

func TestServiceCreatesChildrenAndRevisions(t *testing.T) {
	f := newFixture(t)
	f.apply(svcDoc("img:1"))
	f.settle("hello", "hello-00001")

	var svc servingv1.Service
	f.get(ServiceGK, "hello", &svc)
	var cfg servingv1.Configuration
	f.get(ConfigurationGK, "hello", &cfg)
	var route servingv1.Route
	f.get(RouteGK, "hello", &route)
	var rev servingv1.Revision
	f.get(RevisionGK, "hello-00001", &rev)

	if !controlledBy(&cfg, string(svc.UID)) || !controlledBy(&route, string(svc.UID)) || !controlledBy(&rev, string(cfg.UID)) {
		t.Fatal("children not controlled by their owners")
	}
	if rev.Labels["serving.knative.dev/service"] != "hello" || rev.Labels["serving.knative.dev/configuration"] != "hello" ||
		rev.Labels["serving.knative.dev/configurationGeneration"] != "1" || rev.Spec.Containers[0].Image != "img:1" {
		t.Fatalf("revision %+v", rev.ObjectMeta.Labels)
	}
	if cfg.Labels["team"] != "a" || cfg.Labels["serving.knative.dev/service"] != "hello" {
		t.Fatalf("configuration labels %v", cfg.Labels)
	}
	if route.Spec.Traffic[0].ConfigurationName != "hello" || !*route.Spec.Traffic[0].LatestRevision {
		t.Fatalf("route spec %+v", route.Spec)
	}
	ready := svc.Status.GetCondition(apis.ConditionReady)
	if ready == nil || ready.Status != corev1.ConditionFalse || ready.Reason != reconciler.ReasonNotImplemented {
		t.Fatalf("service Ready %+v", ready)
	}
	if !ready.LastTransitionTime.Inner.Time.Equal(t0) {
		t.Fatalf("lastTransitionTime %v, want the fake clock's %v", ready.LastTransitionTime.Inner, t0)
	}
	if svc.Status.URL.String() != "http://hello.default.localhost:8080" || svc.Status.Address.URL.String() != svc.Status.URL.String() ||
		svc.Status.LatestCreatedRevisionName != "hello-00001" || svc.Status.ObservedGeneration != 1 {
		t.Fatalf("service status %+v", svc.Status)
	}

	// Settled: reconciling again writes nothing.
	rvs := map[string]string{}
	for _, gk := range []string{ServiceGK, ConfigurationGK, RouteGK} {
		rvs[gk] = f.get(gk, "hello", nil).GetResourceVersion()
	}
	f.clock.Step(time.Minute)
	f.settle("hello", "hello-00001")
	for gk, rv := range rvs {
		if got := f.get(gk, "hello", nil).GetResourceVersion(); got != rv {
			t.Errorf("%s rewritten by an idempotent reconcile (%s -> %s)", gk, rv, got)
		}
	}

	// A template change stamps the next revision; conditions that did not change keep their time.
	f.apply(svcDoc("img:2"))
	f.settle("hello", "hello-00001", "hello-00002")
	f.get(ServiceGK, "hello", &svc)
	if svc.Status.LatestCreatedRevisionName != "hello-00002" || svc.Status.ObservedGeneration != 2 {
		t.Fatalf("after template change: %+v", svc.Status)
	}
	var rev2 servingv1.Revision
	f.get(RevisionGK, "hello-00002", &rev2)
	if rev2.Spec.Containers[0].Image != "img:2" || rev2.Labels["serving.knative.dev/configurationGeneration"] != "2" {
		t.Fatalf("revision 2 %v %v", rev2.Spec.Containers[0].Image, rev2.Labels)
	}
	f.get(RevisionGK, "hello-00001", &rev)
	if rev.Spec.Containers[0].Image != "img:1" {
		t.Fatal("revision 1 was modified; revisions are immutable")
	}
}

func TestConfigurationReadyFollowsRevision(t *testing.T) {
	cases := []struct {
		name       string
		revReady   *apis.Condition // nil: the revision has no status yet
		wantStatus corev1.ConditionStatus
		wantReason string
		wantLatest string
	}{
		{"not reconciled yet", nil, corev1.ConditionUnknown, "", ""},
		{"not implemented", &apis.Condition{Type: apis.ConditionReady, Status: corev1.ConditionFalse, Reason: "NotImplemented", Message: "x"},
			corev1.ConditionFalse, "NotImplemented", ""},
		{"failed", &apis.Condition{Type: apis.ConditionReady, Status: corev1.ConditionFalse, Reason: "ExitCode1", Message: "crashed"},
			corev1.ConditionFalse, "RevisionFailed", ""},
		{"ready", &apis.Condition{Type: apis.ConditionReady, Status: corev1.ConditionTrue},
			corev1.ConditionTrue, "", "hello-00001"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			f := newFixture(t)
			f.apply(`apiVersion: serving.knative.dev/v1
kind: Configuration
metadata: {name: hello}
spec: {template: {spec: {containers: [{image: img}]}}}
`)
			f.reconcile(f.cfg, "hello")
			if c.revReady != nil {
				setRevisionStatus(t, f, "hello-00001", *c.revReady)
			}
			f.reconcile(f.cfg, "hello")
			var cfg servingv1.Configuration
			f.get(ConfigurationGK, "hello", &cfg)
			got := cfg.Status.GetCondition(apis.ConditionReady)
			if got.Status != c.wantStatus || got.Reason != c.wantReason || cfg.Status.LatestReadyRevisionName != c.wantLatest ||
				cfg.Status.LatestCreatedRevisionName != "hello-00001" {
				t.Fatalf("Ready %+v, latestReady %q", got, cfg.Status.LatestReadyRevisionName)
			}
		})
	}
}

// setRevisionStatus plays the part of the serving runtime: it writes a Revision's Ready condition.
func setRevisionStatus(t *testing.T, f *fixture, name string, ready apis.Condition) {
	t.Helper()
	u := f.get(RevisionGK, name, nil)
	st := map[string]any{"observedGeneration": u.GetGeneration(), "conditions": []apis.Condition{ready}}
	b, _ := json.Marshal(st)
	var m map[string]any
	_ = json.Unmarshal(b, &m)
	if _, err := (reconciler.StatusWriter{Store: f.st, Clock: f.clock}).Write(u, m); err != nil {
		t.Fatal(err)
	}
}

// TestReadyWhenRuntimeReports shows the extension path: once a runtime marks the Revision Ready and the gateway
// hook says it serves the Route, the Service becomes Ready with its traffic resolved.
func TestReadyWhenRuntimeReports(t *testing.T) {
	f := newFixture(t)
	f.ready = true
	f.apply(svcDoc("img:1"))
	f.reconcile(f.svc, "hello")
	f.reconcile(f.cfg, "hello")
	setRevisionStatus(t, f, "hello-00001", apis.Condition{Type: apis.ConditionReady, Status: corev1.ConditionTrue})
	f.reconcile(f.cfg, "hello")
	f.reconcile(f.route, "hello")
	f.reconcile(f.svc, "hello")
	var svc servingv1.Service
	f.get(ServiceGK, "hello", &svc)
	if !svc.IsReady() {
		t.Fatalf("service not ready: %+v", svc.Status.Conditions)
	}
	if len(svc.Status.Traffic) != 1 || svc.Status.Traffic[0].RevisionName != "hello-00001" || *svc.Status.Traffic[0].Percent != 100 ||
		svc.Status.LatestReadyRevisionName != "hello-00001" {
		t.Fatalf("traffic %+v", svc.Status.Traffic)
	}
}
