package tracing

import (
	"context"
	"encoding/hex"
	"net/http"
	"strings"

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

// ExtractHTTP returns ctx carrying the remote span context of a request's traceparent/tracestate headers (ctx
// unchanged when there is none or it is malformed).
func ExtractHTTP(ctx context.Context, h http.Header) context.Context {
	tp := h["Traceparent"] // canonical keys read directly: Header.Get would canonicalize (and allocate) each time
	if len(tp) == 0 || tp[0] == "" {
		return ctx
	}
	var ts string
	if v := h["Tracestate"]; len(v) > 0 {
		ts = v[0]
	}
	return withRemote(ctx, tp[0], ts)
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

// TraceHeaders returns the traceparent and tracestate values InjectHTTP would write for ctx (ok false when ctx has
// no valid span; tracestate empty when there is none), for a client that writes its request head itself.
func TraceHeaders(ctx context.Context) (traceparent, tracestate string, ok bool) {
	sc := trace.SpanContextFromContext(ctx)
	if !sc.IsValid() {
		return "", "", false
	}
	if ts := sc.TraceState(); ts.Len() > 0 {
		tracestate = ts.String()
	}
	return formatTraceParent(sc), tracestate, true
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

// ExtractMessage returns ctx carrying the span context of a RocketMQ message's properties: the "traceparent" and
// "tracestate" user properties (OpenTelemetry's RocketMQ remoting-client instrumentation, and tide's own
// producers), else the TRACE_CONTEXT system property (RocketMQ 5 clients), else the CloudEvents binding's
// CE_traceparent/CE_tracestate.
func ExtractMessage(ctx context.Context, props map[string]string) context.Context {
	if tp := props[TraceParent]; tp != "" {
		return withRemote(ctx, tp, props[TraceState])
	}
	if tp := props[PropTraceContext]; tp != "" {
		return withRemote(ctx, tp, "")
	}
	if tp := props["CE_"+TraceParent]; tp != "" {
		return withRemote(ctx, tp, props["CE_"+TraceState])
	}
	return ctx
}

// PropertyGetter reads one message property (the official Go client's *primitive.MessageExt is one).
type PropertyGetter interface {
	GetProperty(key string) string
}

// ExtractMessageProperties is ExtractMessage reading the properties one by one (the official Go client's
// GetProperties copies the whole map).
func ExtractMessageProperties(ctx context.Context, m PropertyGetter) context.Context {
	if tp := m.GetProperty(TraceParent); tp != "" {
		return withRemote(ctx, tp, m.GetProperty(TraceState))
	}
	if tp := m.GetProperty(PropTraceContext); tp != "" {
		return withRemote(ctx, tp, "")
	}
	if tp := m.GetProperty("CE_" + TraceParent); tp != "" {
		return withRemote(ctx, tp, m.GetProperty("CE_"+TraceState))
	}
	return ctx
}

// withRemote returns ctx carrying the remote span context of a traceparent and tracestate pair, as the W3C
// propagator's Extract does (ctx unchanged when traceparent is malformed), without building a carrier.
func withRemote(ctx context.Context, traceparent, tracestate string) context.Context {
	sc := remoteSpanContext(traceparent, tracestate)
	if !sc.IsValid() {
		return ctx
	}
	return trace.ContextWithRemoteSpanContext(ctx, sc)
}

// remoteSpanContext parses a traceparent (W3C Trace Context: version-traceid-parentid-flags, lower-case hex;
// version ff is invalid; version 00 has exactly those four fields and no reserved flag bits, a later version may
// have more fields after a "-"; a trailing "-" is tolerated) and its tracestate (dropped when malformed, which must not invalidate the
// traceparent). Invalid: the zero SpanContext. It accepts exactly what propagation.TraceContext accepts
// (FuzzTraceParentMatchesPropagator), with no allocation for the traceparent.
func remoteSpanContext(tp, ts string) trace.SpanContext {
	const size = 55 // 2 + 1 + 32 + 1 + 16 + 1 + 2
	if len(tp) < size || tp[2] != '-' || tp[35] != '-' || tp[52] != '-' {
		return trace.SpanContext{}
	}
	ver, ok := unhex(tp[0], tp[1])
	// What follows the flags: nothing, or "-" and more fields (version 00: nothing more after that "-", which
	// the propagator lets pass).
	if rest := tp[size:]; !ok || ver == 0xff || (rest != "" && rest[0] != '-') || (ver == 0 && len(rest) > 1) {
		return trace.SpanContext{}
	}
	var scc trace.SpanContextConfig
	if !unhexInto(scc.TraceID[:], tp[3:35]) || !unhexInto(scc.SpanID[:], tp[36:52]) {
		return trace.SpanContext{}
	}
	flags, ok := unhex(tp[53], tp[54])
	if !ok || (ver == 0 && flags > 3) {
		return trace.SpanContext{}
	}
	scc.TraceFlags = trace.TraceFlags(flags) & (trace.FlagsSampled | trace.FlagsRandom)
	scc.Remote = true
	if ts != "" {
		scc.TraceState, _ = trace.ParseTraceState(ts)
	}
	sc := trace.NewSpanContext(scc)
	if !sc.IsValid() {
		return trace.SpanContext{}
	}
	return sc
}

// unhexDigit is a lower-case hex digit's value; ok is false for anything else (upper case included, as W3C
// Trace Context says).
func unhexDigit(c byte) (byte, bool) {
	switch {
	case '0' <= c && c <= '9':
		return c - '0', true
	case 'a' <= c && c <= 'f':
		return c - 'a' + 10, true
	}
	return 0, false
}

func unhex(hi, lo byte) (byte, bool) {
	h, ok1 := unhexDigit(hi)
	l, ok2 := unhexDigit(lo)
	return h<<4 | l, ok1 && ok2
}

func unhexInto(dst []byte, src string) bool {
	for i := range dst {
		b, ok := unhex(src[2*i], src[2*i+1])
		if !ok {
			return false
		}
		dst[i] = b
	}
	return true
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

// ExtractTraceParent returns ctx carrying the remote span context of a traceparent and a tracestate value (ctx
// unchanged when traceparent is empty or malformed): for callers that read the distributed-tracing extension
// themselves.
func ExtractTraceParent(ctx context.Context, traceparent, tracestate string) context.Context {
	if traceparent == "" {
		return ctx
	}
	return withRemote(ctx, traceparent, tracestate)
}

// ExtractEvent returns ctx carrying the span context of a CloudEvent's traceparent/tracestate extensions.
func ExtractEvent(ctx context.Context, ev Extensions) context.Context {
	exts := ev.Extensions()
	tp, _ := exts[TraceParent].(string)
	if tp == "" {
		return ctx
	}
	ts, _ := exts[TraceState].(string)
	return withRemote(ctx, tp, ts)
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
	} else {
		// Removing an absent extension changes nothing, and asking first would cost more: cloudevents'
		// Extensions() copies the whole map.
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
	return remoteSpanContext(strings.TrimSpace(v), "")
}
