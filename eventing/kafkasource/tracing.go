package kafkasource

import (
	"context"
	"strconv"

	"github.com/twmb/franz-go/pkg/kgo"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"

	"github.com/tide-run/tide/eventing/delivery"
	"github.com/tide-run/tide/internal/tracing"
)

// Tracing of a KafkaSource: each record gets a consumer span "process <topic>" (messaging.system=kafka), the child
// of the context the producer put in the record's traceparent/tracestate headers (W3C, as OpenTelemetry's Kafka
// instrumentations write them) or a CloudEvent's ce_traceparent; the event's traceparent extension and the
// delivery to the sink are under it.

var noSpan = trace.SpanFromContext(context.Background())

func (a *Adapter) startProcess(r *kgo.Record) (context.Context, trace.Span) {
	ctx := a.runCtx
	if len(r.Headers) > 0 {
		props := make(map[string]string, 2)
		for _, h := range r.Headers {
			switch h.Key {
			case "traceparent", "tracestate":
				props[h.Key] = string(h.Value)
			case "ce_traceparent":
				if _, ok := props["traceparent"]; !ok {
					props["traceparent"] = string(h.Value)
				}
			}
		}
		if len(props) > 0 {
			ctx = tracing.ExtractMessage(ctx, props)
		}
	}
	if tracing.Off(a.tracer) {
		return ctx, noSpan
	}
	return a.tracer.Start(ctx, "process "+r.Topic, trace.WithSpanKind(trace.SpanKindConsumer), trace.WithAttributes(
		attribute.String("messaging.system", "kafka"),
		attribute.String("messaging.operation.name", "process"),
		attribute.String("messaging.destination.name", r.Topic),
		attribute.String("messaging.destination.partition.id", strconv.Itoa(int(r.Partition))),
		attribute.Int64("messaging.kafka.offset", r.Offset),
		attribute.String("messaging.consumer.group.name", a.cfg.ConsumerGroup),
		attribute.String("tide.kafkasource", a.cfg.SourceNamespace+"/"+a.cfg.SourceName),
	))
}

func endProcess(span trace.Span, res delivery.Result) {
	if !span.IsRecording() {
		return
	}
	span.SetAttributes(attribute.String("tide.delivery.outcome", res.Outcome.String()))
	if res.Outcome == delivery.Failed && res.Err != nil {
		span.SetStatus(codes.Error, res.Err.Error())
	}
	span.End()
}
