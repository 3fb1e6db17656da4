package runtime

import (
	"errors"
	"fmt"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"knative.dev/pkg/apis"
	duckv1 "knative.dev/pkg/apis/duck/v1"

	"github.com/tide-run/tide/controlplane/store"
)

// ErrUnresolved wraps every reason a Destination has no URL (yet).
var ErrUnresolved = errors.New("destination not resolved")

// Resolve turns a Knative Destination into a URL the way Knative's resolver does: a ref to a
// serving.knative.dev Service gives its status.address.url (or status.url); a ref to anything else gives its
// status.address.url (Brokers, and any Addressable); a uri alone must be absolute; a uri with a ref is resolved
// against the ref's URL. namespace fills an empty ref namespace.
func (r *Runtime) Resolve(namespace string, d duckv1.Destination) (*apis.URL, error) {
	if d.Ref == nil {
		if d.URI == nil || !d.URI.URL().IsAbs() {
			return nil, fmt.Errorf("%w: uri must be an absolute URL when no ref is given", ErrUnresolved)
		}
		return d.URI, nil
	}
	ns := d.Ref.Namespace
	if ns == "" {
		ns = namespace
	}
	gk := store.GroupKindOf(d.Ref.APIVersion, d.Ref.Kind)
	obj, err := r.st.Get(gk, ns, d.Ref.Name)
	if err != nil {
		if errors.Is(err, store.ErrNotFound) {
			return nil, fmt.Errorf("%w: %s %s/%s not found", ErrUnresolved, d.Ref.Kind, ns, d.Ref.Name)
		}
		return nil, fmt.Errorf("%w: %s %s/%s: %w", ErrUnresolved, d.Ref.Kind, ns, d.Ref.Name, err)
	}
	base := addressOf(obj, gk == GKService)
	if base == nil {
		return nil, fmt.Errorf("%w: %s %s/%s has no status.address.url yet (not ready or not addressable)", ErrUnresolved, d.Ref.Kind, ns, d.Ref.Name)
	}
	if d.URI != nil {
		return base.ResolveReference(d.URI), nil
	}
	return base, nil
}

func addressOf(obj *unstructured.Unstructured, service bool) *apis.URL {
	s, _, _ := unstructured.NestedString(obj.Object, "status", "address", "url")
	if s == "" && service {
		s, _, _ = unstructured.NestedString(obj.Object, "status", "url")
	}
	if s == "" {
		return nil
	}
	u, err := apis.ParseURL(s)
	if err != nil || u == nil || !u.URL().IsAbs() {
		return nil
	}
	return u
}
