package client

import (
	"context"
	"fmt"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
)

// Action is what apply did to an object, as kubectl reports it.
type Action string

// Apply actions.
const (
	Created    Action = "created"
	Configured Action = "configured"
	Unchanged  Action = "unchanged"
)

// ApplyResult describes one applied object.
type ApplyResult struct {
	Kind     Kind
	Object   *unstructured.Unstructured // as stored
	Action   Action
	Warnings []string
}

// Apply creates obj or replaces the stored object's spec, labels and annotations with obj's (and its finalizers
// when obj has metadata.finalizers; else the stored ones stay); an update that changes nothing is reported
// Unchanged. Conflicts with concurrent writers are retried. defaultNamespace fills an empty
// namespace of namespaced kinds.
func (c *Client) Apply(ctx context.Context, obj *unstructured.Unstructured, defaultNamespace string) (ApplyResult, error) {
	k, err := c.KindFor(ctx, obj.GetAPIVersion(), obj.GetKind())
	if err != nil {
		return ApplyResult{}, err
	}
	obj = obj.DeepCopy()
	// A document exported from a server (tide get -o yaml) carries server-set metadata and status; they describe
	// another object's history, not what the user wants, so they are not sent.
	for _, f := range []string{"resourceVersion", "uid", "creationTimestamp", "generation", "managedFields"} {
		unstructured.RemoveNestedField(obj.Object, "metadata", f)
	}
	delete(obj.Object, "status")
	if k.Namespaced {
		if obj.GetNamespace() == "" {
			obj.SetNamespace(nsFor(k, defaultNamespace))
		}
	} else {
		obj.SetNamespace("")
	}
	for attempt := 0; ; attempt++ {
		existing, err := c.Get(ctx, k, obj.GetNamespace(), obj.GetName())
		switch {
		case IsNotFound(err):
			created, warnings, err := c.Create(ctx, k, obj)
			if IsAlreadyExists(err) && attempt < 5 {
				continue
			}
			if err != nil {
				return ApplyResult{}, err
			}
			return ApplyResult{Kind: k, Object: created, Action: Created, Warnings: warnings}, nil
		case err != nil:
			return ApplyResult{}, err
		}
		next := obj.DeepCopy()
		next.SetResourceVersion(existing.GetResourceVersion())
		if _, set, _ := unstructured.NestedFieldNoCopy(obj.Object, "metadata", "finalizers"); !set {
			// Finalizers are mostly added by controllers (tide's eventing runtime, as Knative's); a document that
			// does not mention them leaves them alone, as kubectl apply's merge does. Sent without them, the PUT
			// would drop them, and on an object being deleted remove it.
			next.SetFinalizers(existing.GetFinalizers())
		}
		updated, warnings, err := c.Update(ctx, k, next)
		if (IsConflict(err) || IsNotFound(err)) && attempt < 5 {
			continue
		}
		if err != nil {
			return ApplyResult{}, err
		}
		action := Configured
		if updated.GetResourceVersion() == existing.GetResourceVersion() {
			action = Unchanged
		}
		return ApplyResult{Kind: k, Object: updated, Action: action, Warnings: warnings}, nil
	}
}

// Describe returns "kind/name" the way kubectl prints applied objects ("service.serving.knative.dev/hello").
func (r ApplyResult) Describe() string {
	return fmt.Sprintf("%s/%s", qualifiedSingular(r.Kind), r.Object.GetName())
}

func qualifiedSingular(k Kind) string {
	if k.Group == "" {
		return k.Singular
	}
	return k.Singular + "." + k.Group
}
