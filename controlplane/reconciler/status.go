package reconciler

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/utils/clock"

	"github.com/tide-run/tide/controlplane/store"
)

// FromUnstructured decodes a stored object into a typed Go value (e.g. *servingv1.Service).
func FromUnstructured(u *unstructured.Unstructured, into any) error {
	// Through JSON rather than runtime's reflection converter, so types with their own JSON encoding (apis.URL,
	// VolatileTime) round-trip exactly as they do over the API.
	if err := FromUnstructuredMap(u.Object, into); err != nil {
		return fmt.Errorf("decode %s %s: %w", u.GetKind(), u.GetName(), err)
	}
	return nil
}

// GetTyped reads an object from the store and decodes it into a T (e.g. servingv1.Configuration). A store error,
// such as store.ErrNotFound, is returned as is.
func GetTyped[T any](st *store.Store, gk, namespace, name string) (*T, error) {
	u, err := st.Get(gk, namespace, name)
	if err != nil {
		return nil, err
	}
	v := new(T)
	if err := FromUnstructured(u, v); err != nil {
		return nil, err
	}
	return v, nil
}

// ToUnstructured encodes a typed Go value as an unstructured object.
func ToUnstructured(obj any) (*unstructured.Unstructured, error) {
	b, err := json.Marshal(obj)
	if err != nil {
		return nil, err
	}
	u := &unstructured.Unstructured{}
	if err := u.UnmarshalJSON(b); err != nil {
		return nil, err
	}
	return u, nil
}

// StatusWriter writes status subresources the Knative way. Clock stamps lastTransitionTime.
type StatusWriter struct {
	Store *store.Store
	Clock clock.PassiveClock
}

// Write sets current's status to status (any JSON-shaped value: a typed Knative status, or a map) and stores it,
// unless nothing changed. Conditions keep their lastTransitionTime when their status, reason and message are
// unchanged, and get the writer's clock time otherwise (Knative's ConditionManager stamps the wall clock; this
// makes it the injected one). current's resourceVersion is a precondition (ErrConflict on a concurrent write, and
// the reconcile is retried). It returns the stored object.
func (w StatusWriter) Write(current *unstructured.Unstructured, status any) (*unstructured.Unstructured, error) {
	b, err := json.Marshal(status)
	if err != nil {
		return nil, err
	}
	var next map[string]any
	if err := json.Unmarshal(b, &next); err != nil {
		return nil, err
	}
	prev, _ := current.Object["status"].(map[string]any)
	stampConditions(prev, next, w.Clock.Now())
	if sameJSON(prev, next) {
		return current, nil
	}
	obj := current.DeepCopy()
	obj.Object["status"] = next
	out, err := w.Store.UpdateStatus(obj)
	if err != nil {
		return nil, fmt.Errorf("update status of %s %s: %w", current.GetKind(), current.GetName(), err)
	}
	return out, nil
}

func sameJSON(a, b any) bool {
	ab, _ := json.Marshal(a)
	bb, _ := json.Marshal(b)
	return bytes.Equal(ab, bb)
}

// stampConditions sets lastTransitionTime of each condition in next: the previous one when type, status, reason,
// message and severity are unchanged, now otherwise.
func stampConditions(prev, next map[string]any, now time.Time) {
	nextConds, _ := next["conditions"].([]any)
	if len(nextConds) == 0 {
		return
	}
	old := map[string]map[string]any{}
	if pc, ok := prev["conditions"].([]any); ok {
		for _, c := range pc {
			if cm, ok := c.(map[string]any); ok {
				t, _ := cm["type"].(string)
				old[t] = cm
			}
		}
	}
	stamp := metav1.NewTime(now.UTC().Truncate(time.Second)).UTC().Format(time.RFC3339)
	for _, c := range nextConds {
		cm, ok := c.(map[string]any)
		if !ok {
			continue
		}
		t, _ := cm["type"].(string)
		if o, ok := old[t]; ok && o["status"] == cm["status"] && o["reason"] == cm["reason"] &&
			o["message"] == cm["message"] && o["severity"] == cm["severity"] && o["lastTransitionTime"] != nil {
			cm["lastTransitionTime"] = o["lastTransitionTime"]
		} else {
			cm["lastTransitionTime"] = stamp
		}
	}
}

// IgnoreNotFound returns nil for store.ErrNotFound (the object was deleted: nothing to do).
func IgnoreNotFound(err error) error {
	if errors.Is(err, store.ErrNotFound) {
		return nil
	}
	return err
}

// FromUnstructuredMap decodes a JSON-shaped map into a typed value.
func FromUnstructuredMap(m map[string]any, into any) error {
	b, err := json.Marshal(m)
	if err != nil {
		return err
	}
	return json.Unmarshal(b, into)
}
