package runtime

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"slices"
	"strings"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

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
	if errors.Is(err, store.ErrNotFound) {
		return r.deleteBrokerTopic(ctx, key)
	}
	if err != nil {
		r.forgetBroker(key)
		return err
	}
	if obj.GetDeletionTimestamp() != nil {
		return r.finalizeBroker(ctx, key, obj)
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
	if obj, err = r.ensureFinalizer(obj, BrokerFinalizer); err != nil {
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

// deleteBrokerTopic removes the RocketMQ topic of a deleted Broker, with its stored events, as Knative's Kafka
// broker deletes its topic: a Broker created again under the same name starts empty. Only topics this runtime
// served are deleted (a Broker deleted while tide was down keeps its topic until the next start's orphan sweep on
// the embedded broker, sweep.go; on an external cluster `tide mq topic delete` removes it). A
// failed deletion is kept in orphans and retried with the reconciler's back-off; the ingress answers 404 for the
// Broker from the first attempt on.
func (r *Runtime) deleteBrokerTopic(ctx context.Context, key reconciler.Key) error {
	r.mu.Lock()
	topic, ok := r.brokers[key.String()]
	if !ok {
		topic, ok = r.orphans[key.String()]
	}
	delete(r.brokers, key.String())
	delete(r.orphans, key.String())
	r.mu.Unlock()
	if !ok {
		return nil
	}
	if err := r.bus.DeleteTopic(ctx, topic); err != nil {
		r.mu.Lock()
		r.orphans[key.String()] = topic
		r.mu.Unlock()
		return fmt.Errorf("deleting topic %s of deleted Broker %s: %w", topic, key, err)
	}
	r.log.Info("deleted the topic of a deleted Broker", "broker", key.String(), "topic", topic)
	return nil
}

// finalizeBroker cleans up after a Broker being deleted (see finalizer.go): the ingress stops taking its events
// (404), its topic is deleted with the events stored in it, then BrokerFinalizer is taken away. The topic is
// deleted by name whether or not this process served it (deleted while tide was stopped, or on an external
// cluster); deleting a topic that does not exist succeeds. A failure keeps the finalizer and is retried. A Broker
// of another class without the finalizer never had a topic from tide: nothing to do.
func (r *Runtime) finalizeBroker(ctx context.Context, key reconciler.Key, obj *unstructured.Unstructured) error {
	r.mu.Lock()
	delete(r.brokers, key.String())
	delete(r.orphans, key.String())
	r.mu.Unlock()
	if !ourClass(obj.GetAnnotations()[BrokerClassAnnotation]) && !slices.Contains(obj.GetFinalizers(), BrokerFinalizer) {
		return nil
	}
	topic := ingress.TopicFor(key.Namespace, key.Name)
	if err := r.bus.DeleteTopic(ctx, topic); err != nil {
		return fmt.Errorf("deleting topic %s of deleted Broker %s: %w", topic, key, err)
	}
	r.log.Info("deleted the topic of a deleted Broker", "broker", key.String(), "topic", topic)
	return r.removeFinalizer(GKBroker, key, obj.GetUID(), BrokerFinalizer)
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
	return reconciler.GetTyped[eventingv1.Broker](r.st, GKBroker, namespace, name)
}
