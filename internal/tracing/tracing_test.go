package tracing

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"

	"github.com/tide-run/tide/internal/tracing/traceapi"
)

func newTestTracing(t *testing.T, env map[string]string, buffer int) *Tracing {
	t.Helper()
	tr, err := New(context.Background(), Options{Getenv: func(k string) string { return env[k] }, BufferSpans: buffer})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = tr.Shutdown(context.Background()) })
	return tr
}

// TestStoreKeepsTracesAndEvictsOldest: spans of a trace come back in start order with their parents; the ring
// holds at most its capacity and forgets the oldest spans (and traces whose spans are all gone) first.
func TestStoreKeepsTracesAndEvictsOldest(t *testing.T) {
	tr := newTestTracing(t, nil, 8)
	tracer := tr.Provider().Tracer("test")
	ctx, root := tracer.Start(context.Background(), "root", trace.WithAttributes(attribute.String("comment.id", "c-1")))
	_, child := tracer.Start(ctx, "child", trace.WithSpanKind(trace.SpanKindConsumer))
	child.End()
	root.End()
	id := root.SpanContext().TraceID().String()
	got, ok := tr.Store().Trace(id)
	if !ok || len(got.Spans) != 2 {
		t.Fatalf("trace %s: %v %+v", id, ok, got)
	}
	if got.Spans[0].Name != "root" || got.Spans[1].ParentSpanID != got.Spans[0].SpanID || got.Spans[1].Kind != "consumer" {
		t.Fatalf("spans %+v", got.Spans)
	}
	if got.Spans[0].Service != "tide" || got.Spans[0].Attributes["comment.id"] != "c-1" {
		t.Fatalf("root %+v", got.Spans[0])
	}
	if l := tr.Store().List(Query{Attr: "comment.id", AttrValue: "c-1"}); len(l) != 1 || l[0].TraceID != id || l[0].Root != "root" || l[0].Spans != 2 {
		t.Fatalf("list by attribute: %+v", l)
	}
	if l := tr.Store().List(Query{Attr: "comment.id", AttrValue: "c-2"}); len(l) != 0 {
		t.Fatalf("list by another value: %+v", l)
	}
	// 8 more single-span traces push both spans of the first out.
	var last string
	for i := range 8 {
		_, s := tracer.Start(context.Background(), fmt.Sprint("t", i))
		s.End()
		last = s.SpanContext().TraceID().String()
	}
	if _, ok := tr.Store().Trace(id); ok {
		t.Fatal("the oldest trace is still held after 8 newer spans in a ring of 8")
	}
	if l := tr.Store().List(Query{}); len(l) != 8 || l[0].TraceID != last {
		t.Fatalf("list: %d traces, newest %v; want 8, newest %s", len(l), l, last)
	}
	tr.Store().mu.Lock()
	n := len(tr.Store().byTrace)
	tr.Store().mu.Unlock()
	if n != 8 {
		t.Fatalf("index holds %d traces, want 8 (evicted traces must leave it)", n)
	}
}

func TestDisabledRecordsNothing(t *testing.T) {
	tr := newTestTracing(t, map[string]string{"OTEL_SDK_DISABLED": "true"}, 0)
	if tr.Store() != nil || tr.Export() != "" {
		t.Fatalf("disabled tracing has a store or exporter")
	}
	if !Off(tr.Provider().Tracer("x")) {
		t.Fatal("disabled tracing's tracer records")
	}
	rec := httptest.NewRecorder()
	Handler(nil).ServeHTTP(rec, httptest.NewRequest("GET", traceapi.TracesPath, nil))
	var l traceapi.List
	if err := json.Unmarshal(rec.Body.Bytes(), &l); err != nil || l.Enabled {
		t.Fatalf("list %s: %v", rec.Body, err)
	}
}

func TestEnvErrorsSayWhatToDo(t *testing.T) {
	for env, want := range map[string]string{
		"OTEL_TRACES_EXPORTER=zipkin":           "supports otlp and none",
		"OTEL_EXPORTER_OTLP_PROTOCOL=http/json": "http/protobuf and grpc",
		"TIDE_TRACE_BUFFER=-3":                  "positive number",
	} {
		k, v, _ := strings.Cut(env, "=")
		m := map[string]string{k: v, "OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:1"}
		_, err := New(context.Background(), Options{Getenv: func(k string) string { return m[k] }})
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: %v, want an error saying %q", env, err, want)
		}
	}
}

