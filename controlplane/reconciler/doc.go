// Package reconciler is tide's level-triggered controller framework. A Manager runs, per registered kind, a
// rate-limited work queue (k8s.io/client-go/util/workqueue) fed by store watches: every object is enqueued once at
// start (resync), then on every change; changes to owned kinds enqueue their owner. Workers call
// Reconciler.Reconcile(ctx, key); an error requeues the key with exponential backoff.
//
// Status helpers write Knative-shaped status: conditions managed with knative.dev/pkg/apis ConditionSets (Ready on
// top), lastTransitionTime from the injected clock and kept when a condition does not change, observedGeneration.
// A status write that changes nothing is skipped, so reconciling a settled object causes no further events.
//
// NotImplemented is the default reconciler for acted-on kinds whose subsystem does not exist yet: Ready=False with
// reason NotImplemented, never Ready.
package reconciler
