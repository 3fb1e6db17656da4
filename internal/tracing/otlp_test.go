package tracing

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	semconv "go.opentelemetry.io/otel/semconv/v1.40.0"
	"go.opentelemetry.io/otel/trace"
	coltracepb "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	"google.golang.org/protobuf/proto"
)

// TestOTLPReceiverTakesTheSDKsExport: a program using the OpenTelemetry SDK's own OTLP/HTTP exporter (protobuf,
// gzip) pointed at the receiver puts its spans into the store, in the trace its parent context named, with its
// service name, kind, status and attributes.
func TestOTLPReceiverTakesTheSDKsExport(t *testing.T) {
	s := NewStore(64)
	mux := http.NewServeMux()
	mux.Handle("POST "+OTLPTracesPath, OTLPHandler(s))
	srv := httptest.NewServer(mux)
	defer srv.Close()

	ctx := context.Background()
	for _, compress := range []bool{false, true} {
		opts := []otlptracehttp.Option{otlptracehttp.WithEndpointURL(srv.URL + OTLPTracesPath)}
		if compress {
			opts = append(opts, otlptracehttp.WithCompression(otlptracehttp.GzipCompression))
		}
		exp, err := otlptracehttp.New(ctx, opts...)
		if err != nil {
			t.Fatal(err)
		}
		tp := sdktrace.NewTracerProvider(sdktrace.WithSyncer(exp),
			sdktrace.WithResource(resource.NewSchemaless(semconv.ServiceName("barrage-processor"))))
		parent := trace.NewSpanContext(trace.SpanContextConfig{TraceID: trace.TraceID{0x4b, 0xf9, 1}, SpanID: trace.SpanID{0xa1},
			TraceFlags: trace.FlagsSampled, Remote: true})
		_, sp := tp.Tracer("t").Start(trace.ContextWithRemoteSpanContext(ctx, parent), "process",
			trace.WithSpanKind(trace.SpanKindServer), trace.WithAttributes(attribute.String("comment.id", "c-1"), attribute.Int("n", 7)))
		sp.SetStatus(codes.Error, "table storage: locked")
		sp.End()
		if err := tp.Shutdown(ctx); err != nil {
			t.Fatalf("export (gzip %v): %v", compress, err)
		}
		got, ok := s.Trace(parent.TraceID().String())
		if !ok || len(got.Spans) != 1 {
			t.Fatalf("gzip %v: trace %+v", compress, got)
		}
		g := got.Spans[0]
		if g.Name != "process" || g.Kind != "server" || g.Service != "barrage-processor" || g.ParentSpanID != parent.SpanID().String() ||
			g.Status != "error" || g.StatusMessage != "table storage: locked" || g.Attributes["comment.id"] != "c-1" || g.Attributes["n"] != "7" ||
			g.End.Before(g.Start) || g.Start.IsZero() {
			t.Errorf("gzip %v: span %+v", compress, g)
		}
		s = NewStore(64)
		mux = http.NewServeMux()
		mux.Handle("POST "+OTLPTracesPath, OTLPHandler(s))
		srv.Config.Handler = mux
	}
}

