package api

import (
	"errors"
	"fmt"
	"net/http"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/tide-run/tide/controlplane/registry"
	"github.com/tide-run/tide/controlplane/store"
)

// What a delete does besides removing the object, as a cluster's garbage collector and namespace controller do:
//
//   - propagationPolicy (kubectl delete --cascade=background|foreground|orphan; the deprecated orphanDependents):
//     the store carries it out in the delete's transaction (controlplane/store's propagation.go): Background
//     deletes what the object owns with it, Foreground keeps the object (deletionTimestamp, finalizer
//     "foregroundDeletion") until its blocking dependents are gone, Orphan strips their owner references.
//   - deleting a Namespace deletes every object in it first (each with its own cascade and finalizers).

func isNamespaceKind(k registry.Kind) bool { return k.Group == "" && k.Kind == "Namespace" }

// propagationOf is the store's policy for opts: Background unless Foreground or Orphan (or orphanDependents).
func propagationOf(opts *metav1.DeleteOptions) store.Propagation {
	if opts.PropagationPolicy != nil {
		return store.Propagation(*opts.PropagationPolicy)
	}
	if opts.OrphanDependents != nil && *opts.OrphanDependents {
		return store.PropagateOrphan
	}
	return store.PropagateBackground
}

func (s *Server) beforeDelete(rt route) *apiError {
	if _, err := s.st.Get(rt.kind.StorageGroupKind(), rt.namespace, rt.name); err != nil {
		return storeError(rt.kind, rt.name, err)
	}
	if isNamespaceKind(rt.kind) {
		return s.emptyNamespace(rt.name)
	}
	return nil
}

// storageKinds are the registered kinds that have their own objects in the store (no StoredAs aliases).
func (s *Server) storageKinds() []registry.Kind {
	var out []registry.Kind
	for _, k := range s.reg.Kinds() {
		if k.StoredAs == "" {
			out = append(out, k)
		}
	}
	return out
}

// emptyNamespace deletes every namespaced object in ns (owners first is not needed: each delete cascades and an
// object already gone with its owner is skipped).
func (s *Server) emptyNamespace(ns string) *apiError {
	for _, k := range s.storageKinds() {
		if !k.Namespaced {
			continue
		}
		objs, _, err := s.st.List(k.StorageGroupKind(), ns)
		if err != nil {
			return storeError(k, "", err)
		}
		for _, o := range objs {
			if _, err := s.st.Delete(k.StorageGroupKind(), ns, o.GetName(), store.DeleteOptions{}); err != nil && !errors.Is(err, store.ErrNotFound) {
				return &apiError{code: http.StatusInternalServerError, reason: metav1.StatusReasonInternalError,
					message: fmt.Sprintf("deleting namespace %q: %s %q: %v", ns, resourceName(k), o.GetName(), err)}
			}
		}
	}
	return nil
}

// afterCreate gives a new Namespace its status.phase Active, as the API server's namespace strategy does (the
// store keeps status out of a create).
func (s *Server) afterCreate(k registry.Kind, obj *unstructured.Unstructured) *unstructured.Unstructured {
	if !isNamespaceKind(k) {
		return obj
	}
	if phase, _, _ := unstructured.NestedString(obj.Object, "status", "phase"); phase != "" {
		return obj
	}
	next := obj.DeepCopy()
	_ = unstructured.SetNestedField(next.Object, "Active", "status", "phase")
	if stored, err := s.st.UpdateStatus(next); err == nil {
		return stored
	}
	return obj
}
