package store

import (
	"errors"
	"slices"

	bolt "go.etcd.io/bbolt"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
)

// Deletion propagation, as a cluster's API server and garbage collector do it, in one transaction instead of
// asynchronously (tide has no separate collector; the end states are the same):
//
//   - Background (the default): the object goes at once; what it owns goes with it (Delete's cascade).
//   - Foreground: an object that owns others stays, marked (deletionTimestamp) with the finalizer
//     "foregroundDeletion", while its dependents are deleted (those that own objects in turn foreground too,
//     the others in the background). When no dependent whose owner reference has blockOwnerDeletion is left, the
//     finalizer is removed, and the object goes unless other finalizers hold it. A dependent that a finalizer
//     keeps therefore keeps its owners in place, up the chain, until the finalizer is removed (Update then
//     releases them).
//   - Orphan: the object's dependents lose their owner reference to it and stay; the object goes.
//
// Invariant: an object carrying "foregroundDeletion" is marked being deleted and still has at least one blocking
// dependent; every removal re-checks the removed object's owners (releaseOwners), so none waits forever.

// Propagation is a deletion propagation policy (Kubernetes' metav1.DeletionPropagation).
type Propagation string

// The propagation policies Delete accepts; "" is Background.
const (
	PropagateBackground Propagation = "Background"
	PropagateForeground Propagation = "Foreground"
	PropagateOrphan     Propagation = "Orphan"
)

// FinalizerDeleteDependents is the finalizer that holds an object during a foreground deletion (Kubernetes'
// metav1.FinalizerDeleteDependents).
const FinalizerDeleteDependents = metav1.FinalizerDeleteDependents

// dependentsOf returns every stored object with an owner reference to uid.
func dependentsOf(tx *bolt.Tx, uid string) ([]*unstructured.Unstructured, error) {
	var out []*unstructured.Unstructured
	err := tx.Bucket(bucketObjects).ForEachBucket(func(gk []byte) error {
		return tx.Bucket(bucketObjects).Bucket(gk).ForEach(func(_, v []byte) error {
			u, err := decode(v)
			if err != nil {
				return err
			}
			for _, ref := range u.GetOwnerReferences() {
				if string(ref.UID) == uid {
					out = append(out, u)
					break
				}
			}
			return nil
		})
	})
	return out, err
}

// blocked reports whether some stored object's owner reference to uid has blockOwnerDeletion.
func blocked(tx *bolt.Tx, uid string) (bool, error) {
	deps, err := dependentsOf(tx, uid)
	if err != nil {
		return false, err
	}
	for _, d := range deps {
		for _, ref := range d.GetOwnerReferences() {
			if string(ref.UID) == uid && ref.BlockOwnerDeletion != nil && *ref.BlockOwnerDeletion {
				return true, nil
			}
		}
	}
	return false, nil
}

// current re-reads u in tx; nil when it is gone or was replaced by another object of the same name.
func current(tx *bolt.Tx, u *unstructured.Unstructured) (*unstructured.Unstructured, error) {
	cur, err := getTx(tx, objGroupKind(u), u.GetNamespace(), u.GetName())
	if errors.Is(err, ErrNotFound) || (err == nil && cur.GetUID() != u.GetUID()) {
		return nil, nil
	}
	return cur, err
}

// deleteBackground marks u when finalizers hold it, else removes it and what it owns.
func (s *Store) deleteBackground(tx *bolt.Tx, u *unstructured.Unstructured) ([]Event, error) {
	if len(u.GetFinalizers()) > 0 {
		if u.GetDeletionTimestamp() != nil {
			return nil, nil
		}
		s.markDeleting(u)
		return putNewVersion(tx, objGroupKind(u), u, Modified)
	}
	return s.removeCascading(tx, u)
}

