package delivery

import (
	"context"
	"net/http"
	"net/http/httptest"
	"net/url"
	"testing"

	"go.opentelemetry.io/otel/trace"

	"github.com/tide-run/tide/internal/tracing"
)

// BenchmarkSendTracing: one binary-mode delivery per op to a no-op server with tracing off and on (one client
// span per attempt, the SDK with tide's in-memory store, no exporter):
//
//	go test ./eventing/delivery -run '^$' -bench SendTracing -benchmem -count 5
func BenchmarkSendTracing(b *testing.B) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(202) }))
	defer srv.Close()
	u, _ := url.Parse(srv.URL)
	ev := testEvent()
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
		s := New(Options{TracerProvider: tp})
		b.Run(name, func(b *testing.B) {
			b.ReportAllocs()
			cpu0 := processCPU()
			defer func() { b.ReportMetric(float64((processCPU()-cpu0).Nanoseconds())/float64(b.N), "cpu-ns/op") }()
			for b.Loop() {
				if r := s.Send(context.Background(), u, ev, Spec{}); r.Outcome != Delivered {
					b.Fatal(r.Err)
				}
			}
		})
	}
}
