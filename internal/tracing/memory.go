package tracing

import (
	"context"
	"math/rand/v2"
	"reflect"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"
	"go.opentelemetry.io/otel/trace/embedded"

	"github.com/tide-run/tide/internal/tracing/traceapi"
)

// The memory recorder is the TracerProvider tide runs with when nothing is exported (no OTLP endpoint, no
// Options.Exporter): its spans go straight into the Store, nowhere else. It implements the OpenTelemetry trace
// API the data plane calls, with what the SDK would record there (same span contexts, parent/child, sampling by
// OTEL_TRACES_SAMPLER, attributes with the last value of a key winning, events, links, status rules, exception
// events), but without the SDK's machinery a span pays for when its only reader is the ring: no span processor
// chain, no copies of the attributes (the SDK copies them into its config, into the span, and again into a
// snapshot at End, and dedupes them through a map), no lock shared by all spans for IDs. A span is one
// allocation plus the caller's attribute slice, which it keeps; End puts the span itself in the ring.
//
// With an exporter configured the SDK is used instead (memory + export through the SDK's span processors), so
// OTLP export is exactly the SDK's.

// memoryProvider is the recorder's TracerProvider.
type memoryProvider struct {
	embedded.TracerProvider
	store   *Store
	service string // resource service.name, shown on every span
	// sampler is nil for parentbased_always_on (the default: a span is sampled unless its parent says it is
	// not), which needs no call; otherwise it is the SDK's sampler the environment names.
	sampler sdktrace.Sampler
	stopped atomic.Bool // after Shutdown spans are still made (contexts propagate) but not kept
	tracers sync.Map    // scope name -> *memoryTracer
}

func newMemoryProvider(store *Store, service string, sampler sdktrace.Sampler) *memoryProvider {
	return &memoryProvider{store: store, service: service, sampler: sampler}
}

func (p *memoryProvider) Tracer(name string, _ ...trace.TracerOption) trace.Tracer {
	if t, ok := p.tracers.Load(name); ok {
		return t.(*memoryTracer)
	}
	t, _ := p.tracers.LoadOrStore(name, &memoryTracer{p: p, scope: name})
	return t.(*memoryTracer)
}

// memoryTracer is one instrumentation scope's tracer.
type memoryTracer struct {
	embedded.Tracer
	p     *memoryProvider
	scope string
}

func (t *memoryTracer) Start(ctx context.Context, name string, opts ...trace.SpanStartOption) (context.Context, trace.Span) {
	cfg := trace.NewSpanStartConfig(opts...)
	if cfg.NewRoot() {
		ctx = trace.ContextWithSpanContext(ctx, trace.SpanContext{})
	}
	return t.start(ctx, name, cfg.SpanKind(), cfg.Attributes(), cfg.Links(), cfg.Timestamp())
}

// start makes the span; attrs becomes the span's own slice (never copied: the caller hands it over).
func (t *memoryTracer) start(ctx context.Context, name string, kind trace.SpanKind, attrs []attribute.KeyValue, links []trace.Link, ts time.Time) (context.Context, trace.Span) {
	if ctx == nil {
		ctx = context.Background()
	}
	psc := trace.SpanContextFromContext(ctx)
	tid := psc.TraceID()
	if !tid.IsValid() {
		tid = newTraceID()
	}
	scc := trace.SpanContextConfig{TraceID: tid, SpanID: newSpanID(), TraceState: psc.TraceState()}
	sampled := true
	if s := t.p.sampler; s != nil {
		res := s.ShouldSample(sdktrace.SamplingParameters{ParentContext: ctx, TraceID: tid, Name: name, Kind: kind,
			Attributes: attrs, Links: links})
		sampled = res.Decision == sdktrace.RecordAndSample
		scc.TraceState = res.Tracestate
	} else if psc.IsValid() {
		sampled = psc.IsSampled() // parentbased_always_on: the parent decides
	}
	if sampled {
		scc.TraceFlags = psc.TraceFlags() | trace.FlagsSampled
	} else {
		scc.TraceFlags = psc.TraceFlags() &^ trace.FlagsSampled
		// Not recorded (nothing would keep it: the store holds sampled spans only), but its context travels.
		u := unsampledSpan{sc: trace.NewSpanContext(scc), p: t.p}
		return trace.ContextWithSpan(ctx, u), u
	}
	if ts.IsZero() {
		ts = time.Now()
	}
	s := &memorySpan{t: t, sc: trace.NewSpanContext(scc), parent: psc.SpanID(), name: name,
		kind: trace.ValidateSpanKind(kind), start: ts, attrs: attrs}
	for _, l := range links {
		if keepLink(l) {
			s.links = append(s.links, l)
		}
	}
	return trace.ContextWithSpan(ctx, s), s
}

