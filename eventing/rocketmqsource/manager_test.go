package rocketmqsource

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/apache/rocketmq-client-go/v2/primitive"

	"github.com/tide-run/tide/apis/sources/v1alpha1"
)

func TestManagerAppliesReplacesRemoves(t *testing.T) {
	srv := startBroker(t)
	createTopic(t, srv, "a", 1)
	createTopic(t, srv, "b", 1)
	p := newProducer(t, srv)
	sink := newSink(t, nil)
	m := NewManager(nil, quiet)
	defer m.Shutdown(context.Background())
	cfg := withBroker(Config{Topics: []string{"a"}, ConsumerGroup: "g-mgr", Sink: sink.url}, srv)

	st, err := m.Apply(context.Background(), "ns/src", cfg)
	if err != nil || !st.Deployed {
		t.Fatalf("%+v %v", st, err)
	}
	first := m.adapters["ns/src"].adapter
	if _, err := m.Apply(context.Background(), "ns/src", cfg); err != nil || m.adapters["ns/src"].adapter != first {
		t.Fatal("unchanged config restarted the adapter")
	}
	idA := send(t, p, msgOn("a"))
	waitFor(t, 20*time.Second, func() string {
		if sink.has([]string{idA}) != nil {
			return "topic a not delivered"
		}
		return ""
	})

	cfg.Topics = []string{"b"}
	if _, err := m.Apply(context.Background(), "ns/src", cfg); err != nil || m.adapters["ns/src"].adapter == first {
		t.Fatalf("changed config not applied: %v", err)
	}
	if first.Status().Deployed {
		t.Error("replaced adapter still deployed")
	}
	idB := send(t, p, msgOn("b"))
	waitFor(t, 20*time.Second, func() string {
		if sink.has([]string{idB}) != nil {
			return "topic b not delivered after the change"
		}
		return ""
	})

	bad := cfg
	bad.Topics = []string{"missing"}
	st, err = m.Apply(context.Background(), "ns/other", bad)
	if !errors.Is(err, ErrTopicNotFound) || st.Reason != "TopicNotFound" || st.Deployed {
		t.Fatalf("missing topic: %+v %v", st, err)
	}
	if err := m.Remove(context.Background(), "ns/src"); err != nil {
		t.Fatal(err)
	}
	if len(m.adapters) != 0 || m.Counters("ns/src") != (Counters{}) {
		t.Fatal("adapter not removed")
	}
}

func msgOn(topic string) *primitive.Message {
	return primitive.NewMessage(topic, []byte(fmt.Sprintf("m-%d", seq.Add(1))))
}

func TestManagerReconcileWritesStatus(t *testing.T) {
	srv := startBroker(t)
	createTopic(t, srv, "orders", 1)
	sink := newSink(t, nil)
	m := NewManager(nil, quiet)
	defer m.Shutdown(context.Background())
	src, err := v1alpha1.Decode([]byte(`
apiVersion: sources.knative.dev/v1alpha1
kind: RocketMQSource
metadata: {name: orders, namespace: shop, generation: 3}
spec:
  topic: orders
  initialOffset: earliest
  sink: {ref: {apiVersion: v1, kind: Service, name: display}}
`))
	if err != nil {
		t.Fatal(err)
	}
	ctx := v1alpha1.WithDefaultNameServers(context.Background(), []string{srv.NameServerAddr()})
	src.SetDefaults(ctx)
	if err := src.Validate(ctx); err != nil {
		t.Fatal(err)
	}

	// Sink not resolvable: SinkProvided false, nothing consumes.
	if err := m.Reconcile(ctx, src, nil, errors.New(`service "display" not found`), nil, Credentials{}); err == nil {
		t.Fatal("no error without a sink")
	}
	if c := src.Status.GetCondition(v1alpha1.ConditionSinkProvided); c.IsTrue() || c.Reason != v1alpha1.ReasonSinkNotFound || src.Status.IsReady() {
		t.Fatalf("%+v", src.Status)
	}

	if err := m.Reconcile(ctx, src, sink.url, nil, nil, Credentials{}); err != nil {
		t.Fatal(err)
	}
	st := src.Status
	if !st.IsReady() || st.SinkURI.String() != sink.url.String() || st.ObservedGeneration != 3 ||
		st.ConsumerGroup != "knative-rocketmqsource_shop_orders" || len(st.CloudEventAttributes) != 1 ||
		st.CloudEventAttributes[0].Source != "/apis/v1/namespaces/shop/rocketmqsources/orders#orders" {
		t.Fatalf("%+v", st)
	}

	src.Spec.Topic = "missing"
	if err := m.Reconcile(ctx, src, sink.url, nil, nil, Credentials{}); !errors.Is(err, ErrTopicNotFound) {
		t.Fatalf("missing topic: %v", err)
	}
	if c := src.Status.GetCondition(v1alpha1.ConditionDeployed); c.IsTrue() || c.Reason != v1alpha1.ReasonTopicNotFound {
		t.Fatalf("%+v", c)
	}
}

// TestLegacyManifestRuns: a 2020-form manifest (sources.eventing.knative.dev/v1alpha1, namesrvAddr, groupName, sink
// as an ObjectReference) decodes, converts, validates and consumes: its messages reach the sink the reference
// resolved to.
func TestLegacyManifestRuns(t *testing.T) {
	srv := startBroker(t)
	createTopic(t, srv, "order", 2)
	p := newProducer(t, srv)
	id := send(t, p, primitive.NewMessage("order", []byte(orderBody)))
	sink := newSink(t, nil)
	src, err := v1alpha1.Decode([]byte(`
apiVersion: sources.eventing.knative.dev/v1alpha1
kind: RocketMQSource
metadata:
  name: alirocketmqsource
  namespace: default
spec:
  topic: order
  namesrvAddr: ` + srv.NameServerAddr() + `
  groupName: GID_order
  serviceAccountName: alirocketmq-controller-manager
  sink:
    apiVersion: serving.knative.dev/v1
    kind: Service
    name: event-display
`))
	if err != nil {
		t.Fatal(err)
	}
	src.Spec.InitialOffset = "earliest" // the 2020 adapter started at the latest offset; this test's message is older
	src.SetDefaults(context.Background())
	if err := src.Validate(context.Background()); err != nil {
		t.Fatal(err)
	}
	m := NewManager(nil, quiet)
	defer m.Shutdown(context.Background())
	if err := m.Reconcile(context.Background(), src, sink.url, nil, nil, Credentials{}); err != nil || !src.Status.IsReady() {
		t.Fatalf("%v %+v", err, src.Status)
	}
	waitFor(t, 20*time.Second, func() string {
		if sink.has([]string{id}) != nil {
			return "the 2020-form source delivered nothing"
		}
		return ""
	})
	sink.mu.Lock()
	defer sink.mu.Unlock()
	if ev := sink.events[id]; ev.Source() != "/apis/v1/namespaces/default/rocketmqsources/alirocketmqsource#order" || ev.SpecVersion() != "1.0" {
		t.Fatalf("event %v", ev)
	}
}
