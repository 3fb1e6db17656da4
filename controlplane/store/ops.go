package store

import (
	"bytes"
	"errors"
	"fmt"
	"strconv"
	"time"

	bolt "go.etcd.io/bbolt"
	apivalidation "k8s.io/apimachinery/pkg/api/validation"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/util/validation/field"
)

// Get returns the object of kind gk (see GroupKindOf) in namespace ns with the given name.
func (s *Store) Get(gk, ns, name string) (*unstructured.Unstructured, error) {
	ns = s.namespaceFor(gk, ns)
	var out *unstructured.Unstructured
	err := s.db.View(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketObjects).Bucket([]byte(gk))
		var v []byte
		if b != nil {
			v = b.Get(objKey(ns, name))
		}
		if v == nil {
			return fmt.Errorf("%s %q: %w", gk, name, ErrNotFound)
		}
		var err error
		out, err = decode(v)
		return err
	})
	return out, err
}

// List returns the objects of kind gk in namespace ns ("" for every namespace), ordered by namespace then name, and
// the store's resourceVersion at the time of the list (watch from it to follow later changes).
func (s *Store) List(gk, ns string) ([]*unstructured.Unstructured, uint64, error) {
	var out []*unstructured.Unstructured
	var rv uint64
	err := s.db.View(func(tx *bolt.Tx) error {
		rv = readRV(tx.Bucket(bucketMeta))
		var err error
		out, err = listTx(tx, gk, ns)
		return err
	})
	return out, rv, err
}

func listTx(tx *bolt.Tx, gk, ns string) ([]*unstructured.Unstructured, error) {
	b := tx.Bucket(bucketObjects).Bucket([]byte(gk))
	if b == nil {
		return nil, nil
	}
	var out []*unstructured.Unstructured
	c := b.Cursor()
	var prefix []byte
	if ns != "" {
		prefix = []byte(ns + "\x00")
	}
	for k, v := c.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, v = c.Next() {
		u, err := decode(v)
		if err != nil {
			return nil, err
		}
		out = append(out, u)
	}
	return out, nil
}

// errNoChange rolls back a write transaction that changed nothing.
var errNoChange = errors.New("no change")

// write runs fn in one read-write transaction under s.mu and publishes the events fn returns after commit.
func (s *Store) write(fn func(tx *bolt.Tx) ([]Event, error)) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return ErrClosed
	}
	var events []Event
	err := s.db.Update(func(tx *bolt.Tx) error {
		var err error
		events, err = fn(tx)
		if err == nil && len(events) == 0 {
			return errNoChange // roll back: a commit would write and fsync a meta page for nothing
		}
		return err
	})
	if errors.Is(err, errNoChange) {
		return nil
	}
	if err != nil {
		return err
	}
	s.publishLocked(events)
	return nil
}

func put(tx *bolt.Tx, gk string, u *unstructured.Unstructured) error {
	b, err := tx.Bucket(bucketObjects).CreateBucketIfNotExists([]byte(gk))
	if err != nil {
		return err
	}
	v, err := encode(u)
	if err != nil {
		return err
	}
	return b.Put(objKey(u.GetNamespace(), u.GetName()), v)
}

func getTx(tx *bolt.Tx, gk, ns, name string) (*unstructured.Unstructured, error) {
	b := tx.Bucket(bucketObjects).Bucket([]byte(gk))
	var v []byte
	if b != nil {
		v = b.Get(objKey(ns, name))
	}
	if v == nil {
		return nil, fmt.Errorf("%s %q: %w", gk, name, ErrNotFound)
	}
	return decode(v)
}

