// Package store is tide's durable object store: Kubernetes-shaped objects (unstructured JSON) in a bbolt database
// in the data dir, with the metadata semantics of a Kubernetes API server and a watch stream for in-process
// consumers and the HTTP API.
//
// Invariants:
//   - Every write (create, update, status update, cascading delete) is one bbolt read-write transaction, fsynced on
//     commit, so a crash at any moment leaves either the whole write or none of it.
//   - resourceVersion is a single counter for the whole store, bumped once per write and persisted in the same
//     transaction; objects carry the counter value of their last write. A write whose resourceVersion does not match
//     the stored one fails with ErrConflict. A write that changes nothing is a no-op and does not bump it.
//   - generation starts at 1 and is bumped only when something other than metadata and status changes (the spec, or
//     data for Secrets and ConfigMaps). Update never touches status; UpdateStatus touches only status.
//   - An object with metadata.finalizers is never removed. Deleting it only marks it (deletionTimestamp and
//     deletionGracePeriodSeconds 0, a MODIFIED event); a marked object keeps its deletionTimestamp and gains no
//     finalizer; the update that takes its last finalizer away removes it in that same transaction. So no stored
//     object has a deletionTimestamp and no finalizers.
//   - Removing an object removes, in the same transaction, every object that names it (transitively) in an
//     ownerReference, except that a dependent with finalizers is marked instead, and what it owns stays until it
//     is removed in its turn.
//   - Watch events are published in resourceVersion order after their transaction commits; a watcher started from a
//     resourceVersion sees every later event exactly once, or gets ErrGone if the history no longer reaches back.
package store
