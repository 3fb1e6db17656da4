// Package rocketmqsource is the RocketMQSource data plane: it consumes RocketMQ messages with the official client
// (github.com/apache/rocketmq-client-go/v2, push consumer, clustering model), maps each message to a CloudEvent
// (Mapper, documented as one table in docs/rocketmqsource.md) and delivers it with Knative semantics through
// package eventing/delivery.
//
// Invariant (no loss): a message is acknowledged to RocketMQ only after its event was delivered, dead-lettered, or
// handed back to RocketMQ's retry topic (%RETRY%<group>, and from there after maxReconsumeTimes to %DLQ%<group>).
// In unordered mode the client's process queue keeps the committed offset at the smallest unfinished message of
// each queue, so a restart resumes before anything not yet finished; in ordered mode each queue is consumed one
// message at a time and a failing message is retried in place, blocking only its queue.
//
// The package talks to RocketMQ only through the client library, never through tide's embedded broker, so the
// same adapter works against any Apache RocketMQ 4.x/5.x cluster. It runs inside `tide up` (one Adapter per
// RocketMQSource) and standalone as `tide adapter rocketmq`, configured from the environment (ConfigFromEnv) the way
// Knative's ContainerSource configures adapters.
package rocketmqsource
