package reconciler

import (
	"context"

	"knative.dev/pkg/apis"
	duckv1 "knative.dev/pkg/apis/duck/v1"

	"github.com/tide-run/tide/controlplane/store"
)

// ReasonNotImplemented is the Ready reason of kinds whose subsystem is not part of this build yet.
const ReasonNotImplemented = "NotImplemented"

// NotImplemented is the default reconciler for an acted-on kind whose subsystem does not exist yet: it sets
// Ready=False, reason NotImplemented, and observedGeneration, keeping any other status fields. It never claims
// Ready.
type NotImplemented struct {
	Store     *store.Store
	Status    StatusWriter
	GroupKind string
	// Message explains what is missing ("the eventing data plane is not part of this build").
	Message string
}

// Reconcile implements Reconciler.
func (r NotImplemented) Reconcile(_ context.Context, key Key) error {
	obj, err := r.Store.Get(r.GroupKind, key.Namespace, key.Name)
	if err != nil {
		return IgnoreNotFound(err)
	}
	status := map[string]any{}
	if st, ok := obj.Object["status"].(map[string]any); ok {
		for k, v := range st {
			status[k] = v
		}
	}
	var duck duckv1.Status
	if err := FromUnstructuredMap(status, &duck); err != nil {
		return err
	}
	mgr := apis.NewLivingConditionSet().Manage(&duck)
	mgr.MarkFalse(apis.ConditionReady, ReasonNotImplemented, "%s", r.Message)
	duck.ObservedGeneration = obj.GetGeneration()
	status["conditions"] = duck.Conditions
	status["observedGeneration"] = duck.ObservedGeneration
	_, err = r.Status.Write(obj, status)
	return err
}
