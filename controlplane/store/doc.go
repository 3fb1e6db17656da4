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
//   - Deleting an object deletes, in the same transaction, every object that names it (transitively) in an
//     ownerReference.
//   - Watch events are published in resourceVersion order after their transaction commits; a watcher started from a
//     resourceVersion sees every later event exactly once, or gets ErrGone if the history no longer reaches back.
package store
