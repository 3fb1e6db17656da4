// Package delivery sends CloudEvents to HTTP destinations with Knative's delivery semantics: binary (or structured)
// HTTP POST, the data-plane spec's retryable status codes, linear or exponential backoff, a per-attempt timeout, and
// a dead-letter sink that receives the event with the knativeerrordest, knativeerrorcode and knativeerrordata
// extensions once every attempt has failed.
//
// A Sender is safe for concurrent use and meant to be shared: it holds one tuned http.Client whose transport keeps
// idle connections per destination, so steady-state delivery reuses connections instead of dialing. Plain-http
// deliveries skip the client's transport: the Sender writes and reads them itself on its own pool of keep-alive
// connections (lean.go; the same bytes on the wire, checked against http.Transport), which are therefore not shared
// with other Senders on the same client; https, proxies and anything unusual go through the client.
//
// Backoff follows knative/eventing's implementation (pkg/kncloudevents), which counts the attempt that just failed
// from zero: with delay d, linear waits 0, d, 2d, ... before retries 1, 2, 3, ...; exponential waits d, 2d, 4d, ....
// (The spec's prose says linear is constant; the implementation is what users observe, so we follow it.)
package delivery
