// Package tracing is tide's OpenTelemetry tracing: a TracerProvider per server instance built from the standard
// OTEL_* environment (OTLP export through the SDK when an endpoint is set; otherwise the memory recorder, a lean
// implementation of the trace API whose only output is the store), an in-memory Store of the most recent spans
// (always on, bounded, queryable by trace ID, attribute and span name, served on the API at /tide/v1/traces), and
// the W3C Trace Context propagation helpers every hop uses: HTTP headers, RocketMQ message properties (the
// "traceparent"/"tracestate" user properties OpenTelemetry's RocketMQ remoting-client instrumentation writes, and
// the TRACE_CONTEXT system property of RocketMQ 5's clients) and the CloudEvents distributed-tracing extension.
//
// It is a leaf: it imports only OpenTelemetry and its own traceapi. It holds no global state: W3C Trace Context is
// parsed and written by pure functions (checked against OpenTelemetry's propagator), and each server passes its
// provider down through options (a nil provider means tracing off, a no-op).
package tracing
