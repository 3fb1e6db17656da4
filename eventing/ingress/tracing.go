package ingress

import (
	"context"
	"net/http"

	"github.com/cloudevents/sdk-go/v2/event"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	semconv "go.opentelemetry.io/otel/semconv/v1.40.0"
	"go.opentelemetry.io/otel/trace"

	"github.com/tide-run/tide/internal/tracing"
)

// Tracing at the ingress (docs/observability.md#traces):
//
//   - a request gets a server span "POST /{namespace}/{broker}", the child of its W3C traceparent header when it
//     has one, else of its ce-traceparent header (binary-mode distributed-tracing extension);
//   - each event stored gets a producer span "send <topic>" under it (messaging semantic conventions,
//     messaging.system=rocketmq). An event of a structured or batch request that names its own traceparent and
//     came without a traceparent header is parented there instead, linked to the request's span;
//   - the stored event's traceparent/tracestate extensions and the RocketMQ message's "traceparent"/"tracestate"
//     properties name that producer span, so the Trigger's consumer continues the trace.
//
// With tracing off the spans are no-ops, but an incoming traceparent still travels: the stored event and message
// carry the caller's context (that is what lets a subscriber see the traceparent sent to the ingress).

// AttrBroker names the Broker (namespace/name) on ingress spans.
const AttrBroker = attribute.Key("tide.broker")

func newTracer(p trace.TracerProvider) trace.Tracer {
	return tracing.Tracer(p, "github.com/tide-run/tide/eventing/ingress")
}

// spanRecorder carries a request's span and records the status the handler answers.
type spanRecorder struct {
	http.ResponseWriter
	ctx        context.Context
	status     int
	fromHeader bool // the request named its parent in a traceparent or ce-traceparent header
}

func (s *spanRecorder) WriteHeader(code int) {
	if s.status == 0 {
		s.status = code
	}
	s.ResponseWriter.WriteHeader(code)
}

func (s *spanRecorder) Write(p []byte) (int, error) {
	if s.status == 0 {
		s.status = http.StatusOK
	}
	return s.ResponseWriter.Write(p)
}

func (s *spanRecorder) Unwrap() http.ResponseWriter { return s.ResponseWriter }

// startRequest starts a POST's server span; done ends it with the status answered.
func (in *Ingress) startRequest(w http.ResponseWriter, r *http.Request) (*spanRecorder, func()) {
	ctx := r.Context()
	fromHeader := len(r.Header["Traceparent"]) > 0
	if !fromHeader {
		if ce := r.Header.Get("Ce-Traceparent"); ce != "" {
			// Binary mode: the event's own traceparent extension is the parent of the whole request.
			if sc := tracing.ParseTraceParent(ce); sc.IsValid() {
				ctx, fromHeader = trace.ContextWithRemoteSpanContext(ctx, sc), true
			}
		}
	}
	ctx, span := tracing.StartServer(ctx, in.tracer, r, "/{namespace}/{broker}")
	sr := &spanRecorder{ResponseWriter: w, ctx: ctx, fromHeader: fromHeader}
	return sr, func() { tracing.EndServer(span, sr.status) }
}

// startSend starts the producer span of one event. ctxWins says ctx's span is the event's parent (a request with a
// traceparent header, or an in-process Publish from a traced caller); otherwise the event's own traceparent
// extension is, when it has one.
func (in *Ingress) startSend(ctx context.Context, e *event.Event, namespace, name, topic string, ctxWins bool) (context.Context, trace.Span) {
	var links []trace.Link
	if !ctxWins && hasTraceParent(e) {
		if link := trace.LinkFromContext(ctx); link.SpanContext.IsValid() {
			links = append(links, link)
		}
		ctx = tracing.ExtractTraceParent(ctx, extension(e, tracing.TraceParent), extension(e, tracing.TraceState))
	}
	if tracing.Off(in.tracer) {
		return ctx, noSpan
	}
	return tracing.StartSpan(ctx, in.tracer, "send "+topic, trace.SpanKindProducer, sendAttrs(e, namespace, name, topic), links...)
}

var noSpan = trace.SpanFromContext(context.Background()) // non-recording, invalid: ending it does nothing

func hasTraceParent(e *event.Event) bool { return extension(e, tracing.TraceParent) != "" }

// extension is a string extension of e, read in place: e.Extensions() copies the whole map.
func extension(e *event.Event, name string) string {
	if ec, ok := e.Context.(*event.EventContextV1); ok {
		s, _ := ec.Extensions[name].(string)
		return s
	}
	s, _ := e.Extensions()[name].(string)
	return s
}

func sendAttrs(e *event.Event, namespace, name, topic string) []attribute.KeyValue {
	return append(tracing.AppendRocketMQ(make([]attribute.KeyValue, 0, 8), "send", topic),
		semconv.CloudEventsEventID(e.ID()), semconv.CloudEventsEventType(e.Type()),
		semconv.CloudEventsEventSource(e.Source()), AttrBroker.String(namespace+"/"+name))
}

// endSend ends an event's producer span with the storing outcome.
func endSend(span trace.Span, err error) {
	if !span.IsRecording() {
		return
	}
	if err != nil {
		span.RecordError(err)
		span.SetStatus(codes.Error, err.Error())
	}
	span.End()
}

// setTraceContext keeps the event's distributed-tracing extension in step with its producer span (or, with tracing
// off, with the caller's context).
func setTraceContext(sctx context.Context, e *event.Event) { tracing.SetEvent(sctx, e) }

// injectMessage sets the message's "traceparent"/"tracestate" properties, RocketMQ's way of carrying it.
func injectMessage(sctx context.Context, props map[string]string) { tracing.InjectMessage(sctx, props) }