// IDs: random as the SDK's generator makes them, from the runtime's per-thread generator (no shared lock).
func newTraceID() (id trace.TraceID) {
	for !id.IsValid() {
		a, b := rand.Uint64(), rand.Uint64()
		for i := range 8 {
			id[i], id[8+i] = byte(a>>(56-8*i)), byte(b>>(56-8*i))
		}
	}
	return id
}

func newSpanID() (id trace.SpanID) {
	for !id.IsValid() {
		a := rand.Uint64()
		for i := range 8 {
			id[i] = byte(a >> (56 - 8*i))
		}
	}
	return id
}

// memorySpan is a recording span. mu guards every field below it; after End (ended set) nothing changes, so the
// Store reads a span it holds without the lock (End's unlock and the Store's mutex order the writes before).
type memorySpan struct {
	embedded.Span
	t      *memoryTracer
	sc     trace.SpanContext
	parent trace.SpanID // invalid for a root
	start  time.Time

	mu     sync.Mutex
	ended  bool
	name   string
	kind   trace.SpanKind
	end    time.Time
	attrs  []attribute.KeyValue // in the order set; a later value of a key wins (read with lastValue)
	events []sdktrace.Event
	links  []trace.Link
	status sdktrace.Status
}

func (s *memorySpan) SpanContext() trace.SpanContext { return s.sc }

func (s *memorySpan) IsRecording() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return !s.ended
}

func (s *memorySpan) End(opts ...trace.SpanEndOption) {
	var now time.Time
	if len(opts) > 0 {
		c := trace.NewSpanEndConfig(opts...)
		now = c.Timestamp()
	}
	if now.IsZero() {
		now = time.Now()
	}
	s.mu.Lock()
	if s.ended {
		s.mu.Unlock()
		return
	}
	s.ended, s.end = true, now
	s.mu.Unlock()
	if !s.t.p.stopped.Load() {
		s.t.p.store.put(entry{ms: s, tid: s.sc.TraceID()})
	}
}

func (s *memorySpan) AddEvent(name string, opts ...trace.EventOption) {
	c := trace.NewEventConfig(opts...)
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.ended {
		s.events = append(s.events, sdktrace.Event{Name: name, Attributes: c.Attributes(), Time: c.Timestamp()})
	}
}

func (s *memorySpan) AddLink(l trace.Link) {
	if !keepLink(l) {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.ended {
		s.links = append(s.links, l)
	}
}

// keepLink is the SDK's rule: a link to no valid span and with no attributes is dropped.
func keepLink(l trace.Link) bool { return l.SpanContext.IsValid() || len(l.Attributes) > 0 }

// RecordError adds the "exception" event the SDK adds (exception.type, exception.message, and
// exception.stacktrace when asked).
func (s *memorySpan) RecordError(err error, opts ...trace.EventOption) {
	if err == nil || !s.IsRecording() {
		return
	}
	attrs := []attribute.KeyValue{attribute.String("exception.type", typeName(err)), attribute.String("exception.message", err.Error())}
	if c := trace.NewEventConfig(opts...); c.StackTrace() {
		buf := make([]byte, 2048)
		attrs = append(attrs, attribute.String("exception.stacktrace", string(buf[:runtime.Stack(buf, false)])))
	}
	s.AddEvent("exception", append(opts, trace.WithAttributes(attrs...))...)
}

// typeName is the SDK's name for an error's type: package path and name, or the type's spelling for unnamed
// ones (pointers: "*errors.errorString").
func typeName(v any) string {
	t := reflect.TypeOf(v)
	if t.PkgPath() == "" && t.Name() == "" {
		return t.String()
	}
	return t.PkgPath() + "." + t.Name()
}

// SetStatus follows the SDK: Ok is final, Error does not replace Ok, Unset changes nothing; only Error keeps a
// description.
func (s *memorySpan) SetStatus(code codes.Code, description string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.ended || s.status.Code > code {
		return
	}
	st := sdktrace.Status{Code: code}
	if code == codes.Error {
		st.Description = description
	}
	s.status = st
}

func (s *memorySpan) SetName(name string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.ended {
		s.name = name
	}
}

func (s *memorySpan) SetAttributes(kv ...attribute.KeyValue) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.ended {
		return
	}
	for _, a := range kv {
		if a.Valid() { // as the SDK: an empty key or an invalid value is dropped
			s.attrs = append(s.attrs, a)
		}
	}
}

