package gateway

import (
	"context"
	"net/http"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/trace"

	"github.com/tide-run/tide/internal/tracing"
	"github.com/tide-run/tide/serving/activator"
)

// Tracing in the gateway (docs/observability.md#traces): a request routed to a revision gets a server span
// "{method}" (HTTP semantic conventions), the child of the client's W3C traceparent; the traceparent the instance
// receives names that span, so the program's own spans join the trace. The time spent waiting for an instance
// (the activator holding the request at zero, or the queue) is the span's event "instance acquired" with
// tide.activator.wait_ms. With tracing off the client's traceparent/tracestate headers pass unchanged.

// Attributes of the gateway's span besides the conventions'.
const (
	AttrRevision = attribute.Key("tide.revision") // namespace/name
	AttrWaitMS   = attribute.Key("tide.activator.wait_ms")
	AttrInstance = attribute.Key("tide.instance") // the instance's address
)

func newTracer(p trace.TracerProvider) trace.Tracer {
	return tracing.Tracer(p, "github.com/tide-run/tide/serving/gateway")
}

// startSpan starts the request's server span and makes the request carry it to the instance.
func (r *revision) startSpan(ctx context.Context, req *http.Request) (context.Context, trace.Span) {
	tr := r.g.tracer
	if tracing.Off(tr) {
		return ctx, nil
	}
	ctx, span := tracing.StartServer(ctx, tr, req, "", AttrRevision.String(r.key.String()))
	// Replaces the client's traceparent/tracestate: the instance's parent is this span.
	tracing.InjectHTTP(ctx, req.Header)
	return ctx, span
}

func (r *revision) endSpan(span trace.Span, sw *statusWriter) {
	if span != nil {
		tracing.EndServer(span, sw.status)
	}
}

// spanClock returns the time before an acquire when the span records (zero otherwise: no clock read).
func (r *revision) spanClock(span trace.Span) time.Time {
	if span == nil || !span.IsRecording() {
		return time.Time{}
	}
	return time.Now()
}

// acquired notes the instance a request got and how long it waited for it.
func (r *revision) acquired(span trace.Span, b activator.Backend, since time.Time) {
	if since.IsZero() {
		return
	}
	attrs := []attribute.KeyValue{AttrWaitMS.Float64(float64(time.Since(since).Microseconds()) / 1000)}
	if be, ok := b.(*backend); ok {
		attrs = append(attrs, AttrInstance.String(be.addr))
	}
	span.AddEvent("instance acquired", trace.WithAttributes(attrs...))
}
