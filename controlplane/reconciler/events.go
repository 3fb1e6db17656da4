package reconciler

import (
	"errors"
	"fmt"
	"hash/fnv"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/utils/clock"

	"github.com/tide-run/tide/controlplane/store"
)

// EventComponent is the source.component of events tide's reconcilers record.
const EventComponent = "tide-controller"

// Recorder records Kubernetes Events (core v1) about objects, which `tide describe` shows. An event repeated for
// the same object (same type, reason and message) bumps count and lastTimestamp instead of adding another. Events
// are owned by the object they are about, so deleting the object deletes them.
type Recorder struct {
	Store *store.Store
	Clock clock.PassiveClock
}

// Event records an event about obj; eventType is corev1.EventTypeNormal or EventTypeWarning. Failures to record are
// returned but are never a reason to fail a reconcile.
func (r Recorder) Event(obj *unstructured.Unstructured, eventType, reason, message string) error {
	if r.Store == nil || obj == nil {
		return nil
	}
	now := metav1.NewTime(r.Clock.Now().UTC().Truncate(time.Second))
	h := fnv.New64a()
	fmt.Fprintf(h, "%s\x00%s\x00%s\x00%s", obj.GetUID(), eventType, reason, message)
	name := fmt.Sprintf("%s.%016x", obj.GetName(), h.Sum64())
	if len(name) > 253 {
		name = name[len(name)-253:]
	}
	ns := obj.GetNamespace()
	if ns == "" {
		ns = "default"
	}
	existing, err := r.Store.Get("Event", ns, name)
	if err == nil {
		var ev corev1.Event
		if err := FromUnstructured(existing, &ev); err != nil {
			return err
		}
		ev.Count++
		ev.LastTimestamp = now
		u, err := ToUnstructured(&ev)
		if err != nil {
			return err
		}
		_, err = r.Store.Update(u)
		return err
	}
	if !errors.Is(err, store.ErrNotFound) {
		return err
	}
	ev := corev1.Event{
		TypeMeta: metav1.TypeMeta{APIVersion: "v1", Kind: "Event"},
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns, OwnerReferences: []metav1.OwnerReference{{
			APIVersion: obj.GetAPIVersion(), Kind: obj.GetKind(), Name: obj.GetName(), UID: obj.GetUID()}}},
		InvolvedObject: corev1.ObjectReference{APIVersion: obj.GetAPIVersion(), Kind: obj.GetKind(), Namespace: obj.GetNamespace(),
			Name: obj.GetName(), UID: obj.GetUID(), ResourceVersion: obj.GetResourceVersion()},
		Reason: reason, Message: message, Type: eventType, Count: 1, FirstTimestamp: now, LastTimestamp: now,
		Source: corev1.EventSource{Component: EventComponent}, ReportingController: EventComponent,
	}
	u, err := ToUnstructured(&ev)
	if err != nil {
		return err
	}
	unstructured.RemoveNestedField(u.Object, "metadata", "creationTimestamp")
	unstructured.RemoveNestedField(u.Object, "eventTime")
	_, err = r.Store.Create(u)
	if errors.Is(err, store.ErrAlreadyExists) {
		return nil // recorded concurrently
	}
	return err
}