func (s *memorySpan) TracerProvider() trace.TracerProvider { return s.t.p }

// attr returns the value of key (the last one set), for queries.
func (s *memorySpan) attr(key string) (attribute.Value, bool) {
	for i := len(s.attrs) - 1; i >= 0; i-- {
		if string(s.attrs[i].Key) == key && s.attrs[i].Valid() {
			return s.attrs[i].Value, true
		}
	}
	return attribute.Value{}, false
}

// unsampledSpan is a span the sampler dropped: it records nothing, but carries its span context (a new span ID
// with the sampled flag clear) to the next hop, as the SDK's non-recording span does.
type unsampledSpan struct {
	embedded.Span
	sc trace.SpanContext
	p  *memoryProvider
}

func (s unsampledSpan) SpanContext() trace.SpanContext        { return s.sc }
func (unsampledSpan) IsRecording() bool                       { return false }
func (unsampledSpan) SetStatus(codes.Code, string)            {}
func (unsampledSpan) SetAttributes(...attribute.KeyValue)     {}
func (unsampledSpan) End(...trace.SpanEndOption)              {}
func (unsampledSpan) RecordError(error, ...trace.EventOption) {}
func (unsampledSpan) AddEvent(string, ...trace.EventOption)   {}
func (unsampledSpan) AddLink(trace.Link)                      {}
func (unsampledSpan) SetName(string)                          {}
func (s unsampledSpan) TracerProvider() trace.TracerProvider  { return s.p }

// StartSpan starts a span of kind on tr with attrs, as tr.Start(ctx, name, trace.WithSpanKind(kind),
// trace.WithAttributes(attrs...), trace.WithLinks(links...)) would, but hands attrs to tide's in-memory recorder
// without copying it: the caller must not use attrs afterwards (build it for the call, with room for what End
// adds). Any other tracer gets the ordinary Start.
func StartSpan(ctx context.Context, tr trace.Tracer, name string, kind trace.SpanKind, attrs []attribute.KeyValue, links ...trace.Link) (context.Context, trace.Span) {
	if mt, ok := tr.(*memoryTracer); ok {
		return mt.start(ctx, name, kind, attrs, links, time.Time{})
	}
	opts := make([]trace.SpanStartOption, 0, 3)
	opts = append(opts, trace.WithSpanKind(kind), trace.WithAttributes(attrs...))
	if len(links) > 0 {
		opts = append(opts, trace.WithLinks(links...))
	}
	return tr.Start(ctx, name, opts...)
}

// span converts an ended span to its wire form, as entry.span does for the SDK's.
func (s *memorySpan) span() traceapi.Span {
	sp := traceapi.Span{
		TraceID: s.sc.TraceID().String(), SpanID: s.sc.SpanID().String(), Name: s.name,
		Kind: kindName(s.kind), Service: s.t.p.service, Start: s.start, End: s.end,
		Attributes: attrMap(s.attrs),
	}
	if s.parent.IsValid() {
		sp.ParentSpanID = s.parent.String()
	}
	switch s.status.Code {
	case codes.Error:
		sp.Status, sp.StatusMessage = "error", s.status.Description
	case codes.Ok:
		sp.Status = "ok"
	default:
		sp.Status = "unset"
	}
	for _, ev := range s.events {
		sp.Events = append(sp.Events, traceapi.Event{Name: ev.Name, Time: ev.Time, Attributes: attrMap(ev.Attributes)})
	}
	for _, l := range s.links {
		sp.Links = append(sp.Links, traceapi.Link{TraceID: l.SpanContext.TraceID().String(), SpanID: l.SpanContext.SpanID().String()})
	}
	bound(&sp)
	return sp
}
