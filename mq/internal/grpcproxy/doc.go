// Package grpcproxy serves RocketMQ 5's gRPC MessagingService (apache.rocketmq.v2, the protocol of the official
// 5.x SDKs) on the embedded broker's own topics, groups, offsets and store, as Apache's proxy does in "local" mode.
// A message sent over either protocol is received over either; retry and dead-letter topics are shared.
//
// One port serves TLS and plaintext: the first byte of a connection decides (0x16 is a TLS ClientHello). The Go
// 5.x client always dials TLS (without verifying), so a self-signed certificate kept in the data directory does.
//
// Consumption is POP-style (receive with an invisible duration, ack by receipt handle): pop.go keeps, per consumer
// group and queue, the messages handed out and not yet acknowledged; the group's committed offset (shared with
// remoting consumers) never passes an unacknowledged message, and the in-flight table is persisted, so a restart
// redelivers and never loses (at least once).
package grpcproxy
