// Package ingress is the Broker's front door: an http.Handler serving
// POST /<namespace>/<broker> with the Knative Eventing data-plane contract, and
// Publish, the same path for in-process producers (RocketMQSources whose sink
// is a Broker, and Trigger replies).
//
// Contract (knative/eventing pkg/broker/ingress, the data-plane spec):
//   - CloudEvents 1.0 and 0.3, binary and structured mode, and batches
//     (application/cloudevents-batch+json).
//   - 202 only after every event of the request is stored in the Broker's
//     RocketMQ topic (synchronous send acknowledged by the broker).
//   - 400 with a body saying why for unparsable or invalid events and for
//     events whose knativebrokerttl reaches 0; 404 for "/" and unknown
//     brokers; 405 with "Allow: POST, OPTIONS" for other methods; OPTIONS
//     answers the CloudEvents webhook validation (WebHook-Allowed-Origin,
//     WebHook-Allowed-Rate); 413 for bodies over the limit; 503 when the
//     broker is not ready or storing failed (the sender should retry).
//   - Every stored event carries knativearrivaltime (RFC 3339, from the
//     injected clock) and knativebrokerttl: 255 when absent, otherwise
//     decremented by one on each entry, as Knative's TTL defaulter does, so a
//     reply loop between Triggers ends after at most 255 hops.
package ingress