// Create stores a new object. apiVersion, kind and a name (or metadata.generateName) are required; the namespace
// defaults to "default" for namespaced kinds. The store sets uid, generation 1, creationTimestamp and
// resourceVersion, and drops any status (status is written with UpdateStatus). It returns the stored object.
func (s *Store) Create(obj *unstructured.Unstructured) (*unstructured.Unstructured, error) {
	u := obj.DeepCopy()
	if u.GetAPIVersion() == "" || u.GetKind() == "" {
		return nil, fmt.Errorf("%w: apiVersion and kind are required", ErrInvalid)
	}
	gk := objGroupKind(u)
	u.SetNamespace(s.namespaceFor(gk, u.GetNamespace()))
	if u.GetName() == "" {
		if u.GetGenerateName() == "" {
			return nil, fmt.Errorf("%w: %s: metadata.name is required", ErrInvalid, gk)
		}
		u.SetName(u.GetGenerateName() + randomSuffix())
	}
	if u.GetResourceVersion() != "" {
		return nil, fmt.Errorf("%w: %s %q: resourceVersion should not be set on objects to be created", ErrInvalid, gk, u.GetName())
	}
	unstructured.RemoveNestedField(u.Object, "status")
	unstructured.RemoveNestedField(u.Object, "metadata", "deletionTimestamp")
	unstructured.RemoveNestedField(u.Object, "metadata", "deletionGracePeriodSeconds")
	// metadata.managedFields is kept: server-side apply (the API's field manager) writes it with the object.
	u.SetUID(typesUID(newUID()))
	u.SetGeneration(1)
	u.SetCreationTimestamp(metav1.NewTime(s.clock.Now().UTC().Truncate(time.Second)))
	err := s.write(func(tx *bolt.Tx) ([]Event, error) {
		if _, err := getTx(tx, gk, u.GetNamespace(), u.GetName()); err == nil {
			return nil, fmt.Errorf("%s %q: %w", gk, u.GetName(), ErrAlreadyExists)
		}
		return putNewVersion(tx, gk, u, Added)
	})
	if err != nil {
		return nil, err
	}
	return u, nil
}

// putNewVersion stamps u with the next resourceVersion, stores it and returns the one watch event of type t that
// the write publishes. The event carries a copy, so later changes to u do not reach watchers.
func putNewVersion(tx *bolt.Tx, gk string, u *unstructured.Unstructured, t EventType) ([]Event, error) {
	rv, err := nextRV(tx)
	if err != nil {
		return nil, err
	}
	u.SetResourceVersion(strconv.FormatUint(rv, 10))
	if err := put(tx, gk, u); err != nil {
		return nil, err
	}
	return []Event{{Type: t, Object: u.DeepCopy(), ResourceVersion: rv}}, nil
}

// checkPreconditions enforces optimistic concurrency: a non-empty resourceVersion or uid in the incoming object
// must match the stored one.
func checkPreconditions(gk string, stored, in *unstructured.Unstructured) error {
	if rv := in.GetResourceVersion(); rv != "" && rv != stored.GetResourceVersion() {
		return fmt.Errorf("%w: Operation cannot be fulfilled on %s %q: the object has been modified; please apply your changes to the latest version and try again (have resourceVersion %s, stored %s)",
			ErrConflict, gk, stored.GetName(), rv, stored.GetResourceVersion())
	}
	if uid := in.GetUID(); uid != "" && uid != stored.GetUID() {
		return fmt.Errorf("%w: %s %q: uid %s does not match the stored object's", ErrConflict, gk, stored.GetName(), uid)
	}
	return nil
}

// Update replaces an object's spec (everything outside metadata and status), labels, annotations, ownerReferences
// and finalizers. Status, uid and creationTimestamp are kept from the stored object; generation is bumped when the
// spec changed. A non-empty resourceVersion in obj must match (ErrConflict otherwise). An update that changes
// nothing returns the stored object unchanged (same resourceVersion, no event).
//
// On an object being deleted (metadata.deletionTimestamp set, see Delete) deletionTimestamp and
// deletionGracePeriodSeconds are kept as stored, whatever obj says; adding a finalizer is an *InvalidError
// (ErrInvalid) on metadata.finalizers; and an update that leaves no finalizers removes the object in the same
// transaction, cascading as Delete does (DELETED events), and returns it as last written, with the resourceVersion
// of its DELETED event.
func (s *Store) Update(obj *unstructured.Unstructured) (*unstructured.Unstructured, error) {
	return s.modify(obj, func(stored, in *unstructured.Unstructured) *unstructured.Unstructured {
		next := &unstructured.Unstructured{Object: map[string]any{}}
		for k, v := range in.Object {
			if k != "metadata" && k != "status" {
				next.Object[k] = v
			}
		}
		if st, ok := stored.Object["status"]; ok {
			next.Object["status"] = st
		}
		md, _ := stored.Object["metadata"].(map[string]any)
		next.Object["metadata"] = runtimeDeepCopy(md)
		next.SetLabels(in.GetLabels())
		next.SetAnnotations(in.GetAnnotations())
		next.SetOwnerReferences(in.GetOwnerReferences())
		next.SetFinalizers(in.GetFinalizers())
		// managedFields are the API's field manager's (it computes them for every write); a writer that sends
		// none keeps the stored ones, as the API server does for clients that do not know the field.
		if inMeta, _ := in.Object["metadata"].(map[string]any); inMeta != nil {
			if mf, ok := inMeta["managedFields"]; ok {
				next.Object["metadata"].(map[string]any)["managedFields"] = mf
			}
		}
		if !bytes.Equal(specOf(stored.Object), specOf(next.Object)) {
			next.SetGeneration(stored.GetGeneration() + 1)
		}
		if sameJSON(stored.Object, next.Object) {
			return nil
		}
		return next
	})
}

