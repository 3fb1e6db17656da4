package tracing

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"reflect"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"

	"github.com/tide-run/tide/internal/tracing/traceapi"
)

// scenario drives a tracer through what tide's hops do and more (remote parents with tracestate, attributes
// set twice, status rules, events, errors, links, renames, an unsampled parent, a new root) and returns the
// traceparent and tracestate each started span carries, in order.
func scenario(tr trace.Tracer) []string {
	var out []string
	note := func(s trace.Span) {
		out = append(out, fmt.Sprintf("%t %s %s", s.IsRecording(), s.SpanContext().TraceFlags(), s.SpanContext().TraceState()))
	}
	h := http.Header{"Traceparent": {"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"}, "Tracestate": {"vendor=1"}}
	ctx := ExtractHTTP(context.Background(), h)
	ctx, root := tr.Start(ctx, "root", trace.WithSpanKind(trace.SpanKindServer),
		trace.WithAttributes(attribute.String("a", "1"), attribute.Int("n", 2), attribute.String("a", "2"), attribute.String("", "dropped")))
	note(root)
	root.SetAttributes(attribute.StringSlice("keys", []string{"k1", "k2"}), attribute.Bool("b", true), attribute.String("a", "3"))
	root.AddEvent("ev", trace.WithAttributes(attribute.Int64("x", 7)), trace.WithTimestamp(time.Unix(10, 0)))
	root.SetStatus(codes.Error, "first")
	root.SetStatus(codes.Unset, "ignored")
	cctx, child := StartSpan(ctx, tr, "child", trace.SpanKindConsumer,
		[]attribute.KeyValue{attribute.String("c", "1")}, trace.Link{SpanContext: root.SpanContext()})
	note(child)
	child.RecordError(errors.New("boom"))
	child.SetName("child renamed")
	child.AddLink(trace.Link{}) // dropped
	child.AddLink(trace.Link{SpanContext: root.SpanContext(), Attributes: []attribute.KeyValue{attribute.String("l", "1")}})
	child.SetStatus(codes.Ok, "description dropped")
	child.SetStatus(codes.Error, "not after ok")
	_, grand := tr.Start(cctx, "grandchild") // internal, no attributes
	note(grand)
	grand.End(trace.WithTimestamp(time.Unix(20, 0)))
	child.End()
	child.End() // twice: nothing changes
	child.SetAttributes(attribute.String("late", "1"))
	root.End()
	// An unsampled remote parent: the child is not recorded but carries a new span, unsampled, in the trace.
	uctx := ExtractHTTP(context.Background(), http.Header{"Traceparent": {"00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-00"}})
	_, u := tr.Start(uctx, "unsampled", trace.WithSpanKind(trace.SpanKindProducer))
	note(u)
	if u.SpanContext().SpanID() == trace.SpanContextFromContext(uctx).SpanID() || u.SpanContext().TraceID() != trace.SpanContextFromContext(uctx).TraceID() {
		out = append(out, "unsampled child does not have a new span in the parent's trace")
	}
	u.End()
	_, nr := tr.Start(ctx, "new root", trace.WithNewRoot())
	note(nr)
	if nr.SpanContext().TraceID() == trace.SpanContextFromContext(ctx).TraceID() {
		out = append(out, "WithNewRoot kept the parent's trace")
	}
	nr.End()
	return out
}

// normalize makes spans of two runs comparable: IDs become names' positions, times are dropped (except events'
// and explicit ones, which the scenario sets), traces are ordered by root name.
func normalize(t *testing.T, s *Store) [][]traceapi.Span {
	t.Helper()
	var out [][]traceapi.Span
	for _, sum := range s.List(Query{}) {
		tr, ok := s.Trace(sum.TraceID)
		if !ok {
			t.Fatalf("listed trace %s not held", sum.TraceID)
		}
		ids := map[string]string{}
		for _, sp := range tr.Spans {
			ids[sp.SpanID] = sp.Name
		}
		spans := tr.Spans
		for i := range spans {
			sp := &spans[i]
			if sp.TraceID == "4bf92f3577b34da6a3ce929d0e0e4736" {
				sp.TraceID = "remote"
			} else {
				sp.TraceID = "new"
			}
			sp.SpanID = sp.Name
			if n, ok := ids[sp.ParentSpanID]; ok {
				sp.ParentSpanID = n
			}
			if sp.End.Unix() != 20 {
				sp.Start, sp.End = time.Time{}, time.Time{}
			} else {
				sp.Start = time.Time{}
			}
			for j := range sp.Links {
				sp.Links[j].SpanID = ids[sp.Links[j].SpanID]
			}
			for j := range sp.Events {
				if sp.Events[j].Name == "exception" {
					sp.Events[j].Time = time.Time{}
				}
			}
		}
		sort.Slice(spans, func(i, j int) bool { return spans[i].Name < spans[j].Name })
		out = append(out, spans)
	}
	sort.Slice(out, func(i, j int) bool { return out[i][0].Name < out[j][0].Name })
	return out
}

