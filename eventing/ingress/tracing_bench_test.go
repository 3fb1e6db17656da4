package ingress

import (
	"bytes"
	"context"
	"net/http/httptest"
	"testing"

	"go.opentelemetry.io/otel/trace"

	"github.com/tide-run/tide/internal/tracing"
)

// BenchmarkServeHTTPTracing: the ingress's cost per event (storage stubbed) with tracing off and on (the SDK with
// tide's in-memory store, no exporter), each request carrying a traceparent header:
//
//	go test ./eventing/ingress -run '^$' -bench ServeHTTPTracing -benchmem -count 5
func BenchmarkServeHTTPTracing(b *testing.B) {
	for _, on := range []bool{false, true} {
		name := "tracing=off"
		var tp trace.TracerProvider
		if on {
			name = "tracing=on"
			t, err := tracing.New(context.Background(), tracing.Options{Getenv: func(string) string { return "" }})
			if err != nil {
				b.Fatal(err)
			}
			defer func() { _ = t.Shutdown(context.Background()) }()
			tp = t.Provider()
		}
		b.Run(name, func(b *testing.B) {
			in, err := New(Options{Bus: discardBus{&recordingBus{}}, Brokers: BrokersFunc(func(string, string) (Broker, bool) {
				return Broker{Topic: "t", Ready: true}, true
			}), TracerProvider: tp})
			if err != nil {
				b.Fatal(err)
			}
			body := []byte(`{"order":42}`)
			b.ReportAllocs()
			cpu0 := processCPU()
			defer func() { b.ReportMetric(float64((processCPU()-cpu0).Nanoseconds())/float64(b.N), "cpu-ns/op") }()
			for b.Loop() {
				r := httptest.NewRequest("POST", "/default/orders", bytes.NewReader(body))
				r.Header.Set("ce-specversion", "1.0")
				r.Header.Set("ce-id", "abc")
				r.Header.Set("ce-source", "/shop")
				r.Header.Set("ce-type", "com.example.order.created")
				r.Header.Set("content-type", "application/json")
				r.Header.Set("traceparent", "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01")
				w := httptest.NewRecorder()
				in.ServeHTTP(w, r)
				if w.Code != 202 {
					b.Fatal(w.Code)
				}
			}
		})
	}
}