// UpdateStatus replaces only the status of an object (the status subresource): generation and everything else stay.
// A non-empty resourceVersion in obj must match. An unchanged status is a no-op. Finalizers and the deletion stamp
// are metadata, so a status update never starts or ends a deletion.
func (s *Store) UpdateStatus(obj *unstructured.Unstructured) (*unstructured.Unstructured, error) {
	return s.modify(obj, func(stored, in *unstructured.Unstructured) *unstructured.Unstructured {
		st, has := in.Object["status"]
		if sameJSON(stored.Object["status"], st) {
			return nil
		}
		next := stored.DeepCopy()
		if has {
			next.Object["status"] = st
		} else {
			delete(next.Object, "status")
		}
		return next
	})
}

// modify is the read-check-write of Update and UpdateStatus, in one transaction: it loads the stored object that
// obj names, checks obj's preconditions, and stores what change makes of them as a new version (a Modified event).
// change gets a copy of obj and returns nil for a no-op: then the stored object is returned as is, with no event.
func (s *Store) modify(obj *unstructured.Unstructured, change func(stored, in *unstructured.Unstructured) *unstructured.Unstructured) (*unstructured.Unstructured, error) {
	in := obj.DeepCopy()
	gk := objGroupKind(in)
	ns := s.namespaceFor(gk, in.GetNamespace())
	var out *unstructured.Unstructured
	err := s.write(func(tx *bolt.Tx) ([]Event, error) {
		stored, err := getTx(tx, gk, ns, in.GetName())
		if err != nil {
			return nil, err
		}
		if err := checkPreconditions(gk, stored, in); err != nil {
			return nil, err
		}
		next := change(stored, in)
		if next == nil {
			out = stored
			return nil, nil
		}
		out = next
		if dt := stored.GetDeletionTimestamp(); dt != nil {
			// Being deleted: the deletion stamp stays whatever the body says, finalizers can only go, and the
			// update that takes the last one away removes the object (and cascades) instead of storing it.
			next.SetDeletionTimestamp(dt)
			next.SetDeletionGracePeriodSeconds(stored.GetDeletionGracePeriodSeconds())
			path := field.NewPath("metadata", "finalizers")
			if errs := apivalidation.ValidateNoNewFinalizers(next.GetFinalizers(), stored.GetFinalizers(), path); len(errs) > 0 {
				return nil, &InvalidError{GroupKind: gk, Name: stored.GetName(), Errs: errs}
			}
			if len(next.GetFinalizers()) == 0 {
				return s.removeCascading(tx, next)
			}
		}
		return putNewVersion(tx, gk, next, Modified)
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// DeleteOptions are preconditions for Delete (empty fields are not checked) and the propagation policy.
type DeleteOptions struct {
	ResourceVersion string
	UID             string
	// Propagation: "" or PropagateBackground, PropagateForeground, PropagateOrphan (propagation.go).
	Propagation Propagation
}

// Delete deletes an object, as the Kubernetes API server does with background propagation (opts.Propagation
// chooses foreground or orphan instead: propagation.go):
//
//   - An object with metadata.finalizers is not removed: Delete marks it, setting metadata.deletionTimestamp (the
//     store's clock) and metadata.deletionGracePeriodSeconds 0 as a new version (a MODIFIED event), and returns it.
//     It is removed by the update that takes its last finalizer away (see Update). Deleting an object that is
//     already marked changes nothing and returns it as stored.
//   - Any other object is removed together with, in the same transaction, every object it owns (transitively,
//     through ownerReferences uids). Dependents are removed before their owners, each as a DELETED event with its
//     own resourceVersion. A dependent that has finalizers is marked instead of removed (MODIFIED), and its own
//     dependents stay until it goes. Delete returns the removed object.
func (s *Store) Delete(gk, ns, name string, opts DeleteOptions) (*unstructured.Unstructured, error) {
	ns = s.namespaceFor(gk, ns)
	var out *unstructured.Unstructured
	err := s.write(func(tx *bolt.Tx) ([]Event, error) {
		stored, err := getTx(tx, gk, ns, name)
		if err != nil {
			return nil, err
		}
		pre := &unstructured.Unstructured{Object: map[string]any{}}
		pre.SetResourceVersion(opts.ResourceVersion)
		pre.SetUID(typesUID(opts.UID))
		if err := checkPreconditions(gk, stored, pre); err != nil {
			return nil, err
		}
		var events []Event
		switch opts.Propagation {
		case PropagateForeground:
			events, err = s.deleteForeground(tx, stored)
		case PropagateOrphan:
			events, err = s.orphan(tx, stored)
		case "", PropagateBackground:
			events, err = s.deleteBackground(tx, stored)
		default:
			return nil, fmt.Errorf("%w: unknown propagation policy %q", ErrInvalid, opts.Propagation)
		}
		if err != nil {
			return nil, err
		}
		// The object as last written: marked (it stays) or with the resourceVersion of its DELETED event.
		out = stored.DeepCopy()
		for _, e := range events {
			if e.Object.GetUID() == stored.GetUID() {
				out = e.Object.DeepCopy()
			}
		}
		return events, nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// markDeleting stamps u as being deleted: deletionTimestamp now, deletionGracePeriodSeconds 0 (what the API server
// sets for kinds without graceful deletion, which is every kind tide stores).
func (s *Store) markDeleting(u *unstructured.Unstructured) {
	now := metav1.NewTime(s.clock.Now().UTC().Truncate(time.Second))
	u.SetDeletionTimestamp(&now)
	zero := int64(0)
	u.SetDeletionGracePeriodSeconds(&zero)
}

// removeCascading removes root (whatever its finalizers: the caller decided) and its dependents as Delete
// describes, and returns the events in resourceVersion order. root's resourceVersion is set to that of its
// DELETED event, the last one.
func (s *Store) removeCascading(tx *bolt.Tx, root *unstructured.Unstructured) ([]Event, error) {
	doomed, err := cascade(tx, root)
	if err != nil {
		return nil, err
	}
	var events []Event
	for _, d := range doomed {
		gk := objGroupKind(d.obj)
		if !d.remove {
			if d.obj.GetDeletionTimestamp() != nil {
				continue // already being deleted
			}
			s.markDeleting(d.obj)
			ev, err := putNewVersion(tx, gk, d.obj, Modified)
			if err != nil {
				return nil, err
			}
			events = append(events, ev...)
			continue
		}
		rv, err := nextRV(tx)
		if err != nil {
			return nil, err
		}
		if err := tx.Bucket(bucketObjects).Bucket([]byte(gk)).Delete(objKey(d.obj.GetNamespace(), d.obj.GetName())); err != nil {
			return nil, err
		}
		d.obj.SetResourceVersion(strconv.FormatUint(rv, 10))
		events = append(events, Event{Type: Deleted, Object: d.obj.DeepCopy(), ResourceVersion: rv})
	}
	for _, d := range doomed {
		if !d.remove {
			continue
		}
		evs, err := s.releaseOwners(tx, d.obj)
		if err != nil {
			return nil, err
		}
		events = append(events, evs...)
	}
	return events, nil
}

// doomedObject is one step of a cascading delete: remove the object, or (it has finalizers) mark it being deleted.
type doomedObject struct {
	obj    *unstructured.Unstructured
	remove bool
}

// cascade returns root (to be removed) and what it owns transitively, dependents first (post-order), each object
// once. A dependent with finalizers is to be marked, not removed, and the walk does not go below it: its
// dependents still have an owner.
func cascade(tx *bolt.Tx, root *unstructured.Unstructured) ([]doomedObject, error) {
	// One pass collects owner uid -> dependents; ownership graphs here are small.
	children := map[string][]*unstructured.Unstructured{}
	err := tx.Bucket(bucketObjects).ForEachBucket(func(gk []byte) error {
		return tx.Bucket(bucketObjects).Bucket(gk).ForEach(func(_, v []byte) error {
			u, err := decode(v)
			if err != nil {
				return err
			}
			for _, ref := range u.GetOwnerReferences() {
				children[string(ref.UID)] = append(children[string(ref.UID)], u)
			}
			return nil
		})
	})
	if err != nil {
		return nil, err
	}
	seen := map[string]bool{}
	var out []doomedObject
	var visit func(u *unstructured.Unstructured, isRoot bool)
	visit = func(u *unstructured.Unstructured, isRoot bool) {
		if seen[string(u.GetUID())] {
			return
		}
		seen[string(u.GetUID())] = true
		if !isRoot && len(u.GetFinalizers()) > 0 {
			out = append(out, doomedObject{obj: u})
			return
		}
		for _, c := range children[string(u.GetUID())] {
			visit(c, false)
		}
		out = append(out, doomedObject{obj: u, remove: true})
	}
	visit(root, true)
	return out, nil
}