// TestMemoryRecorderMatchesSDK: the same calls on the memory recorder (no exporter) and on the SDK (an exporter
// set) leave the same spans in the store and the same span contexts in the callers' hands, under the default
// sampler and under OTEL_TRACES_SAMPLER=parentbased_always_off.
func TestMemoryRecorderMatchesSDK(t *testing.T) {
	for _, sampler := range []string{"", "parentbased_always_off", "always_on"} {
		env := map[string]string{"OTEL_TRACES_SAMPLER": sampler, "OTEL_SERVICE_NAME": "svc"}
		getenv := func(k string) string { return env[k] }
		t.Setenv("OTEL_SERVICE_NAME", "svc") // the resource reads the process environment
		mem, err := New(context.Background(), Options{Getenv: getenv, BufferSpans: 64})
		if err != nil {
			t.Fatal(err)
		}
		exp := tracetest.NewInMemoryExporter()
		sdk, err := New(context.Background(), Options{Getenv: getenv, BufferSpans: 64, Exporter: exp})
		if err != nil {
			t.Fatal(err)
		}
		if _, ok := mem.Provider().(*memoryProvider); !ok || sdk.sdk == nil {
			t.Fatalf("providers: memory %T, sdk %T", mem.Provider(), sdk.Provider())
		}
		gotMem, gotSDK := scenario(mem.Provider().Tracer("s")), scenario(sdk.Provider().Tracer("s"))
		if !reflect.DeepEqual(gotMem, gotSDK) {
			t.Errorf("sampler %q: span contexts differ:\nmemory %q\nsdk    %q", sampler, gotMem, gotSDK)
		}
		m, s := normalize(t, mem.Store()), normalize(t, sdk.Store())
		if !reflect.DeepEqual(m, s) {
			t.Errorf("sampler %q: stored spans differ:\nmemory %+v\nsdk    %+v", sampler, m, s)
		}
		if m[0][0].Service != "svc" {
			t.Errorf("service %q, want OTEL_SERVICE_NAME's", m[0][0].Service)
		}
		if sampler == "" && (len(m) != 2 || len(m[0])+len(m[1]) != 4) {
			t.Errorf("default sampler: %d traces %+v, want the remote trace's 3 spans and the new root", len(m), m)
		}
		_ = mem.Shutdown(context.Background())
		_ = sdk.Shutdown(context.Background())
	}
}

// TestMemoryRecorderStopsAtShutdown: after Shutdown spans still carry contexts but are not kept.
func TestMemoryRecorderStopsAtShutdown(t *testing.T) {
	tr := newTestTracing(t, nil, 8)
	_ = tr.Shutdown(context.Background())
	_, s := tr.Provider().Tracer("t").Start(context.Background(), "late")
	s.End()
	if !s.SpanContext().IsValid() || len(tr.Store().List(Query{})) != 0 {
		t.Fatalf("after shutdown: context %v, store %+v", s.SpanContext(), tr.Store().List(Query{}))
	}
}

// TestSamplerEnv: the standard sampler variables, and refusals that say what to set.
func TestSamplerEnv(t *testing.T) {
	// One trace in ten with a ratio of 0.1: root spans are sampled by trace ID, children follow their parent.
	tr := newTestTracing(t, map[string]string{"OTEL_TRACES_SAMPLER": "parentbased_traceidratio", "OTEL_TRACES_SAMPLER_ARG": "0.1"}, 4096)
	tracer := tr.Provider().Tracer("t")
	sampled := 0
	for range 2000 {
		ctx, s := tracer.Start(context.Background(), "root")
		_, c := tracer.Start(ctx, "child")
		if c.SpanContext().IsSampled() != s.SpanContext().IsSampled() {
			t.Fatal("a child did not follow its parent's sampling decision")
		}
		if s.SpanContext().IsSampled() {
			sampled++
		}
		c.End()
		s.End()
	}
	if sampled < 100 || sampled > 300 {
		t.Errorf("%d of 2000 traces sampled at ratio 0.1", sampled)
	}
	if n := len(tr.Store().List(Query{Limit: 1000})); n != sampled {
		t.Errorf("store holds %d traces, %d were sampled", n, sampled)
	}
	for env, want := range map[string]string{
		"OTEL_TRACES_SAMPLER=jaeger_remote":                              "supports always_on",
		"OTEL_TRACES_SAMPLER=traceidratio,OTEL_TRACES_SAMPLER_ARG=2":     "ratio from 0 to 1",
		"OTEL_TRACES_SAMPLER=traceidratio,OTEL_TRACES_SAMPLER_ARG=tenth": "ratio from 0 to 1",
	} {
		m := map[string]string{}
		for _, kv := range strings.Split(env, ",") {
			k, v, _ := strings.Cut(kv, "=")
			m[k] = v
		}
		_, err := New(context.Background(), Options{Getenv: func(k string) string { return m[k] }})
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: %v, want an error saying %q", env, err, want)
		}
	}
}

