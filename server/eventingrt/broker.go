package eventingrt

import (
	"context"
	"net/url"
	"strings"

	eventingv1 "knative.dev/eventing/pkg/apis/eventing/v1"
	"knative.dev/pkg/apis"
	duckv1 "knative.dev/pkg/apis/duck/v1"

	"github.com/tide-run/tide/controlplane/reconciler"
	"github.com/tide-run/tide/controlplane/store"
	"github.com/tide-run/tide/eventing/ingress"
)

// Broker classes tide serves (the eventing.knative.dev/broker.class annotation). Cluster manifests carry
// MTChannelBasedBroker; RocketMQ is tide's own name. Both are a RocketMQ topic here.
const (
	BrokerClassAnnotation = "eventing.knative.dev/broker.class"
	ClassMTChannel        = "MTChannelBasedBroker"
	ClassRocketMQ         = "RocketMQ"
)

// Broker condition types besides Ready.
const (
	BrokerAddressable apis.ConditionType = "Addressable"
	BrokerTopicReady  apis.ConditionType = "TopicReady"
)

var brokerConds = apis.NewLivingConditionSet(BrokerAddressable, BrokerTopicReady)

func ourClass(c string) bool { return c == ClassMTChannel || c == ClassRocketMQ }

func (r *Runtime) reconcileBroker(ctx context.Context, key reconciler.Key) error {
	obj, err := r.st.Get(GKBroker, key.Namespace, key.Name)
	if err != nil {
		r.forgetBroker(key)
		return reconciler.IgnoreNotFound(err)
	}
	var b eventingv1.Broker
	if err := reconciler.FromUnstructured(obj, &b); err != nil {
		return err
	}
	st := eventingv1.BrokerStatus{}
	st.ObservedGeneration = obj.GetGeneration()
	cm := brokerConds.Manage(&st)
	cm.InitializeConditions()
	class := b.Annotations[BrokerClassAnnotation]
	if !ourClass(class) {
		r.forgetBroker(key)
		cm.MarkFalse(apis.ConditionReady, "UnsupportedBrokerClass",
			"broker class %q is not handled by tide (supported: %s, %s); no ingress or topic exists for it", class, ClassMTChannel, ClassRocketMQ)
		_, err := r.status.Write(obj, st)
		return err
	}
	topic := ingress.TopicFor(key.Namespace, key.Name)
	if err := r.bus.EnsureTopic(ctx, topic); err != nil {
		r.forgetBroker(key)
		cm.MarkFalse(BrokerTopicReady, "TopicNotCreated", "creating RocketMQ topic %s: %v", topic, err)
		if _, werr := r.status.Write(obj, st); werr != nil {
			return werr
		}
		return err
	}
	cm.MarkTrue(BrokerTopicReady)
	r.mu.Lock()
	r.brokers[key.String()] = topic
	r.mu.Unlock()
	if u := r.brokerURL(key.Namespace, key.Name); u != nil {
		name := "http"
		st.Address = &duckv1.Addressable{Name: &name, URL: u}
		cm.MarkTrue(BrokerAddressable)
	} else {
		cm.MarkFalse(BrokerAddressable, "GatewayNotReady", "the gateway has no address yet")
	}
	if b.Spec.Delivery != nil && b.Spec.Delivery.DeadLetterSink != nil {
		if u, err := r.Resolve(key.Namespace, *b.Spec.Delivery.DeadLetterSink); err == nil {
			st.DeliveryStatus.DeadLetterSinkURI = u
		}
	}
	_, err = r.status.Write(obj, st)
	return err
}

func (r *Runtime) forgetBroker(key reconciler.Key) {
	r.mu.Lock()
	delete(r.brokers, key.String())
	r.mu.Unlock()
}

// brokerURL is http://<gateway host:port>/<namespace>/<broker>.
func (r *Runtime) brokerURL(namespace, name string) *apis.URL {
	gw := r.opts.GatewayURL()
	if gw == "" {
		return nil
	}
	u, err := url.Parse(strings.TrimSuffix(gw, "/") + "/" + namespace + "/" + name)
	if err != nil || u.Host == "" {
		return nil // the gateway does not listen yet
	}
	return (*apis.URL)(u)
}

// brokerDeliveryDefault returns the Broker's spec.delivery (nil when none or no Broker).
func (r *Runtime) brokerObject(namespace, name string) (*eventingv1.Broker, error) {
	obj, err := r.st.Get(GKBroker, namespace, name)
	if err != nil {
		return nil, err
	}
	var b eventingv1.Broker
	if err := reconciler.FromUnstructured(obj, &b); err != nil {
		return nil, err
	}
	return &b, nil
}

// inNamespace maps an event of any kind to every object of kind gk in the event's namespace (Triggers and sources
// re-resolve when a Service or Broker they may point at changes).
func (r *Runtime) inNamespace(gk string) func(e store.Event) []reconciler.Key {
	return func(e store.Event) []reconciler.Key {
		objs, _, err := r.st.List(gk, e.Object.GetNamespace())
		if err != nil {
			return nil
		}
		keys := make([]reconciler.Key, 0, len(objs))
		for _, o := range objs {
			keys = append(keys, reconciler.Key{Namespace: o.GetNamespace(), Name: o.GetName()})
		}
		return keys
	}
}
