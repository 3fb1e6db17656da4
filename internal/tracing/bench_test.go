package tracing

import (
	"context"
	"net/http"
	"net/url"
	"testing"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"
)

// BenchmarkSpan: what one span of tide's costs (a Trigger's consumer span: a remote parent from a message's
// traceparent, ten attributes, two more at the end), recorded by the memory recorder (no exporter: tide's
// default) and by the SDK with the store as its only processor (what tide ran before the memory recorder; an
// exporter that discards keeps the SDK path without export cost):
//
//	go test ./internal/tracing -run '^$' -bench Span -benchmem
func BenchmarkSpan(b *testing.B) {
	props := map[string]string{TraceParent: "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"}
	u, _ := url.Parse("http://127.0.0.1:8080/default/orders")
	for _, c := range []struct {
		name string
		exp  bool
	}{{"recorder=memory", false}, {"recorder=sdk", true}} {
		opts := Options{Getenv: func(string) string { return "" }}
		if c.exp {
			opts.Exporter = tracetest.NewNoopExporter()
		}
		tr, err := New(context.Background(), opts)
		if err != nil {
			b.Fatal(err)
		}
		tracer := tr.Provider().Tracer("bench")
		b.Run(c.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				ctx := ExtractMessage(context.Background(), props)
				attrs := append(AppendRocketMQ(make([]attribute.KeyValue, 0, 14), "process", "tide-broker-default_default"),
					attribute.String("messaging.consumer.group.name", "knative-trigger_default_t"),
					attribute.String("messaging.message.id", "7F0000010001"), attribute.Int("messaging.message.body.size", 7),
					attribute.String("tide.trigger", "default/t"))
				ctx, span := StartSpan(ctx, tracer, "process tide-broker-default_default", trace.SpanKindConsumer, attrs)
				h := http.Header{}
				InjectHTTP(ctx, h)
				_, client := StartClient(ctx, tracer, http.MethodPost, u, 0)
				EndClient(client, 202, nil)
				span.SetAttributes(attribute.String("tide.delivery.outcome", "Delivered"), attribute.Int("tide.delivery.attempts", 1))
				span.End()
			}
		})
		_ = tr.Shutdown(context.Background())
	}
}