// TestOTLPReceiverJSONAndErrors: OTLP's JSON encoding (hex ids) is read; bad bodies are 400 (which an exporter does
// not retry), other media types 415, oversized bodies 413, invalid spans dropped and counted as rejected.
func TestOTLPReceiverJSONAndErrors(t *testing.T) {
	s := NewStore(16)
	h := OTLPHandler(s)
	post := func(ct, enc string, body []byte) *httptest.ResponseRecorder {
		req := httptest.NewRequest(http.MethodPost, OTLPTracesPath, bytes.NewReader(body))
		req.Header.Set("Content-Type", ct)
		if enc != "" {
			req.Header.Set("Content-Encoding", enc)
		}
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		return rec
	}
	js := `{"resourceSpans":[{"resource":{"attributes":[{"key":"service.name","value":{"stringValue":"homepage"}}]},
	  "scopeSpans":[{"spans":[
	    {"traceId":"5b8efff798038103d269b633813fc60c","spanId":"eee19b7ec3c1b174","name":"sender","kind":4,
	     "startTimeUnixNano":"1544712660000000000","endTimeUnixNano":"1544712661000000000",
	     "attributes":[{"key":"comment.id","value":{"stringValue":"r-1"}},{"key":"ok","value":{"boolValue":true}}],
	     "links":[{"traceId":"5b8efff798038103d269b633813fc60c","spanId":"eee19b7ec3c1b173"}]},
	    {"traceId":"00000000000000000000000000000000","spanId":"eee19b7ec3c1b175","name":"bad"}]}]}]}`
	rec := post("application/json", "", []byte(js))
	if rec.Code != http.StatusOK || rec.Header().Get("Content-Type") != "application/json" {
		t.Fatalf("JSON export: %d %s", rec.Code, rec.Body)
	}
	var resp struct {
		PartialSuccess struct {
			RejectedSpans string `json:"rejectedSpans"`
		} `json:"partialSuccess"`
	}
	if err := json.Unmarshal(rec.Body.Bytes(), &resp); err != nil || resp.PartialSuccess.RejectedSpans != "1" {
		t.Errorf("response %s: want 1 rejected span (%v)", rec.Body, err)
	}
	got, ok := s.Trace("5b8efff798038103d269b633813fc60c")
	if !ok || len(got.Spans) != 1 || got.Spans[0].Kind != "producer" || got.Spans[0].Service != "homepage" ||
		got.Spans[0].Attributes["ok"] != "true" || len(got.Spans[0].Links) != 1 || got.Spans[0].Start.Year() != 2018 {
		t.Fatalf("JSON span: %+v", got)
	}

	var zipped bytes.Buffer
	zw := gzip.NewWriter(&zipped)
	_, _ = zw.Write(bytes.Repeat([]byte{0}, maxOTLPBytes+10)) // a small gzip bomb
	_ = zw.Close()
	for name, c := range map[string]struct {
		ct, enc string
		body    []byte
		code    int
	}{
		"not protobuf":      {"application/x-protobuf", "", []byte{0xff, 0xff, 0xff}, 400},
		"not JSON":          {"application/json", "", []byte("{"), 400},
		"id not hex":        {"application/json", "", []byte(`{"resourceSpans":[{"scopeSpans":[{"spans":[{"traceId":"zz"}]}]}]}`), 400},
		"form":              {"application/x-www-form-urlencoded", "", []byte("a=b"), 415},
		"unknown encoding":  {"application/x-protobuf", "br", []byte{}, 400},
		"gzip bomb":         {"application/x-protobuf", "gzip", zipped.Bytes(), 413},
		"too large, plain":  {"application/x-protobuf", "", make([]byte, maxOTLPBytes+1), 413},
		"empty is accepted": {"application/x-protobuf", "", nil, 200},
	} {
		if rec := post(c.ct, c.enc, c.body); rec.Code != c.code {
			t.Errorf("%s: %d %s, want %d", name, rec.Code, strings.TrimSpace(rec.Body.String()), c.code)
		}
	}
	if rec := httptest.NewRecorder(); true {
		OTLPHandler(nil).ServeHTTP(rec, httptest.NewRequest(http.MethodPost, OTLPTracesPath, nil))
		if rec.Code != http.StatusUnsupportedMediaType {
			t.Errorf("no content type: %d", rec.Code)
		}
	}
}

// FuzzOTLP: any body in either encoding is answered (200 or 4xx), never a panic, and the store stays within bounds.
func FuzzOTLP(f *testing.F) {
	req := &coltracepb.ExportTraceServiceRequest{}
	b, _ := proto.Marshal(req)
	f.Add(b, false)
	f.Add([]byte(`{"resourceSpans":[{"scopeSpans":[{"spans":[{"traceId":"5b8efff798038103d269b633813fc60c","spanId":"eee19b7ec3c1b174","name":"n"}]}]}]}`), true)
	f.Add([]byte(`{"resourceSpans":[{"scopeSpans":[{"spans":[{"traceId":7}]}]}]}`), true)
	f.Fuzz(func(t *testing.T, body []byte, isJSON bool) {
		s := NewStore(4)
		ct := "application/x-protobuf"
		if isJSON {
			ct = "application/json"
		}
		r := httptest.NewRequest(http.MethodPost, OTLPTracesPath, bytes.NewReader(body))
		r.Header.Set("Content-Type", ct)
		rec := httptest.NewRecorder()
		OTLPHandler(s).ServeHTTP(rec, r)
		if rec.Code != http.StatusOK && (rec.Code < 400 || rec.Code >= 500) {
			t.Fatalf("status %d", rec.Code)
		}
		if n := len(s.List(Query{})); n > 4 {
			t.Fatalf("%d traces in a store of 4 spans", n)
		}
	})
}
