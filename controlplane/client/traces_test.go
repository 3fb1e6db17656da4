package client_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/tide-run/tide/controlplane/client"
	"github.com/tide-run/tide/internal/tracing"
	"github.com/tide-run/tide/internal/tracing/traceapi"
)

// TestPostSpansThenRead: spans posted through the client come back from Trace and Traces (the server side is
// internal/tracing's handler, as tide mounts it).
func TestPostSpansThenRead(t *testing.T) {
	st := tracing.NewStore(16)
	mux := http.NewServeMux()
	h := tracing.Handler(st)
	mux.Handle("GET "+traceapi.TracesPath, h)
	mux.Handle("POST "+traceapi.TracesPath, h)
	mux.Handle("GET "+traceapi.TracesPath+"/{id}", h)
	srv := httptest.NewServer(mux)
	defer srv.Close()
	c, err := client.New(srv.URL, nil)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now().UTC()
	const id = "4bf92f3577b34da6a3ce929d0e0e4736"
	spans := []traceapi.Span{
		{TraceID: id, SpanID: "00000000000000a1", Name: "sender", Start: now, End: now.Add(time.Millisecond), Attributes: map[string]string{"comment.id": "7"}},
		{TraceID: id, SpanID: "00000000000000a2", ParentSpanID: "00000000000000a1", Name: "receiver", Start: now, End: now.Add(2 * time.Millisecond)},
	}
	if err := c.PostSpans(context.Background(), spans); err != nil {
		t.Fatal(err)
	}
	tr, err := c.Trace(context.Background(), id)
	if err != nil || len(tr.Spans) != 2 || tr.Spans[1].Service != "external" {
		t.Fatalf("trace %+v, %v", tr, err)
	}
	l, err := c.Traces(context.Background(), client.TraceQuery{Attr: "comment.id=7"})
	if err != nil || len(l.Traces) != 1 || l.Traces[0].Root != "sender" {
		t.Fatalf("list %+v, %v", l, err)
	}
	if _, err := c.Trace(context.Background(), "0123456789abcdef0123456789abcdef"); err == nil {
		t.Fatal("an unknown trace did not fail")
	}
}
