package tracing

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strconv"
	"strings"

	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracegrpc"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	semconv "go.opentelemetry.io/otel/semconv/v1.40.0"
	"go.opentelemetry.io/otel/trace"
	"go.opentelemetry.io/otel/trace/noop"
)

// Environment variables tide reads besides the SDK's own (OTEL_TRACES_SAMPLER, OTEL_TRACES_SAMPLER_ARG,
// OTEL_SERVICE_NAME, OTEL_RESOURCE_ATTRIBUTES and every OTEL_EXPORTER_OTLP_* setting are read by the SDK and the
// exporter themselves).
const (
	// EnvBuffer sets the in-memory store's size in spans (default DefaultBufferSpans).
	EnvBuffer = "TIDE_TRACE_BUFFER"
)

// Options configure New.
type Options struct {
	// ServiceName is the resource's service.name unless OTEL_SERVICE_NAME says otherwise. Default "tide".
	ServiceName string
	// Getenv reads the environment; default os.Getenv. Tests pass a map.
	Getenv func(string) string
	// BufferSpans overrides TIDE_TRACE_BUFFER.
	BufferSpans int
	// Exporter, when set, receives every span (batched) in addition to or instead of the OTLP exporter the
	// environment configures. Tests use it.
	Exporter sdktrace.SpanExporter
	// Logger; component=tracing is added. Default slog.Default().
	Logger *slog.Logger
}

// Tracing is one server's tracing: its provider, its in-memory store and the exporter's shutdown.
type Tracing struct {
	provider trace.TracerProvider
	sdk      *sdktrace.TracerProvider // nil when disabled or when nothing is exported
	mem      *memoryProvider          // the memory recorder when nothing is exported
	store    *Store                   // nil when disabled
	exporter string                   // what is exported to, for the start-up log line
}

// Disabled returns a Tracing that records nothing (a no-op provider, no store).
func Disabled() *Tracing { return &Tracing{provider: noop.NewTracerProvider()} }

// New builds the tracing of one server from the environment:
//
//   - OTEL_SDK_DISABLED=true: nothing is recorded (Disabled).
//   - OTEL_EXPORTER_OTLP_ENDPOINT or OTEL_EXPORTER_OTLP_TRACES_ENDPOINT set (and OTEL_TRACES_EXPORTER not "none"):
//     spans are exported with OTLP, over HTTP/protobuf unless OTEL_EXPORTER_OTLP_(TRACES_)PROTOCOL is "grpc".
//   - always (unless disabled): the last TIDE_TRACE_BUFFER spans stay in memory, for the API, `tide trace` and the
//     dashboard.
//
// Sampling follows OTEL_TRACES_SAMPLER and OTEL_TRACES_SAMPLER_ARG (default parentbased_always_on). With no
// exporter (neither the environment's nor Options.Exporter) spans are recorded by the memory recorder
// (memory.go) instead of the SDK: the same spans, at a fraction of the cost.
func New(ctx context.Context, opts Options) (*Tracing, error) {
	getenv := opts.Getenv
	if getenv == nil {
		getenv = os.Getenv
	}
	log := opts.Logger
	if log == nil {
		log = slog.Default()
	}
	log = log.With("component", "tracing")
	if v := strings.TrimSpace(getenv("OTEL_SDK_DISABLED")); strings.EqualFold(v, "true") {
		return Disabled(), nil
	}
	n := opts.BufferSpans
	if n <= 0 {
		if v := getenv(EnvBuffer); v != "" {
			p, err := strconv.Atoi(v)
			if err != nil || p <= 0 {
				return nil, fmt.Errorf("%s=%q: want a positive number of spans", EnvBuffer, v)
			}
			n = p
		}
	}
	store := NewStore(n)
	name := opts.ServiceName
	if name == "" {
		name = "tide"
	}
	// WithFromEnv after WithAttributes: OTEL_SERVICE_NAME and OTEL_RESOURCE_ATTRIBUTES win over the default.
	res, err := resource.New(ctx, resource.WithAttributes(semconv.ServiceName(name)), resource.WithFromEnv(),
		resource.WithTelemetrySDK())
	if err != nil && res == nil {
		return nil, fmt.Errorf("tracing resource: %w", err)
	}
	sampler, err := samplerFromEnv(getenv)
	if err != nil {
		return nil, err
	}
	t := &Tracing{store: store, exporter: "memory"}
	exp, what, err := exporterFromEnv(ctx, getenv)
	if err != nil {
		return nil, err
	}
	if exp == nil && opts.Exporter == nil {
		// Nothing leaves the process: the memory recorder, no SDK (memory.go says why).
		service := name
		if v, ok := res.Set().Value(semconv.ServiceNameKey); ok {
			service = v.Emit()
		}
		t.mem = newMemoryProvider(store, service, sampler)
		t.provider = t.mem
		log.Debug("tracing on", "export", t.exporter, "bufferSpans", store.Capacity())
		return t, nil
	}
	popts := []sdktrace.TracerProviderOption{sdktrace.WithResource(res), sdktrace.WithSpanProcessor(store)}
	if sampler != nil {
		popts = append(popts, sdktrace.WithSampler(sampler))
	}
	if exp != nil {
		popts = append(popts, sdktrace.WithBatcher(exp))
		t.exporter = what
	}
	if opts.Exporter != nil {
		popts = append(popts, sdktrace.WithBatcher(opts.Exporter))
	}
	t.sdk = sdktrace.NewTracerProvider(popts...)
	t.provider = t.sdk
	log.Debug("tracing on", "export", t.exporter, "bufferSpans", store.Capacity())
	return t, nil
}