// deleteForeground deletes u's dependents and keeps u, marked with FinalizerDeleteDependents, until the blocking
// ones are gone.
func (s *Store) deleteForeground(tx *bolt.Tx, u *unstructured.Unstructured) ([]Event, error) {
	deps, err := dependentsOf(tx, string(u.GetUID()))
	if err != nil {
		return nil, err
	}
	if len(deps) == 0 {
		return s.deleteBackground(tx, u)
	}
	if !slices.Contains(u.GetFinalizers(), FinalizerDeleteDependents) {
		u.SetFinalizers(append(u.GetFinalizers(), FinalizerDeleteDependents))
	}
	if u.GetDeletionTimestamp() == nil {
		s.markDeleting(u)
	}
	events, err := putNewVersion(tx, objGroupKind(u), u, Modified)
	if err != nil {
		return nil, err
	}
	for _, d := range deps {
		cur, err := current(tx, d) // an earlier step may have removed it
		if err != nil {
			return nil, err
		}
		if cur == nil {
			continue
		}
		var evs []Event
		if sub, err := dependentsOf(tx, string(cur.GetUID())); err != nil {
			return nil, err
		} else if len(sub) > 0 {
			evs, err = s.deleteForeground(tx, cur)
			if err != nil {
				return nil, err
			}
		} else if evs, err = s.deleteBackground(tx, cur); err != nil {
			return nil, err
		}
		events = append(events, evs...)
	}
	// Removing the last blocking dependent has released u already; otherwise (none blocked) release it now.
	cur, err := current(tx, u)
	if err != nil || cur == nil {
		return events, err
	}
	evs, err := s.releaseIfDone(tx, cur)
	return append(events, evs...), err
}

// orphan removes u's uid from its dependents' owner references, then deletes u (they no longer cascade).
func (s *Store) orphan(tx *bolt.Tx, u *unstructured.Unstructured) ([]Event, error) {
	uid := string(u.GetUID())
	deps, err := dependentsOf(tx, uid)
	if err != nil {
		return nil, err
	}
	var events []Event
	for _, d := range deps {
		refs := d.GetOwnerReferences()
		kept := slices.DeleteFunc(slices.Clone(refs), func(r metav1.OwnerReference) bool { return string(r.UID) == uid })
		if len(kept) == 0 {
			unstructured.RemoveNestedField(d.Object, "metadata", "ownerReferences")
		} else {
			d.SetOwnerReferences(kept)
		}
		evs, err := putNewVersion(tx, objGroupKind(d), d, Modified)
		if err != nil {
			return nil, err
		}
		events = append(events, evs...)
	}
	evs, err := s.deleteBackground(tx, u)
	return append(events, evs...), err
}

// releaseOwners is the collector's step after removed went: each owner waiting in a foreground deletion is
// released when nothing blocks it any more.
func (s *Store) releaseOwners(tx *bolt.Tx, removed *unstructured.Unstructured) ([]Event, error) {
	var events []Event
	for _, ref := range removed.GetOwnerReferences() {
		gk := GroupKindOf(ref.APIVersion, ref.Kind)
		owner, err := getTx(tx, gk, s.namespaceFor(gk, removed.GetNamespace()), ref.Name)
		if errors.Is(err, ErrNotFound) {
			continue
		}
		if err != nil {
			return nil, err
		}
		if owner.GetUID() != ref.UID || owner.GetDeletionTimestamp() == nil ||
			!slices.Contains(owner.GetFinalizers(), FinalizerDeleteDependents) {
			continue
		}
		evs, err := s.releaseIfDone(tx, owner)
		if err != nil {
			return nil, err
		}
		events = append(events, evs...)
	}
	return events, nil
}

// releaseIfDone removes FinalizerDeleteDependents from owner when no blocking dependent is left, and removes
// owner when that was its last finalizer.
func (s *Store) releaseIfDone(tx *bolt.Tx, owner *unstructured.Unstructured) ([]Event, error) {
	if !slices.Contains(owner.GetFinalizers(), FinalizerDeleteDependents) {
		return nil, nil
	}
	if b, err := blocked(tx, string(owner.GetUID())); err != nil || b {
		return nil, err
	}
	fins := slices.DeleteFunc(owner.GetFinalizers(), func(f string) bool { return f == FinalizerDeleteDependents })
	if len(fins) == 0 {
		unstructured.RemoveNestedField(owner.Object, "metadata", "finalizers")
		return s.removeCascading(tx, owner)
	}
	owner.SetFinalizers(fins)
	return putNewVersion(tx, objGroupKind(owner), owner, Modified)
}
