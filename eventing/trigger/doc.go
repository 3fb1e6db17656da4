// Package trigger runs Knative Triggers on RocketMQ: each Trigger is its own
// consumer group on its Broker's topic (a push consumer of the official
// client, through eventing/bus), with its own filter and delivery.
//
// Per message a dispatcher decodes the CloudEvent (eventing/binding), applies
// the compiled filter (eventing/filter), strips knativebrokerttl and delivers
// the event through the delivery Sender (retries, backoff, dead-letter sink).
// Then:
//
//   - Delivered: acknowledged. A reply (200 with a CloudEvent) goes back into
//     the Broker through the same Publish path as the ingress, carrying the
//     TTL the original had (Publish decrements it); a reply whose TTL runs out
//     ends the loop and is counted, not stored. If storing a reply fails for
//     any other reason, the message is retried (redelivered later).
//   - DeadLettered: acknowledged.
//   - Failed (no dead-letter sink, or the sink failed too): the message stays in
//     RocketMQ — ConsumeRetryLater sends it to %RETRY%<group> for later
//     redelivery and, after MaxReconsumeTimes, to %DLQ%<group>. Nothing is
//     silently dropped.
//
// Unordered Triggers (the default) deliver with bounded concurrency
// (Config.Concurrency). The annotation
// rocketmq.eventing.knative.dev/delivery.order: ordered makes a Trigger
// consume each queue strictly in order; the ingress puts events with the same
// partitionkey (else the same source) in the same queue. Each Trigger has its
// own consumer, goroutines and client connection, so a slow subscriber holds up
// only its own Trigger, never another Trigger or the ingress.
//
// Manager is what the control plane drives (Upsert, Remove; Delete for a
// deleted Trigger, which also deletes its consumer group on the broker) and
// what the CLI and dashboard read counters from (Stats). Tail is the building
// block of `tide events tail`; its throw-away group is deleted when it stops.
package trigger
