// Package gateway is tide's HTTP data plane for Knative Services: the http.Handler on the :8080 gateway.
//
// A request is routed by its Host (port ignored) to a Route: `<name>.<ns>.localhost`, `<name>.<ns>.svc.cluster.local`,
// `<name>.<ns>.svc` and `<name>.<ns>`, and for tagged targets `<tag>-<name>.<ns>` under the same suffixes. The main
// host chooses a revision by traffic percent; a tag host reaches only its revision. Hosts that match no route go to
// Options.Fallback (the eventing broker ingress).
//
// Per revision, the work Knative splits between the activator and queue-proxy happens in-process: an
// activator.Throttler enforces containerConcurrency per instance, queues 10 x CC then answers 503, and holds
// requests while the revision has no ready instance (poking the autoscaler). timeoutSeconds bounds the whole
// request (queueing included) and a timeout before the response starts is a 504. Requests carry the original Host,
// X-Forwarded-For (client appended), X-Forwarded-Proto, X-Forwarded-Host and Forwarded (generated from the
// X-Forwarded-* headers when absent, as queue-proxy's shim does); user headers pass unchanged.
//
// Instances are spoken to over keep-alive connections kept per instance: plain GET/HEAD requests on a connPool the
// handler's goroutine reads and writes itself (the hot path, no per-connection goroutines); requests with bodies,
// h2c instances and revisions with response-start/idle timeouts through an http.Transport per instance; upgrades
// through httputil.ReverseProxy.
//
// Every request is reported to a StatSink at arrival and at completion (queued time included, as queue-proxy and
// the activator count it), which the autoscaler's collector turns into concurrency and rps.
//
// Invariants: the route table is an immutable map swapped atomically (lookups take no lock); Gateway.mu guards the
// route definitions and the revision map and is only taken by configuration calls.
package gateway
