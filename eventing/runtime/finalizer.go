package runtime

// Finalizers. The reconcilers clean the broker up when a Trigger or Broker goes (the consumer group, the topic).
// Seeing an object vanish (a NotFound reconcile) is not enough for that: what is deleted while tide is stopped is
// never seen vanishing, and on an external RocketMQ cluster no start-up sweep makes up for it (sweep.go). So, as
// Knative's own reconcilers do, each reconciled Trigger and Broker (of a class tide serves) carries a finalizer;
// a delete then only marks it (metadata.deletionTimestamp, see controlplane/store), the reconciler sees the
// mark whenever it next runs (now, or at the next start), cleans up, and takes its finalizer away, which removes
// the object. The NotFound path stays for objects that never got a finalizer (stored before finalizers existed,
// or with it removed by hand).
//
// Invariant: a finalizer is removed only from the object (same uid) whose cleanup just succeeded, and only while
// it is being deleted; a cleanup that fails keeps the finalizer and is retried with the reconciler's back-off.

import (
	"errors"
	"fmt"
	"slices"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/types"

	"github.com/tide-run/tide/controlplane/reconciler"
	"github.com/tide-run/tide/controlplane/store"
)

// Finalizer names, Knative's (the eventing controller's finalizers for the same kinds).
const (
	TriggerFinalizer = "triggers.eventing.knative.dev"
	BrokerFinalizer  = "brokers.eventing.knative.dev"
)

// finalizerRetries bounds the re-reads after a conflict while removing a finalizer (status writes of the same
// object race with it); past it the reconcile fails and is retried.
const finalizerRetries = 10

// ensureFinalizer adds name to obj's finalizers unless it is there, and returns the stored object (its new
// resourceVersion is the precondition of the status write that follows).
func (r *Runtime) ensureFinalizer(obj *unstructured.Unstructured, name string) (*unstructured.Unstructured, error) {
	if slices.Contains(obj.GetFinalizers(), name) {
		return obj, nil
	}
	next := obj.DeepCopy()
	next.SetFinalizers(append(next.GetFinalizers(), name))
	out, err := r.st.Update(next)
	if err != nil {
		return nil, fmt.Errorf("adding finalizer %s to %s %s/%s: %w", name, obj.GetKind(), obj.GetNamespace(), obj.GetName(), err)
	}
	return out, nil
}

// removeFinalizer takes name out of the finalizers of the object gk/key with the given uid, if it is being deleted;
// taking the last one removes it (controlplane/store). A conflict re-reads the object; an object that is gone,
// replaced (another uid) or no longer carries name is left alone.
func (r *Runtime) removeFinalizer(gk string, key reconciler.Key, uid types.UID, name string) error {
	for attempt := 0; ; attempt++ {
		obj, err := r.st.Get(gk, key.Namespace, key.Name)
		if errors.Is(err, store.ErrNotFound) {
			return nil
		}
		if err != nil {
			return err
		}
		fins := obj.GetFinalizers()
		i := slices.Index(fins, name)
		if obj.GetUID() != uid || obj.GetDeletionTimestamp() == nil || i < 0 {
			return nil
		}
		obj.SetFinalizers(slices.Delete(slices.Clone(fins), i, i+1))
		_, err = r.st.Update(obj)
		switch {
		case errors.Is(err, store.ErrConflict) && attempt < finalizerRetries:
			continue
		case errors.Is(err, store.ErrNotFound):
			return nil
		case err != nil:
			return fmt.Errorf("removing finalizer %s from %s %s: %w", name, gk, key, err)
		}
		return nil
	}
}
