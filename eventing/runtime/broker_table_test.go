package runtime

import (
	"context"
	"io"
	"slices"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	eventingv1 "knative.dev/eventing/pkg/apis/eventing/v1"
	"knative.dev/pkg/apis"
	"sigs.k8s.io/yaml"

	"github.com/tide-run/tide/controlplane/reconciler"
	"github.com/tide-run/tide/eventing/ingress"
)

// TestBrokerReconcileTable is a table in the style of knative/serving's pkg/reconciler tests: a Broker in a
// temporary store, one Reconcile, and what comes out: the Broker's status (conditions, address, dead-letter URI),
// its finalizer, and its RocketMQ topic on a real embedded broker.
func TestBrokerReconcileTable(t *testing.T) {
	e := newSweepEnv(t)
	rt := e.runtime(t, true, io.Discard)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := rt.Start(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = rt.Shutdown(context.Background()) })

	type cond struct {
		typ    apis.ConditionType
		status corev1.ConditionStatus
		reason string
	}
	cases := []struct {
		name      string
		broker    string // YAML; namespace default
		conds     []cond
		address   string // "" for none
		dls       string
		finalizer bool
		topic     bool
	}{{
		name: "MTChannelBasedBroker class becomes a topic and an address",
		broker: `apiVersion: eventing.knative.dev/v1
kind: Broker
metadata: {name: mt, annotations: {eventing.knative.dev/broker.class: MTChannelBasedBroker}}
`,
		conds: []cond{{apis.ConditionReady, corev1.ConditionTrue, ""}, {BrokerTopicReady, corev1.ConditionTrue, ""},
			{BrokerAddressable, corev1.ConditionTrue, ""}},
		address: "http://127.0.0.1:8080/default/mt", finalizer: true, topic: true,
	}, {
		name: "RocketMQ class with a dead-letter sink URI",
		broker: `apiVersion: eventing.knative.dev/v1
kind: Broker
metadata: {name: rmq, annotations: {eventing.knative.dev/broker.class: RocketMQ}}
spec: {delivery: {deadLetterSink: {uri: "http://dls.example/"}}}
`,
		conds:   []cond{{apis.ConditionReady, corev1.ConditionTrue, ""}},
		address: "http://127.0.0.1:8080/default/rmq", dls: "http://dls.example/", finalizer: true, topic: true,
	}, {
		name: "another class is refused and gets nothing",
		broker: `apiVersion: eventing.knative.dev/v1
kind: Broker
metadata: {name: kafka, annotations: {eventing.knative.dev/broker.class: Kafka}}
`,
		conds: []cond{{apis.ConditionReady, corev1.ConditionFalse, "UnsupportedBrokerClass"}},
	}}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var m map[string]any
			if err := yaml.Unmarshal([]byte(c.broker), &m); err != nil {
				t.Fatal(err)
			}
			obj := &unstructured.Unstructured{Object: m}
			obj.SetNamespace("default")
			if _, err := e.st.Create(obj); err != nil {
				t.Fatal(err)
			}
			key := reconciler.Key{Namespace: "default", Name: obj.GetName()}
			if err := rt.reconcileBroker(ctx, key); err != nil {
				t.Fatal(err)
			}

			u, err := e.st.Get(GKBroker, "default", obj.GetName())
			if err != nil {
				t.Fatal(err)
			}
			var b eventingv1.Broker
			if err := reconciler.FromUnstructured(u, &b); err != nil {
				t.Fatal(err)
			}
			for _, w := range c.conds {
				got := b.Status.GetCondition(w.typ)
				if got == nil || got.Status != w.status || got.Reason != w.reason {
					t.Errorf("%s = %+v, want %s %q", w.typ, got, w.status, w.reason)
				}
			}
			if b.Status.ObservedGeneration != b.Generation {
				t.Errorf("observedGeneration %d, generation %d", b.Status.ObservedGeneration, b.Generation)
			}
			var addr string
			if b.Status.Address != nil && b.Status.Address.URL != nil {
				addr = b.Status.Address.URL.String()
			}
			if addr != c.address {
				t.Errorf("address %q, want %q", addr, c.address)
			}
			var dls string
			if b.Status.DeliveryStatus.DeadLetterSinkURI != nil {
				dls = b.Status.DeliveryStatus.DeadLetterSinkURI.String()
			}
			if dls != c.dls {
				t.Errorf("dead-letter sink %q, want %q", dls, c.dls)
			}
			if got := slices.Contains(u.GetFinalizers(), BrokerFinalizer); got != c.finalizer {
				t.Errorf("finalizers %v, want %s: %v", u.GetFinalizers(), BrokerFinalizer, c.finalizer)
			}
			topics, err := e.adm.Topics(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if _, got := topics[ingress.TopicFor("default", obj.GetName())]; got != c.topic {
				t.Errorf("topic %s exists: %v, want %v", ingress.TopicFor("default", obj.GetName()), got, c.topic)
			}
		})
	}
}
