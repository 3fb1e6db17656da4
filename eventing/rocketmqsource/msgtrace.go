package rocketmqsource

import (
	"context"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/apache/rocketmq-client-go/v2/primitive"
	"github.com/apache/rocketmq-client-go/v2/producer"
	"go.opentelemetry.io/otel/trace"

	"github.com/tide-run/tide/eventing/delivery"
	"github.com/tide-run/tide/eventing/tracerecord"
)

// Message trace (Config.MessageTrace): the source writes RocketMQ's own trace records for every delivery, as the
// official clients do with tracing on, so `tide mq trace ID|KEY` shows the source's consumer group beside the
// producer's records and the Triggers': a SubBefore record when a delivery starts and a SubAfter record with its
// result, each carrying tide's extension (eventing/tracerecord): the CloudEvent the message became, the sink, the
// sink's last status, the attempts, the delivery's latency and the OpenTelemetry trace it ran in. Records are keyed
// by the message's id, its keys and the event's id, and written to RMQ_SYS_TRACE_TOPIC on the source's own RocketMQ
// by a producer of the adapter's (the client's WithTrace keeps one trace client per process, bound to the first name
// server it saw: adapters on different clusters would break each other's consumption).

// traceProducerGroup is the producer group of the records' producer (the clients use _INNER_TRACE_PRODUCER-<group>).
const traceProducerGroup = "_INNER_TRACE_PRODUCER-tide-rocketmqsource"

var traceReqSeq atomic.Uint64

// msgTracer is the adapter's trace-record writer and its producer.
type msgTracer struct {
	w    *tracerecord.Writer
	p    interface{ Shutdown() error }
	once sync.Once
}

// startMsgTrace starts the records' producer; a failure is logged and the source runs without trace records
// (consumption never depends on them).
func (a *Adapter) startMsgTrace(addrs []string) *msgTracer {
	opts := []producer.Option{
		producer.WithNameServer(addrs),
		producer.WithGroupName(traceProducerGroup),
		producer.WithInstanceName("tide-rocketmqsource-trace-" + strconv.FormatInt(instanceSeq.Add(1), 10)),
		producer.WithRetry(1),
		producer.WithSendMsgTimeout(3 * time.Second),
	}
	if a.cfg.AccessKey != "" {
		opts = append(opts, producer.WithCredentials(primitive.Credentials{AccessKey: a.cfg.AccessKey, SecretKey: a.cfg.SecretKey}))
	}
	p, err := producer.NewDefaultProducer(opts...)
	if err == nil {
		err = p.Start()
	}
	if err != nil {
		a.log.Warn("message trace off: its producer did not start", "err", err)
		return nil
	}
	return &msgTracer{w: tracerecord.NewWriter(p, 3*time.Second, a.log), p: p}
}

// close writes what is queued and stops the producer.
func (t *msgTracer) close() {
	if t == nil {
		return
	}
	t.once.Do(func() {
		t.w.Close()
		_ = t.p.Shutdown()
	})
}

// traceConsume is one delivery's pair of records: begin writes the SubBefore, end the SubAfter.
type traceConsume struct {
	t     *msgTracer
	c     tracerecord.Consume
	keys  []string // what the records are found by
	start time.Time
	ext   tracerecord.Ext
	// maxReconsume is the group's bound on redeliveries (Config.MaxReconsumeTimes).
	maxReconsume int32
}

func (a *Adapter) traceBegin(ctx context.Context, msg *primitive.MessageExt, eventID string, start time.Time) *traceConsume {
	t := a.msgTrace
	if t == nil {
		return nil
	}
	id := messageID(msg, msg.GetProperties())
	keys := strings.Fields(msg.GetKeys())
	tc := &traceConsume{t: t, start: start, maxReconsume: a.cfg.MaxReconsumeTimes,
		c: tracerecord.Consume{Group: a.cfg.ConsumerGroup, MsgID: id, Keys: keys, RetryTimes: int(msg.ReconsumeTimes),
			RequestID: "tide-src-" + strconv.FormatUint(traceReqSeq.Add(1), 36) + "-" + strconv.FormatInt(start.UnixNano(), 36)},
		keys: append([]string{id}, keys...),
		ext:  tracerecord.Ext{Event: eventID, Sink: a.cfg.Sink.Redacted()},
	}
	if eventID != id {
		tc.keys = append(tc.keys, eventID)
	}
	if sc := trace.SpanContextFromContext(ctx); sc.HasTraceID() {
		tc.ext.TraceID = sc.TraceID().String()
	}
	t.w.Add(tc.c.BeforeRecord(start, tc.ext), tc.keys...)
	return tc
}

func (tc *traceConsume) end(res delivery.Result) {
	if tc == nil {
		return
	}
	now := time.Now()
	ext := tc.ext
	ext.Outcome, ext.Status, ext.Attempts, ext.Delivery = res.Outcome.String(), res.StatusCode, res.Attempts, now.Sub(tc.start)
	ok := res.Outcome == delivery.Delivered || res.Outcome == delivery.DeadLettered
	code := tracerecord.CodeSuccess
	if !ok {
		code = tracerecord.CodeFailed
		// The client sends a message back for redelivery until it was consumed MaxReconsumeTimes times; then the
		// broker moves it to %DLQ%<group> (ordered queues retry in place, with the same bound).
		ext.Then = tracerecord.ThenRetry
		if tc.c.RetryTimes >= int(tc.maxReconsume) {
			ext.Then = tracerecord.ThenDLQ
		}
	}
	tc.t.w.Add(tc.c.AfterRecord(now, now.Sub(tc.start), ok, code, ext), tc.keys...)
}
