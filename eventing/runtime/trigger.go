package runtime

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	eventingv1 "knative.dev/eventing/pkg/apis/eventing/v1"
	"knative.dev/pkg/apis"

	"github.com/tide-run/tide/controlplane/reconciler"
	"github.com/tide-run/tide/controlplane/store"
	"github.com/tide-run/tide/eventing/bus"
	"github.com/tide-run/tide/eventing/trigger"
)

// Trigger condition types besides Ready.
const (
	TriggerBrokerReady            apis.ConditionType = "BrokerReady"
	TriggerSubscriberResolved     apis.ConditionType = "SubscriberResolved"
	TriggerDeadLetterSinkResolved apis.ConditionType = "DeadLetterSinkResolved"
	TriggerSubscribed             apis.ConditionType = "Subscribed"
)

var triggerConds = apis.NewLivingConditionSet(TriggerBrokerReady, TriggerSubscriberResolved, TriggerDeadLetterSinkResolved, TriggerSubscribed)

// StatsField is the status field holding a Trigger's or RocketMQSource's delivery counters in this process
// (tide-specific; `tide get trigger -o wide` prints it).
const StatsField = "deliveryStats"

// triggerStatus is the stored status: Knative's TriggerStatus plus the counters.
type triggerStatus struct {
	eventingv1.TriggerStatus `json:",inline"`
	DeliveryStats            *trigger.Stats `json:"deliveryStats,omitempty"`
}

func (r *Runtime) reconcileTrigger(ctx context.Context, key reconciler.Key) error {
	obj, err := r.st.Get(GKTrigger, key.Namespace, key.Name)
	if err != nil {
		if errors.Is(err, store.ErrNotFound) {
			// Deleted: stop it and remove its consumer group from the broker (a failure there is logged by the
			// manager and does not hold up the deletion).
			_ = r.mgr.Delete(key.Namespace, key.Name)
			r.forgetStats("trigger", key)
			return nil
		}
		return err
	}
	if obj.GetDeletionTimestamp() != nil {
		return r.finalizeTrigger(ctx, key, obj)
	}
	if obj, err = r.ensureFinalizer(obj, TriggerFinalizer); err != nil {
		return err
	}
	var t eventingv1.Trigger
	if err := reconciler.FromUnstructured(obj, &t); err != nil {
		return err
	}
	st := triggerStatus{}
	st.ObservedGeneration = obj.GetGeneration()
	cm := triggerConds.Manage(&st.TriggerStatus)
	cm.InitializeConditions()
	write := func() error {
		if s, ok := r.mgr.Stats(key.Namespace, key.Name); ok {
			s.InFlight = 0 // a gauge, not worth a store write per change
			st.DeliveryStats = &s
			r.rememberStats("trigger", key, s)
		}
		_, err := r.status.Write(obj, st)
		return err
	}
	// stopWith records why the Trigger does not run and stops its consumer (its group keeps its offsets).
	stopWith := func(cond apis.ConditionType, reason, format string, args ...any) error {
		_ = r.mgr.Remove(key.Namespace, key.Name)
		cm.MarkFalse(cond, reason, format, args...)
		return write()
	}

	b, err := r.brokerObject(key.Namespace, t.Spec.Broker)
	if err != nil {
		if errors.Is(err, store.ErrNotFound) {
			return stopWith(TriggerBrokerReady, "BrokerDoesNotExist", "Broker %q does not exist", t.Spec.Broker)
		}
		return err
	}
	topic, ok := r.brokerTopic(key.Namespace, t.Spec.Broker)
	if !ok {
		return stopWith(TriggerBrokerReady, "BrokerNotReady", "Broker %q is not ready (class %q)", t.Spec.Broker, b.Annotations[BrokerClassAnnotation])
	}
	cm.MarkTrue(TriggerBrokerReady)

	sub, err := r.Resolve(key.Namespace, t.Spec.Subscriber)
	if err != nil {
		return stopWith(TriggerSubscriberResolved, "Unable to get the Subscriber's URI", "%v", err)
	}
	st.SubscriberURI = sub
	cm.MarkTrue(TriggerSubscriberResolved)

	ds := t.Spec.Delivery
	if ds == nil {
		ds = b.Spec.Delivery // the Broker's spec.delivery is the default of its Triggers
	}
	var dls *url.URL
	if ds != nil && ds.DeadLetterSink != nil {
		u, err := r.Resolve(key.Namespace, *ds.DeadLetterSink)
		if err != nil {
			return stopWith(TriggerDeadLetterSinkResolved, "Unable to get the dead letter sink's URI", "%v", err)
		}
		st.DeadLetterSinkURI = u
		dls = u.URL()
		cm.MarkTrue(TriggerDeadLetterSinkResolved)
	} else {
		cm.MarkTrueWithReason(TriggerDeadLetterSinkResolved, "DeadLetterSinkNotConfigured", "No dead letter sink is configured.")
	}
	cfg, err := trigger.ConfigFromTrigger(&t, trigger.Resolved{Topic: topic, Subscriber: sub.URL(), DeadLetter: dls,
		BrokerDelivery: b.Spec.Delivery})
	if err != nil {
		return stopWith(TriggerSubscribed, "InvalidTrigger", "%v", err)
	}
	err = r.mgr.Upsert(ctx, cfg)
	if err != nil {
		if errors.Is(err, trigger.ErrInvalidConfig) {
			return stopWith(TriggerSubscribed, "InvalidTrigger", "%v", err)
		}
		cm.MarkFalse(TriggerSubscribed, "SubscribeFailed", "%v", err)
		if werr := write(); werr != nil {
			return werr
		}
		return err
	}
	cm.MarkTrue(TriggerSubscribed)
	return write()
}

// finalizeTrigger cleans up after a Trigger being deleted (see finalizer.go): it stops its consumer and deletes its
// consumer group, then takes TriggerFinalizer away. The manager deletes the group of a Trigger it ran (a failure
// there is logged and does not hold the deletion up, as for the NotFound path); a Trigger this process never ran
// (deleted while tide was stopped) has its group, named after its uid, deleted here, and a failure is retried.
func (r *Runtime) finalizeTrigger(ctx context.Context, key reconciler.Key, obj *unstructured.Unstructured) error {
	if err := r.mgr.Delete(key.Namespace, key.Name); errors.Is(err, trigger.ErrNotFound) {
		group := trigger.GroupOf(trigger.Config{Namespace: key.Namespace, Name: key.Name, UID: string(obj.GetUID())})
		if err := r.bus.DeleteGroup(ctx, group); err != nil && !errors.Is(err, bus.ErrUnsupported) {
			return fmt.Errorf("deleting consumer group %s of deleted Trigger %s: %w", group, key, err)
		}
		r.log.Info("deleted the consumer group of a deleted Trigger", "trigger", key.String(), "group", group)
	}
	r.forgetStats("trigger", key)
	return r.removeFinalizer(GKTrigger, key, obj.GetUID(), TriggerFinalizer)
}

func (r *Runtime) rememberStats(kind string, key reconciler.Key, s any) {
	b, _ := json.Marshal(s)
	r.mu.Lock()
	r.written[kind+" "+key.String()] = string(b)
	r.mu.Unlock()
}

func (r *Runtime) forgetStats(kind string, key reconciler.Key) {
	r.mu.Lock()
	delete(r.written, kind+" "+key.String())
	r.mu.Unlock()
}

// statsChanged reports whether s differs from what was last written for kind/key.
func (r *Runtime) statsChanged(kind string, key reconciler.Key, s any) bool {
	b, _ := json.Marshal(s)
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.written[kind+" "+key.String()] != string(b)
}
