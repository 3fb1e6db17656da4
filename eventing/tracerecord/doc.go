// Package tracerecord writes RocketMQ message-trace records (the RMQ_SYS_TRACE_TOPIC bodies of the official clients,
// Java's TraceDataEncoder layout) for tide's consumers that are not the official client's own: a RocketMQSource's
// deliveries (eventing/rocketmqsource) and the fields tide adds to every consume record so `tide mq trace` can say
// which CloudEvent a message became, what the sink answered and in which OpenTelemetry trace.
//
// Extension fields: after the fields the clients write, a record may carry "tide.<name>=<value>" fields (Ext).
// Java's decoder (and the RocketMQ dashboard built on it) reads SubBefore and SubAfter records by position and
// ignores fields beyond the ones it knows, so the records stay readable by every trace viewer; mq/msgtrace reads the
// extension back.
package tracerecord
