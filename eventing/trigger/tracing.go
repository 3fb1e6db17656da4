package trigger

import (
	"context"
	"errors"
	"strconv"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	semconv "go.opentelemetry.io/otel/semconv/v1.40.0"
	"go.opentelemetry.io/otel/trace"

	"github.com/tide-run/tide/eventing/bus"
	"github.com/tide-run/tide/internal/tracing"
)

// Tracing of a Trigger (docs/observability.md#traces): every message its consumer group receives and its filter
// passes gets a consumer span "process <topic>" (messaging semantic conventions: messaging.system=rocketmq, messaging.destination.name,
// messaging.consumer.group.name, messaging.message.id, messaging.operation.type=process), the child of the
// context the message carries (its "traceparent" property, which the ingress writes, else RocketMQ 5's
// TRACE_CONTEXT, else the event's CE_traceparent). The delivery's client spans, the subscriber's traceparent
// and the event's traceparent extension, and a reply's producer span, are under it.

// Attributes of a Trigger's span besides the conventions'.
const (
	AttrTrigger    = attribute.Key("tide.trigger")           // namespace/name
	AttrOutcome    = attribute.Key("tide.delivery.outcome")  // Delivered, DeadLettered, Failed
	AttrAttempts   = attribute.Key("tide.delivery.attempts") // requests made to the subscriber
	AttrReconsumed = attribute.Key("messaging.rocketmq.reconsume_times")
)

func newTracer(p trace.TracerProvider) trace.Tracer {
	return tracing.Tracer(p, "github.com/tide-run/tide/eventing/trigger")
}

// startProcess starts the span of one message; ctx is the Trigger's context holding it.
func (d *dispatcher) startProcess(m *bus.Message, rc *runtimeConfig) (context.Context, trace.Span) {
	ctx := tracing.ExtractMessage(d.ctx, m.Properties)
	if tracing.Off(d.tracer) {
		return ctx, noSpan
	}
	// Sized for all of the span's attributes, endProcess's included: the recorder keeps this slice.
	attrs := append(tracing.AppendRocketMQ(make([]attribute.KeyValue, 0, 14), "process", m.Topic),
		semconv.MessagingConsumerGroupName(d.group),
		semconv.MessagingMessageID(m.MsgID),
		semconv.MessagingMessageBodySize(len(m.Body)),
		AttrTrigger.String(rc.cfg.Namespace+"/"+rc.cfg.Name))
	if m.ReconsumeTimes > 0 {
		attrs = append(attrs, AttrReconsumed.Int(int(m.ReconsumeTimes)))
	}
	return tracing.StartSpan(ctx, d.tracer, "process "+m.Topic, trace.SpanKindConsumer, attrs)
}

var noSpan = trace.SpanFromContext(context.Background())

// endProcess records the outcome and ends the span.
func endProcess(span trace.Span, act bus.Action, res *DeliveryResult) {
	if !span.IsRecording() {
		return
	}
	if res != nil {
		var attrs [4]attribute.KeyValue // one SetAttributes call
		kv := append(attrs[:0], AttrOutcome.String(res.Outcome.String()), AttrAttempts.Int(res.Attempts))
		if res.StatusCode != 0 {
			kv = append(kv, semconv.HTTPResponseStatusCode(res.StatusCode))
		}
		if res.Outcome == Failed && res.Err != nil && !errors.Is(res.Err, context.Canceled) {
			span.SetStatus(codes.Error, res.Err.Error())
			kv = append(kv, semconv.ErrorTypeKey.String(errType(res)))
		}
		span.SetAttributes(kv...)
	}
	switch act {
	case bus.Retry:
		span.AddEvent("left in RocketMQ for redelivery")
	case bus.DeadLetter:
		span.AddEvent("parked in the consumer group's %DLQ%")
	}
	span.End()
}

func errType(res *DeliveryResult) string {
	if res.StatusCode != 0 {
		return strconv.Itoa(res.StatusCode)
	}
	return "_OTHER"
}