func TestHandler(t *testing.T) {
	tr := newTestTracing(t, nil, 16)
	_, s := tr.Provider().Tracer("t").Start(context.Background(), "one")
	s.End()
	h := Handler(tr.Store())
	for path, code := range map[string]int{
		traceapi.TracesPath: 200,
		traceapi.TracesPath + "/" + s.SpanContext().TraceID().String(): 200,
		traceapi.TracesPath + "/0123456789abcdef0123456789abcdef":      404,
		traceapi.TracesPath + "/nothex":                                400,
		traceapi.TracesPath + "?limit=x":                               400,
	} {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, path, nil))
		if rec.Code != code {
			t.Errorf("GET %s: %d %s, want %d", path, rec.Code, rec.Body, code)
		}
	}
}

// TestPropagation: W3C trace context through HTTP headers, RocketMQ properties (user property, RocketMQ 5's
// TRACE_CONTEXT, the CloudEvents binding's CE_traceparent) and the CloudEvents extension.
func TestPropagation(t *testing.T) {
	const tp = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
	for name, props := range map[string]map[string]string{
		"user property":       {"traceparent": tp},
		"RocketMQ 5":          {"TRACE_CONTEXT": tp},
		"CloudEvents binding": {"CE_traceparent": tp},
	} {
		ctx := ExtractMessage(context.Background(), props)
		if got := TraceParentOf(ctx); got != tp {
			t.Errorf("%s: %q", name, got)
		}
	}
	h := http.Header{}
	h.Set("traceparent", tp)
	h.Set("tracestate", "vendor=1")
	ctx := ExtractHTTP(context.Background(), h)
	out := map[string]string{}
	InjectMessage(ctx, out)
	if out["traceparent"] != tp || out["tracestate"] != "vendor=1" {
		t.Errorf("message properties %v", out)
	}
	ev := &fakeEvent{m: map[string]interface{}{"tracestate": "old=1"}}
	SetEvent(ExtractHTTP(context.Background(), http.Header{"Traceparent": {tp}}), ev)
	if ev.m["traceparent"] != tp {
		t.Errorf("extension %v", ev.m)
	}
	if _, ok := ev.m["tracestate"]; ok {
		t.Errorf("a stale tracestate extension stayed: %v", ev.m)
	}
	if got := TraceParentOf(ExtractEvent(context.Background(), ev)); got != tp {
		t.Errorf("from the extension: %q", got)
	}
	// Malformed values are ignored, never an error or a panic.
	if ctx := ExtractMessage(context.Background(), map[string]string{"traceparent": "garbage"}); trace.SpanContextFromContext(ctx).IsValid() {
		t.Error("a malformed traceparent gave a valid context")
	}
}

type fakeEvent struct{ m map[string]interface{} }

func (f *fakeEvent) Extensions() map[string]interface{} { return f.m }
func (f *fakeEvent) SetExtension(k string, v interface{}) {
	if v == nil {
		delete(f.m, k)
		return
	}
	f.m[k] = v
}

// TestPostedSpansJoinTheTrace: a program's own spans, posted as traceapi.Spans, are held with tide's spans of the
// same trace; a bad span refuses the whole request and names itself.
func TestPostedSpansJoinTheTrace(t *testing.T) {
	tr := newTestTracing(t, nil, 64)
	ctx, s := tr.Provider().Tracer("t").Start(context.Background(), "process orders")
	s.End()
	sc := trace.SpanContextFromContext(ctx)
	h := Handler(tr.Store())
	post := func(body string) *httptest.ResponseRecorder {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest(http.MethodPost, traceapi.TracesPath, strings.NewReader(body)))
		return rec
	}
	good := fmt.Sprintf(`{"spans":[{"traceId":%q,"spanId":"00000000000000a1","parentSpanId":%q,"name":"process",
		"start":"2026-12-07T10:00:00.000000001Z","end":"2026-12-07T10:00:00.002Z","attributes":{"comment.id":"c-9"},"service":"barrage-processor"}]}`,
		sc.TraceID().String(), sc.SpanID().String())
	if rec := post(good); rec.Code != http.StatusAccepted {
		t.Fatalf("POST: %d %s", rec.Code, rec.Body)
	}
	got, ok := tr.Store().Trace(sc.TraceID().String())
	if !ok || len(got.Spans) != 2 {
		t.Fatalf("trace: %+v", got)
	}
	if l := tr.Store().List(Query{Attr: "comment.id", AttrValue: "c-9"}); len(l) != 1 || l[0].TraceID != sc.TraceID().String() {
		t.Fatalf("by attribute: %+v", l)
	}
	for body, want := range map[string]string{
		`{"spans":[{"traceId":"xyz","spanId":"00000000000000a1","name":"n","start":"2026-12-07T10:00:00Z","end":"2026-12-07T10:00:00Z"}]}`:                              "spans[0].traceId",
		`{"spans":[{"traceId":"4bf92f3577b34da6a3ce929d0e0e4736","spanId":"00000000000000a1","name":"","start":"2026-12-07T10:00:00Z","end":"2026-12-07T10:00:00Z"}]}`:  "spans[0].name",
		`{"spans":[{"traceId":"4bf92f3577b34da6a3ce929d0e0e4736","spanId":"00000000000000a1","name":"n","start":"2026-12-07T10:00:01Z","end":"2026-12-07T10:00:00Z"}]}`: "spans[0].start",
		`not json`: "body",
	} {
		if rec := post(body); rec.Code != http.StatusBadRequest || !strings.Contains(rec.Body.String(), want) {
			t.Errorf("POST %.60s: %d %s, want 400 naming %s", body, rec.Code, rec.Body, want)
		}
	}
}

