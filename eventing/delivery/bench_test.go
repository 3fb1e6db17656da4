package delivery

import (
	"context"
	"net/http"
	"net/http/httptest"
	"net/url"
	"testing"
)

// BenchmarkSend: one event per op to a no-op HTTP server over a kept-alive connection, binary and structured.
//
//	go test -run '^$' -bench Send -benchmem ./eventing/delivery/
func BenchmarkSend(b *testing.B) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(202) }))
	defer srv.Close()
	u, _ := url.Parse(srv.URL)
	s := New(Options{})
	ev := testEvent()
	for _, f := range []Format{FormatBinary, FormatJSON} {
		b.Run(string(f), func(b *testing.B) {
			b.ReportAllocs()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					if r := s.Send(context.Background(), u, ev, Spec{Format: f}); r.Outcome != Delivered {
						b.Fatal(r.Err)
					}
				}
			})
		})
	}
}
