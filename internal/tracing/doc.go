// Package tracing is tide's OpenTelemetry tracing: a TracerProvider per server instance built from the standard
// OTEL_* environment (OTLP export when an endpoint is set, nothing exported otherwise), an in-memory Store of the
// most recent spans (always on, bounded, queryable by trace ID, attribute and span name, served on the API at
// /tide/v1/traces), and the W3C Trace Context propagation helpers every hop uses: HTTP headers, RocketMQ message
// properties (the "traceparent"/"tracestate" user properties OpenTelemetry's RocketMQ remoting-client
// instrumentation writes, and the TRACE_CONTEXT system property of RocketMQ 5's clients) and the CloudEvents
// distributed-tracing extension.
//
// It is a leaf: it imports only OpenTelemetry and its own traceapi. It holds no global state: the propagator is a
// value, and each server passes its provider down through options (a nil provider means tracing off, a no-op).
package tracing