// FuzzTraceParentMatchesPropagator: tide's traceparent parser accepts exactly what OpenTelemetry's W3C propagator
// accepts, with the same span context (flags and tracestate included).
func FuzzTraceParentMatchesPropagator(f *testing.F) {
	for _, tp := range []string{
		"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01", "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-",
		"01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-ff-what-ever", "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-04",
		"00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01", "fe-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-03x",
	} {
		f.Add(tp, "vendor=1,other=2")
	}
	f.Fuzz(func(t *testing.T, tp, ts string) {
		want := trace.SpanContextFromContext(propagation.TraceContext{}.Extract(context.Background(),
			propagation.MapCarrier{"traceparent": tp, "tracestate": ts}))
		for name, ctx := range map[string]context.Context{
			"message":    ExtractMessage(context.Background(), map[string]string{"traceparent": tp, "tracestate": ts}),
			"properties": ExtractMessageProperties(context.Background(), getter{"traceparent": tp, "tracestate": ts}),
			"HTTP":       ExtractHTTP(context.Background(), http.Header{"Traceparent": {tp}, "Tracestate": {ts}}),
		} {
			got := trace.SpanContextFromContext(ctx)
			if !got.Equal(want) || got.IsRemote() != want.IsRemote() {
				t.Fatalf("%s %q %q: tide %v, propagator %v", name, tp, ts, got, want)
			}
		}
	})
}

type getter map[string]string

func (g getter) GetProperty(k string) string { return g[k] }

// TestMemoryRecorderConcurrent: spans started, changed and ended from many goroutines while the store is read and
// evicts (run with -race): a trace read back holds only its own spans, at most the three it made (a slot's link to
// the previous span of its trace never leads into a slot another trace has taken since).
func TestMemoryRecorderConcurrent(t *testing.T) {
	tr := newTestTracing(t, nil, 64)
	tracer := tr.Provider().Tracer("t")
	done := make(chan struct{})
	var readers sync.WaitGroup
	readers.Add(1)
	go func() {
		defer readers.Done()
		for {
			select {
			case <-done:
				return
			default:
			}
			for _, sum := range tr.Store().List(Query{Attr: "n"}) {
				got, _ := tr.Store().Trace(sum.TraceID)
				if len(got.Spans) > 3 {
					t.Errorf("trace %s has %d spans, its traces have 3", sum.TraceID, len(got.Spans))
				}
				for _, sp := range got.Spans {
					if sp.TraceID != sum.TraceID {
						t.Errorf("trace %s holds a span of trace %s", sum.TraceID, sp.TraceID)
					}
				}
			}
		}
	}()
	var writers sync.WaitGroup
	for w := range 4 {
		writers.Add(1)
		go func() {
			defer writers.Done()
			for i := range 500 {
				ctx, root := tracer.Start(context.Background(), "root", trace.WithAttributes(attribute.Int("n", i)))
				_, a := StartSpan(ctx, tracer, "a", trace.SpanKindClient, []attribute.KeyValue{attribute.Int("w", w)})
				_, b := tracer.Start(ctx, "b")
				var both sync.WaitGroup
				both.Add(2)
				go func() { defer both.Done(); a.SetAttributes(attribute.Bool("x", true)); a.End() }()
				go func() { defer both.Done(); b.AddEvent("e"); b.SetStatus(codes.Error, "e"); b.End() }()
				both.Wait()
				root.End()
			}
		}()
	}
	writers.Wait()
	close(done)
	readers.Wait()
	if l := tr.Store().List(Query{Limit: 1000}); len(l) == 0 || len(l) > 64 {
		t.Fatalf("%d traces held in a ring of 64 spans", len(l))
	}
}
