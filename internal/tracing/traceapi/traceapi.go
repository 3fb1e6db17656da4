// Package traceapi is a leaf: the JSON shapes of tide's trace endpoints (GET /tide/v1/traces and
// /tide/v1/traces/{id}), shared by the server side (internal/tracing) and its clients (the CLI's `tide trace`,
// the dashboard's page), so a client never imports the server's handler.
package traceapi

import "time"

// Paths on the API port.
const (
	// TracesPath lists recent traces (GET, ?attr=key=value&limit=N) and, with /{traceID} appended, returns one.
	TracesPath = "/tide/v1/traces"
)

// Span is one finished span.
type Span struct {
	TraceID      string `json:"traceId"`
	SpanID       string `json:"spanId"`
	ParentSpanID string `json:"parentSpanId,omitempty"`
	Name         string `json:"name"`
	// Kind is OpenTelemetry's span kind in lower case: internal, server, client, producer, consumer.
	Kind string `json:"kind"`
	// Service is the resource's service.name (tide, or a program that exported to tide).
	Service string    `json:"service,omitempty"`
	Start   time.Time `json:"start"`
	End     time.Time `json:"end"`
	// Status is "unset", "ok" or "error"; StatusMessage explains an error.
	Status        string            `json:"status"`
	StatusMessage string            `json:"statusMessage,omitempty"`
	Attributes    map[string]string `json:"attributes,omitempty"`
	Events        []Event           `json:"events,omitempty"`
	Links         []Link            `json:"links,omitempty"`
}

// Duration is End - Start.
func (s Span) Duration() time.Duration { return s.End.Sub(s.Start) }

// Event is a timed annotation of a span.
type Event struct {
	Name       string            `json:"name"`
	Time       time.Time         `json:"time"`
	Attributes map[string]string `json:"attributes,omitempty"`
}

// Link points at a span of another (or the same) trace.
type Link struct {
	TraceID string `json:"traceId"`
	SpanID  string `json:"spanId"`
}

// Trace is the answer of GET /tide/v1/traces/{id}: the spans of one trace tide still holds, in start order.
type Trace struct {
	TraceID string `json:"traceId"`
	Spans   []Span `json:"spans"`
}

// Summary describes one trace in a listing.
type Summary struct {
	TraceID string `json:"traceId"`
	// Root is the name of the earliest span without a parent among those held (the trace's root when it is
	// still in memory).
	Root     string        `json:"root"`
	Start    time.Time     `json:"start"`
	Duration time.Duration `json:"durationNs"`
	Spans    int           `json:"spans"`
	Errors   int           `json:"errors"`
	Services []string      `json:"services,omitempty"`
}

// List is the answer of GET /tide/v1/traces: the most recent traces first.
type List struct {
	// Enabled is false when tracing is off (OTEL_SDK_DISABLED=true): nothing is recorded.
	Enabled bool `json:"enabled"`
	// Capacity is how many spans the in-memory buffer holds before the oldest are dropped.
	Capacity int       `json:"capacity"`
	Traces   []Summary `json:"traces"`
}

// Spans is the body of POST /tide/v1/traces: finished spans recorded by a program without an OpenTelemetry
// exporter (e.g. an application that wants its own spans, such as "sender" or "process", in the trace tide
// shows). TraceID and SpanID are lower-case hex (32 and 16 digits); ParentSpanID names the span whose context
// the program received in a traceparent header or property; Kind defaults to internal and Service to "external".
type Spans struct {
	Spans []Span `json:"spans"`
}

// MaxPostedSpans bounds one POST.
const MaxPostedSpans = 1000
