package tracing

import (
	"context"
	"encoding/hex"
	"net/http"
	"strings"

	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"
)

// W3C Trace Context names, as HTTP headers, RocketMQ user properties and CloudEvents extensions (the
// distributed-tracing extension uses the same two names).
const (
	TraceParent = "traceparent"
	TraceState  = "tracestate"
	// PropTraceContext is the system property RocketMQ 5 carries a message's traceparent in (MessageConst
	// PROPERTY_TRACE_CONTEXT; the 5.x clients' SystemProperties.trace_context).
	PropTraceContext = "TRACE_CONTEXT"
)

// propagator is W3C Trace Context: a stateless value, so sharing it is not shared mutable state.
var propagator = propagation.TraceContext{}

// ExtractHTTP returns ctx carrying the remote span context of a request's traceparent/tracestate headers (ctx
// unchanged when there is none or it is malformed).
func ExtractHTTP(ctx context.Context, h http.Header) context.Context {
	if len(h["Traceparent"]) == 0 {
		return ctx
	}
	return propagator.Extract(ctx, propagation.HeaderCarrier(h))
}

// InjectHTTP writes ctx's span context as traceparent/tracestate headers (nothing when ctx has no valid span).
func InjectHTTP(ctx context.Context, h http.Header) {
	sc := trace.SpanContextFromContext(ctx)
	if !sc.IsValid() {
		return
	}
	h["Traceparent"] = []string{formatTraceParent(sc)}
	if ts := sc.TraceState(); ts.Len() > 0 {
		h["Tracestate"] = []string{ts.String()}
	} else {
		delete(h, "Tracestate")
	}
}

// formatTraceParent is W3C Trace Context's traceparent of sc (version 00; only the sampled flag, as the
// propagator writes it), built in one allocation: it runs several times per event.
func formatTraceParent(sc trace.SpanContext) string {
	var b [55]byte
	b[0], b[1], b[2] = '0', '0', '-'
	tid, sid := sc.TraceID(), sc.SpanID()
	hex.Encode(b[3:35], tid[:])
	b[35] = '-'
	hex.Encode(b[36:52], sid[:])
	b[52] = '-'
	hex.Encode(b[53:55], []byte{byte(sc.TraceFlags() & trace.FlagsSampled)})
	return string(b[:])
}

// mapCarrier is a TextMapCarrier over plain string maps (message properties) with exact keys.
type mapCarrier map[string]string

func (m mapCarrier) Get(k string) string { return m[k] }
func (m mapCarrier) Set(k, v string)     { m[k] = v }
func (m mapCarrier) Keys() []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	return keys
}

// ExtractMessage returns ctx carrying the span context of a RocketMQ message's properties: the "traceparent" and
// "tracestate" user properties (OpenTelemetry's RocketMQ remoting-client instrumentation, and tide's own
// producers), else the TRACE_CONTEXT system property (RocketMQ 5 clients), else the CloudEvents binding's
// CE_traceparent/CE_tracestate.
func ExtractMessage(ctx context.Context, props map[string]string) context.Context {
	switch {
	case props[TraceParent] != "":
		return propagator.Extract(ctx, mapCarrier{TraceParent: props[TraceParent], TraceState: props[TraceState]})
	case props[PropTraceContext] != "":
		return propagator.Extract(ctx, mapCarrier{TraceParent: props[PropTraceContext]})
	case props["CE_"+TraceParent] != "":
		return propagator.Extract(ctx, mapCarrier{TraceParent: props["CE_"+TraceParent], TraceState: props["CE_"+TraceState]})
	}
	return ctx
}

// InjectMessage sets the "traceparent" (and "tracestate" when not empty) user properties of a message to ctx's
// span context, as OpenTelemetry's RocketMQ instrumentation does. props must not be nil.
func InjectMessage(ctx context.Context, props map[string]string) {
	sc := trace.SpanContextFromContext(ctx)
	if !sc.IsValid() {
		return
	}
	props[TraceParent] = formatTraceParent(sc)
	if ts := sc.TraceState(); ts.Len() > 0 {
		props[TraceState] = ts.String()
	}
}

// Extensions is the part of a CloudEvent the distributed-tracing extension needs (cloudevents' *event.Event
// implements it).
type Extensions interface {
	Extensions() map[string]interface{}
	SetExtension(name string, value interface{})
}

// ExtractEvent returns ctx carrying the span context of a CloudEvent's traceparent/tracestate extensions.
func ExtractEvent(ctx context.Context, ev Extensions) context.Context {
	exts := ev.Extensions()
	tp, _ := exts[TraceParent].(string)
	if tp == "" {
		return ctx
	}
	ts, _ := exts[TraceState].(string)
	return propagator.Extract(ctx, mapCarrier{TraceParent: tp, TraceState: ts})
}

// SetEvent keeps a CloudEvent's distributed-tracing extension in step with ctx's span: traceparent (and
// tracestate, removed when empty) name the span that handled the event last. Nothing changes when ctx has no
// valid span, so with tracing off the extensions an event arrived with travel on untouched.
func SetEvent(ctx context.Context, ev Extensions) {
	sc := trace.SpanContextFromContext(ctx)
	if !sc.IsValid() {
		return
	}
	ev.SetExtension(TraceParent, formatTraceParent(sc))
	if ts := sc.TraceState(); ts.Len() > 0 {
		ev.SetExtension(TraceState, ts.String())
	} else if _, ok := ev.Extensions()[TraceState]; ok {
		ev.SetExtension(TraceState, nil)
	}
}

// TraceParentOf formats ctx's span context as a traceparent value ("" when ctx has none).
func TraceParentOf(ctx context.Context) string {
	sc := trace.SpanContextFromContext(ctx)
	if !sc.IsValid() {
		return ""
	}
	return formatTraceParent(sc)
}

// ParseTraceParent returns the span context of a traceparent value (invalid when malformed).
func ParseTraceParent(v string) trace.SpanContext {
	return trace.SpanContextFromContext(propagator.Extract(context.Background(), mapCarrier{TraceParent: strings.TrimSpace(v)}))
}