// samplerFromEnv is the sampler OTEL_TRACES_SAMPLER and OTEL_TRACES_SAMPLER_ARG name, with the values and
// defaults of OpenTelemetry's SDK configuration (built with the SDK's own samplers); nil for the default,
// parentbased_always_on. Unlike the SDK, which logs an unsupported value and samples everything, tide refuses it.
func samplerFromEnv(getenv func(string) string) (sdktrace.Sampler, error) {
	name := strings.ToLower(strings.TrimSpace(getenv("OTEL_TRACES_SAMPLER")))
	arg := strings.TrimSpace(getenv("OTEL_TRACES_SAMPLER_ARG"))
	ratio := func() (sdktrace.Sampler, error) {
		if arg == "" {
			return sdktrace.TraceIDRatioBased(1), nil
		}
		v, err := strconv.ParseFloat(arg, 64)
		if err != nil || v < 0 || v > 1 {
			return nil, fmt.Errorf("OTEL_TRACES_SAMPLER_ARG=%q: want a ratio from 0 to 1 (0.1 keeps one trace in ten)", arg)
		}
		return sdktrace.TraceIDRatioBased(v), nil
	}
	switch name {
	case "", "parentbased_always_on":
		return nil, nil
	case "always_on":
		return sdktrace.AlwaysSample(), nil
	case "always_off":
		return sdktrace.NeverSample(), nil
	case "parentbased_always_off":
		return sdktrace.ParentBased(sdktrace.NeverSample()), nil
	case "traceidratio":
		return ratio()
	case "parentbased_traceidratio":
		r, err := ratio()
		if err != nil {
			return nil, err
		}
		return sdktrace.ParentBased(r), nil
	}
	return nil, fmt.Errorf("OTEL_TRACES_SAMPLER=%q: tide supports always_on, always_off, traceidratio and their parentbased_ forms", name)
}

// exporterFromEnv builds the OTLP exporter the environment asks for, or nil.
func exporterFromEnv(ctx context.Context, getenv func(string) string) (sdktrace.SpanExporter, string, error) {
	endpoint := firstNonEmpty(getenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"), getenv("OTEL_EXPORTER_OTLP_ENDPOINT"))
	switch kind := strings.ToLower(strings.TrimSpace(getenv("OTEL_TRACES_EXPORTER"))); kind {
	case "none":
		return nil, "", nil
	case "", "otlp":
	default:
		return nil, "", fmt.Errorf("OTEL_TRACES_EXPORTER=%q: tide supports otlp and none", kind)
	}
	if endpoint == "" {
		return nil, "", nil
	}
	proto := strings.ToLower(firstNonEmpty(getenv("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL"), getenv("OTEL_EXPORTER_OTLP_PROTOCOL"), "http/protobuf"))
	// The exporters read the OTEL_EXPORTER_OTLP_* variables (endpoint, headers, timeout, TLS, compression)
	// themselves, from the process environment.
	switch proto {
	case "http/protobuf":
		exp, err := otlptracehttp.New(ctx)
		if err != nil {
			return nil, "", fmt.Errorf("OTLP HTTP exporter for %s: %w", endpoint, err)
		}
		return exp, "otlp http " + endpoint, nil
	case "grpc":
		exp, err := otlptracegrpc.New(ctx)
		if err != nil {
			return nil, "", fmt.Errorf("OTLP gRPC exporter for %s: %w", endpoint, err)
		}
		return exp, "otlp grpc " + endpoint, nil
	}
	return nil, "", fmt.Errorf("OTEL_EXPORTER_OTLP_PROTOCOL=%q: tide supports http/protobuf and grpc", proto)
}

func firstNonEmpty(vs ...string) string {
	for _, v := range vs {
		if v = strings.TrimSpace(v); v != "" {
			return v
		}
	}
	return ""
}

// Provider is the TracerProvider to pass down to subsystems (a no-op one when disabled). Never nil.
func (t *Tracing) Provider() trace.TracerProvider {
	if t == nil {
		return noop.NewTracerProvider()
	}
	return t.provider
}

// Store is the in-memory span store; nil when tracing is disabled.
func (t *Tracing) Store() *Store {
	if t == nil {
		return nil
	}
	return t.store
}

// Export says where spans go ("memory", "otlp http <endpoint>", ...; "" when disabled).
func (t *Tracing) Export() string {
	if t == nil {
		return ""
	}
	return t.exporter
}

// Shutdown flushes the exporter (bounded by ctx) and stops recording.
func (t *Tracing) Shutdown(ctx context.Context) error {
	if t != nil && t.mem != nil {
		t.mem.stopped.Store(true)
	}
	if t == nil || t.sdk == nil {
		return nil
	}
	if err := t.sdk.Shutdown(ctx); err != nil && !errors.Is(err, context.Canceled) {
		return fmt.Errorf("tracing shutdown: %w", err)
	}
	return nil
}

// ForceFlush exports what is buffered now (tests, and before a report).
func (t *Tracing) ForceFlush(ctx context.Context) error {
	if t == nil || t.sdk == nil {
		return nil
	}
	return t.sdk.ForceFlush(ctx)
}

// Tracer returns the named tracer of p, or a no-op tracer when p is nil. Every data-plane package calls this
// with its import path as the instrumentation scope.
func Tracer(p trace.TracerProvider, scope string) trace.Tracer {
	if p == nil {
		return noop.NewTracerProvider().Tracer(scope)
	}
	return p.Tracer(scope)
}

// Off reports whether tr records nothing (the no-op tracer tide uses when tracing is off), so hot paths can skip
// building attributes; a nil tracer is off too. With tracing off, the Start helpers return the caller's own span and the End helpers
// leave it alone.
func Off(tr trace.Tracer) bool {
	if tr == nil {
		return true
	}
	_, ok := tr.(noop.Tracer)
	return ok
}
