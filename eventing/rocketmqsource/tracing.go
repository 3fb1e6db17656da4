package rocketmqsource

import (
	"context"
	"strconv"

	"github.com/apache/rocketmq-client-go/v2/primitive"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	semconv "go.opentelemetry.io/otel/semconv/v1.40.0"
	"go.opentelemetry.io/otel/trace"

	"github.com/tide-run/tide/eventing/delivery"
	"github.com/tide-run/tide/internal/tracing"
)

// Tracing of a RocketMQSource (docs/observability.md#traces): each message received gets a consumer span
// "process <topic>" (messaging semantic conventions, messaging.system=rocketmq), the child of the context the
// producer put in the message: the "traceparent"/"tracestate" user properties (OpenTelemetry's RocketMQ
// remoting-client instrumentation), else RocketMQ 5's TRACE_CONTEXT system property, else a CloudEvent's
// CE_traceparent. The mapped event's traceparent/tracestate extensions name that span, and the delivery to the
// sink (its client spans and traceparent header) is under it.

// Attributes of a source's span besides the conventions'.
const (
	AttrSource  = attribute.Key("tide.rocketmqsource") // namespace/name
	AttrOutcome = attribute.Key("tide.delivery.outcome")
)

func newTracer(p trace.TracerProvider) trace.Tracer {
	return tracing.Tracer(p, "github.com/tide-run/tide/eventing/rocketmqsource")
}

var noSpan = trace.SpanFromContext(context.Background())

func (a *Adapter) startProcess(msg *primitive.MessageExt, broker string) (context.Context, trace.Span) {
	ctx := tracing.ExtractMessageProperties(a.runCtx, msg) // not GetProperties: it copies the map
	if tracing.Off(a.tracer) {
		return ctx, noSpan
	}
	// Sized for all of the span's attributes, endProcess's included: the recorder keeps this slice.
	attrs := append(tracing.AppendRocketMQ(make([]attribute.KeyValue, 0, 16), "process", msg.Topic),
		semconv.MessagingConsumerGroupName(a.cfg.ConsumerGroup),
		semconv.MessagingMessageID(messageIDOf(msg)),
		semconv.MessagingMessageBodySize(len(msg.Body)),
		semconv.MessagingDestinationPartitionID(strconv.Itoa(int(queueID(msg)))),
		AttrSource.String(a.cfg.SourceNamespace+"/"+a.cfg.SourceName))
	if keys := msg.GetKeys(); keys != "" {
		attrs = append(attrs, semconv.MessagingRocketMQMessageKeys(keys))
	}
	if tag := msg.GetTags(); tag != "" {
		attrs = append(attrs, semconv.MessagingRocketMQMessageTag(tag))
	}
	if broker != "" {
		attrs = append(attrs, semconv.ServerAddress(broker))
	}
	if a.cfg.Namespace != "" {
		attrs = append(attrs, semconv.MessagingRocketMQNamespace(a.cfg.Namespace))
	}
	return tracing.StartSpan(ctx, a.tracer, "process "+msg.Topic, trace.SpanKindConsumer, attrs)
}

// messageIDOf is messageID without copying the message's properties.
func messageIDOf(msg *primitive.MessageExt) string {
	if id := msg.GetProperty(primitive.PropertyUniqueClientMessageIdKeyIndex); id != "" {
		return id
	}
	if msg.MsgId != "" {
		return msg.MsgId
	}
	return msg.OffsetMsgId
}

func endProcess(span trace.Span, res delivery.Result) {
	if !span.IsRecording() {
		return
	}
	span.SetAttributes(AttrOutcome.String(res.Outcome.String()))
	if res.StatusCode != 0 {
		span.SetAttributes(semconv.HTTPResponseStatusCode(res.StatusCode))
	}
	if res.Outcome == delivery.Failed && res.Err != nil {
		span.SetStatus(codes.Error, res.Err.Error())
	}
	span.End()
}
