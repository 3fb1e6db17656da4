// Package activator holds requests for a revision that has no capacity and releases them to instances as they
// become ready, the job Knative's activator does, plus the per-instance containerConcurrency limit and queue that
// Knative's queue-proxy enforces, in-process.
//
// A Throttler per revision hands out slots on ready backends: a request takes the least-loaded backend below
// containerConcurrency at once, or waits in a FIFO queue. The queue's bound depends on who would hold the request
// in Knative:
//
//   - activator mode (no ready backend, or the autoscaler put the activator in the path because burst capacity is
//     short): up to Options.QueueDepth (default 10000, Knative's activator breaker depth) requests wait, and the
//     autoscaler is poked the moment the queue starts, so scale-from-zero does not wait for the next tick;
//   - queue-proxy mode (ready backends, activator out of the path): up to 10 x containerConcurrency per ready
//     backend wait; one more is refused with ErrQueueFull (HTTP 503).
//
// Waiting is bounded by the caller's context (the revision's timeoutSeconds). Backends that start draining refuse
// new requests (Backend.TryAcquire) while the ones already admitted finish, so a scale event never fails a request.
//
// Invariants: Throttler.mu guards the backend list and the wait queue; a backend's in-flight count only changes
// under mu (TryAcquire / Release are called with mu held), so the least-loaded choice and the hand-off of a freed
// slot to the oldest waiter are atomic.
package activator
