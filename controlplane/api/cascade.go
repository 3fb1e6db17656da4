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
//   - propagationPolicy Orphan (kubectl delete --cascade=orphan): the objects it owns lose their owner reference
//     to it and stay. Background and Foreground both delete them (tide deletes them in the same transaction, so
//     the two are indistinguishable here).
//   - deleting a Namespace deletes every object in it first (each with its own cascade and finalizers).

func isNamespaceKind(k registry.Kind) bool { return k.Group == "" && k.Kind == "Namespace" }

func (s *Server) beforeDelete(rt route, orphan bool) *apiError {
	target, err := s.st.Get(rt.kind.StorageGroupKind(), rt.namespace, rt.name)
	if err != nil {
		return storeError(rt.kind, rt.name, err)
	}
	if orphan {
		if aerr := s.orphanDependents(target); aerr != nil {
			return aerr
		}
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

func (s *Server) orphanDependents(owner *unstructured.Unstructured) *apiError {
	uid := owner.GetUID()
	for _, k := range s.storageKinds() {
		objs, _, err := s.st.List(k.StorageGroupKind(), owner.GetNamespace())
		if err != nil {
			return storeError(k, "", err)
		}
		for _, o := range objs {
			refs := o.GetOwnerReferences()
			kept := refs[:0:0]
			for _, ref := range refs {
				if string(ref.UID) != string(uid) {
					kept = append(kept, ref)
				}
			}
			if len(kept) == len(refs) {
				continue
			}
			o.SetOwnerReferences(kept)
			if len(kept) == 0 {
				unstructured.RemoveNestedField(o.Object, "metadata", "ownerReferences")
			}
			o.SetResourceVersion("") // no precondition: only the reference changes
			if _, err := s.st.Update(o); err != nil && !errors.Is(err, store.ErrNotFound) {
				return storeError(k, o.GetName(), err)
			}
		}
	}
	return nil
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
