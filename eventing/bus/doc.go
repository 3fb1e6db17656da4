// Package bus is eventing's only door to RocketMQ: a small interface (Bus) and
// its implementation on the official client github.com/apache/rocketmq-client-go/v2
// (NewRocketMQ). Eventing never imports tide's mq packages, so it behaves the
// same against tide's embedded broker and an Apache RocketMQ cluster.
//
// Semantics the rest of eventing relies on:
//
//   - Send is synchronous: it returns nil only after the broker answered
//     SEND_OK, i.e. the message is stored. Ingress answers 202 on that basis.
//     Concurrent Sends are grouped into RocketMQ batch sends (one round trip
//     for many messages; see batch.go); messages with the same ShardingKey
//     always land in the same queue, batched or not.
//   - Subscribe starts a clustering push consumer for one consumer group. The
//     handler's Retry verdict leaves the message in RocketMQ: unordered groups
//     send it back (it returns through %RETRY%<group>, and after
//     MaxReconsumeTimes lands in %DLQ%<group>); ordered groups suspend the
//     queue and retry in place, keeping order. Nothing is acknowledged until
//     the handler says Ack, so a crash redelivers (at-least-once).
//   - Messages carrying PropMarker are bus-internal (topic creation) and are
//     acknowledged without reaching the handler.
//   - When a send succeeds again after the broker was unreachable, every
//     subscription's consumer is restarted: the official client would
//     otherwise wait out a 30 s pull timeout on the dead connection.
package bus
