package reconciler

import (
	"testing"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"knative.dev/pkg/apis"
	servingv1 "knative.dev/serving/pkg/apis/serving/v1"
	"sigs.k8s.io/yaml"

	"github.com/tide-run/tide/controlplane/reconciler"
)

// TestRouteReconcileTable is a table in the style of knative/serving's pkg/reconciler tests: the objects in the
// store, one Reconcile of the Route, and the Route's expected status out (conditions, resolved traffic, URLs), against
// a temporary store. The Route reconciler records no events.
func TestRouteReconcileTable(t *testing.T) {
	const route = `apiVersion: serving.knative.dev/v1
kind: Route
metadata: {name: hello}
spec: {traffic: [{configurationName: hello, percent: 100}]}
`
	const config = `apiVersion: serving.knative.dev/v1
kind: Configuration
metadata: {name: hello}
spec: {template: {spec: {containers: [{image: img}]}}}
status: {latestCreatedRevisionName: hello-00002, latestReadyRevisionName: hello-00001}
`
	revision := func(name, ready string) string {
		return `apiVersion: serving.knative.dev/v1
kind: Revision
metadata: {name: ` + name + `}
spec: {containers: [{image: img}]}
status: {conditions: [{type: Ready, status: "` + ready + `"}]}
`
	}
	type cond struct {
		status corev1.ConditionStatus
		reason string
	}
	yes := cond{corev1.ConditionTrue, ""}
	cases := []struct {
		name         string
		objects      []string
		ingressReady bool
		ready        cond
		assigned     cond
		ingress      cond
		traffic      []servingv1.TrafficTarget // nil: no status.traffic
	}{{
		name:         "configuration target resolves to its latest ready revision",
		objects:      []string{config, route},
		ingressReady: true,
		ready:        yes, assigned: yes, ingress: yes,
		traffic: []servingv1.TrafficTarget{{RevisionName: "hello-00001", LatestRevision: ptr(true), Percent: ptr(int64(100))}},
	}, {
		name:    "missing configuration",
		objects: []string{route},
		ready:   cond{corev1.ConditionFalse, "ConfigurationMissing"}, assigned: cond{corev1.ConditionFalse, "ConfigurationMissing"},
		ingress: cond{corev1.ConditionUnknown, "Uninitialized"},
	}, {
		name: "revision target not ready yet",
		objects: []string{revision("hello-00003", "Unknown"), `apiVersion: serving.knative.dev/v1
kind: Route
metadata: {name: hello}
spec: {traffic: [{revisionName: hello-00003, percent: 100}]}
`},
		ready: cond{corev1.ConditionUnknown, "RevisionMissing"}, assigned: cond{corev1.ConditionUnknown, "RevisionMissing"},
		ingress: cond{corev1.ConditionUnknown, "Uninitialized"},
	}, {
		name: "tagged revision target gets its own URL",
		objects: []string{revision("hello-00001", "True"), `apiVersion: serving.knative.dev/v1
kind: Route
metadata: {name: hello}
spec: {traffic: [{revisionName: hello-00001, tag: canary, percent: 100}]}
`},
		ingressReady: true,
		ready:        yes, assigned: yes, ingress: yes,
		traffic: []servingv1.TrafficTarget{{RevisionName: "hello-00001", Tag: "canary", LatestRevision: ptr(false), Percent: ptr(int64(100)),
			URL: &apis.URL{Scheme: "http", Host: "canary-hello.default.localhost"}}},
	}, {
		name:     "resolved but the gateway does not serve it",
		objects:  []string{config, route},
		ready:    cond{corev1.ConditionFalse, reconciler.ReasonNotImplemented},
		assigned: yes, ingress: cond{corev1.ConditionFalse, reconciler.ReasonNotImplemented},
		traffic: []servingv1.TrafficTarget{{RevisionName: "hello-00001", LatestRevision: ptr(true), Percent: ptr(int64(100))}},
	}}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			f := newFixture(t)
			// The Ingress hook as the serving runtime fills it: nothing to program until the traffic is resolved.
			var programmed []servingv1.TrafficTarget
			f.route.Ingress = func(_ *servingv1.Route, traffic []servingv1.TrafficTarget, resolved bool) (bool, string, string) {
				programmed = traffic
				switch {
				case !resolved:
					return false, "", "waiting for traffic"
				case c.ingressReady:
					return true, "", ""
				}
				return false, reconciler.ReasonNotImplemented, "no gateway"
			}
			f.route.URL = func(name, ns string) *apis.URL {
				return &apis.URL{Scheme: "http", Host: name + "." + ns + ".localhost"}
			}
			for _, doc := range c.objects {
				f.put(doc)
			}
			f.reconcile(f.route, "hello")

			var got servingv1.Route
			f.get(RouteGK, "hello", &got)
			for _, w := range []struct {
				typ  apis.ConditionType
				want cond
			}{{apis.ConditionReady, c.ready}, {servingv1.RouteConditionAllTrafficAssigned, c.assigned},
				{servingv1.RouteConditionIngressReady, c.ingress}} {
				cd := got.Status.GetCondition(w.typ)
				if cd == nil || cd.Status != w.want.status || cd.Reason != w.want.reason {
					t.Errorf("%s = %+v, want status %s reason %q", w.typ, cd, w.want.status, w.want.reason)
				}
			}
			if got.Status.ObservedGeneration != got.Generation {
				t.Errorf("observedGeneration %d, generation %d", got.Status.ObservedGeneration, got.Generation)
			}
			if u := got.Status.URL; u == nil || u.String() != "http://hello.default.localhost" ||
				got.Status.Address == nil || got.Status.Address.URL.String() != u.String() {
				t.Errorf("url %v, address %+v", u, got.Status.Address)
			}
			if !equalTraffic(got.Status.Traffic, c.traffic) {
				t.Errorf("traffic %+v, want %+v", got.Status.Traffic, c.traffic)
			}
			if !equalTraffic(programmed, c.traffic) {
				t.Errorf("the gateway was given %+v, want %+v", programmed, c.traffic)
			}
		})
	}
}

// put stores a YAML document as it stands, status included (the status through the status writer, as the
// reconciler that owns the object would have written it).
func (f *fixture) put(doc string) {
	f.t.Helper()
	var m map[string]any
	if err := yaml.Unmarshal([]byte(doc), &m); err != nil {
		f.t.Fatal(err)
	}
	status, _ := m["status"].(map[string]any)
	delete(m, "status")
	obj := &unstructured.Unstructured{Object: m}
	obj.SetNamespace("default")
	u, err := f.st.Create(obj)
	if err != nil {
		f.t.Fatal(err)
	}
	if status != nil {
		status["observedGeneration"] = u.GetGeneration()
		if _, err := (reconciler.StatusWriter{Store: f.st, Clock: f.clock}).Write(u, status); err != nil {
			f.t.Fatal(err)
		}
	}
}

func equalTraffic(got, want []servingv1.TrafficTarget) bool {
	if len(got) != len(want) {
		return false
	}
	for i := range got {
		g, w := got[i], want[i]
		if g.RevisionName != w.RevisionName || g.Tag != w.Tag || g.ConfigurationName != w.ConfigurationName ||
			!equalPtr(g.LatestRevision, w.LatestRevision) || !equalPtr(g.Percent, w.Percent) || g.URL.String() != w.URL.String() {
			return false
		}
	}
	return true
}

func equalPtr[T comparable](a, b *T) bool { return (a == nil) == (b == nil) && (a == nil || *a == *b) }

func ptr[T any](v T) *T { return &v }
