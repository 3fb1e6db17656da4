package barrage

import (
	"context"
	"fmt"
	"strings"

	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracegrpc"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	semconv "go.opentelemetry.io/otel/semconv/v1.40.0"
	"go.opentelemetry.io/otel/trace"
	"go.opentelemetry.io/otel/trace/noop"
)

// Tracer is a program's tracer and the function that flushes and stops it.
type Tracer struct {
	trace.Tracer
	// Shutdown exports what is buffered; call it before exiting.
	Shutdown func(context.Context) error
}

// NewTracer builds the tracer the two programs record their spans with (sender, receiver and result in the
// page; process in the processor), from OpenTelemetry's standard environment, as on a cluster:
//
//   - OTEL_EXPORTER_OTLP_ENDPOINT or OTEL_EXPORTER_OTLP_TRACES_ENDPOINT set: spans are exported with OTLP (HTTP
//     protobuf, or gRPC when OTEL_EXPORTER_OTLP_PROTOCOL is "grpc"). tide's API is an OTLP/HTTP receiver, so
//     pointing the endpoint at it (http://127.0.0.1:8090; `tide demo barrage` does) puts the spans into tide's
//     traces; on a cluster, point it at the collector.
//   - otherwise, or with OTEL_SDK_DISABLED=true: a no-op tracer. Trace context still flows (see NewTraceParent).
//
// The seed's TRACING variable names Alibaba Cloud's tracing endpoint, which is not OTLP; it is accepted and
// ignored. service is the service.name unless OTEL_SERVICE_NAME is set.
func NewTracer(ctx context.Context, getenv func(string) string, service string) (Tracer, error) {
	endpoint := getenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")
	if endpoint == "" {
		endpoint = getenv("OTEL_EXPORTER_OTLP_ENDPOINT")
	}
	if endpoint == "" || strings.EqualFold(getenv("OTEL_SDK_DISABLED"), "true") || getenv("OTEL_TRACES_EXPORTER") == "none" {
		return Tracer{Tracer: noop.NewTracerProvider().Tracer(""), Shutdown: func(context.Context) error { return nil }}, nil
	}
	var (
		exp sdktrace.SpanExporter
		err error
	)
	// The exporters read the rest of OTEL_EXPORTER_OTLP_* (endpoint, headers, timeout, TLS) themselves.
	proto := getenv("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL")
	if proto == "" {
		proto = getenv("OTEL_EXPORTER_OTLP_PROTOCOL")
	}
	switch strings.ToLower(proto) {
	case "", "http/protobuf":
		exp, err = otlptracehttp.New(ctx)
	case "grpc":
		exp, err = otlptracegrpc.New(ctx)
	default:
		return Tracer{}, fmt.Errorf("OTEL_EXPORTER_OTLP_PROTOCOL=%q: this program exports with http/protobuf or grpc", proto)
	}
	if err != nil {
		return Tracer{}, fmt.Errorf("OTLP exporter: %w", err)
	}
	if s := getenv("OTEL_SERVICE_NAME"); s != "" {
		service = s
	}
	tp := sdktrace.NewTracerProvider(sdktrace.WithBatcher(exp),
		sdktrace.WithResource(resource.NewSchemaless(semconv.ServiceName(service))))
	return Tracer{Tracer: tp.Tracer("github.com/tide-run/tide/demo/barrage"), Shutdown: tp.Shutdown}, nil
}

// traceParentOf is the W3C traceparent of sc ("" when sc is not valid).
func traceParentOf(sc trace.SpanContext) string {
	if !sc.IsValid() {
		return ""
	}
	c := propagation.MapCarrier{}
	propagation.TraceContext{}.Inject(trace.ContextWithSpanContext(context.Background(), sc), c)
	return c["traceparent"]
}

// contextFrom returns ctx carrying tp's span context as the remote parent (ctx when tp is not valid).
func contextFrom(ctx context.Context, tp string) context.Context {
	if !ValidTraceParent(tp) {
		return ctx
	}
	return propagation.TraceContext{}.Extract(ctx, propagation.MapCarrier{"traceparent": tp})
}