// FuzzPostSpans: any body POSTed to /tide/v1/traces either is refused (4xx) or is kept within the store's bounds,
// never a panic; whatever is kept reads back as valid JSON.
func FuzzPostSpans(f *testing.F) {
	f.Add(`{"spans":[{"traceId":"4bf92f3577b34da6a3ce929d0e0e4736","spanId":"00f067aa0ba902b7","name":"sender","start":"2026-12-07T10:00:00Z","end":"2026-12-07T10:00:01Z","attributes":{"k":"v"},"events":[{"name":"e","time":"2026-12-07T10:00:00Z"}],"links":[{"traceId":"x","spanId":"y"}]}]}`)
	f.Add(`{"spans":[]}`)
	f.Add(`{"spans":[{"traceId":"4BF92F3577B34DA6A3CE929D0E0E4736","spanId":"00F067AA0BA902B7","parentSpanId":"zz","name":"n","start":"2026-12-07T10:00:00Z","end":"2026-12-07T10:00:00Z"}]}`)
	f.Add(`[`)
	f.Fuzz(func(t *testing.T, body string) {
		s := NewStore(4)
		h := Handler(s)
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest(http.MethodPost, traceapi.TracesPath, strings.NewReader(body)))
		if rec.Code != http.StatusAccepted && (rec.Code < 400 || rec.Code >= 500) {
			t.Fatalf("status %d", rec.Code)
		}
		for _, sum := range s.List(Query{}) {
			tr, ok := s.Trace(sum.TraceID)
			if !ok {
				t.Fatalf("listed trace %s not found", sum.TraceID)
			}
			if _, err := json.Marshal(tr); err != nil {
				t.Fatal(err)
			}
			for _, sp := range tr.Spans {
				if len(sp.Attributes) > maxAttrs || len(sp.Name) > maxNameLen {
					t.Fatalf("span over the bounds: %d attributes, name %d bytes", len(sp.Attributes), len(sp.Name))
				}
			}
		}
	})
}

// FuzzExtractMessage: a message's trace properties come from the network (any producer): malformed ones give no
// context, never a panic; valid ones round-trip.
func FuzzExtractMessage(f *testing.F) {
	f.Add("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01", "vendor=1")
	f.Add("ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01", "")
	f.Add("00-00000000000000000000000000000000-00f067aa0ba902b7-01", "a=1,b=2")
	f.Fuzz(func(t *testing.T, tp, ts string) {
		ctx := ExtractMessage(context.Background(), map[string]string{"traceparent": tp, "tracestate": ts})
		sc := trace.SpanContextFromContext(ctx)
		if !sc.IsValid() {
			return
		}
		out := map[string]string{}
		InjectMessage(ctx, out)
		if again := ParseTraceParent(out["traceparent"]); again.TraceID() != sc.TraceID() || again.SpanID() != sc.SpanID() {
			t.Fatalf("%q -> %q does not round-trip", tp, out["traceparent"])
		}
	})
}

// TestFormatMatchesPropagator: the hand-built traceparent equals what OpenTelemetry's W3C propagator writes.
func TestFormatMatchesPropagator(t *testing.T) {
	for _, tp := range []string{"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01", "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00"} {
		h := http.Header{"Traceparent": {tp}, "Tracestate": {"a=1"}}
		ctx := ExtractHTTP(context.Background(), h)
		want := http.Header{}
		propagation.TraceContext{}.Inject(ctx, propagation.HeaderCarrier(want))
		got := http.Header{}
		InjectHTTP(ctx, got)
		if got.Get("Traceparent") != want.Get("Traceparent") || got.Get("Tracestate") != want.Get("Tracestate") {
			t.Errorf("%s: got %v, propagator %v", tp, got, want)
		}
	}
}
