package bus

import (
	"context"
	"log/slog"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/apache/rocketmq-client-go/v2/primitive"

	"github.com/tide-run/tide/eventing/tracerecord"
)

// Message trace: with RocketMQOptions.MessageTrace the bus's consumer groups (Triggers, and anything else that
// subscribes through it) write RocketMQ's own trace records for every message they consume, as the official
// clients do with tracing on, so `tide mq trace` (or any RocketMQ trace viewer) shows them beside the producers and
// the other consumers: a SubBefore record when the handler is called and a SubAfter record with its result and
// duration. Records are Java's TraceDataEncoder layout (what the Java and Go clients write), batched into messages
// on RMQ_SYS_TRACE_TOPIC keyed by the consumed messages' ids and their CloudEvent ids (the CE_id property), so a
// trace by an event's id — for an event from a RocketMQSource, the original message's id — finds the Trigger
// deliveries of the Broker-topic message that carried it.
//
// Written here rather than with the client's WithTrace because v2.1.2 keeps a single trace client per process,
// bound to the first name server it is given: a second bus (another cluster, or a test's second broker) would get
// a nil dispatcher whose interceptor fails every consume.

const (
	traceTopic      = tracerecord.Topic
	traceFlushEvery = 100 * time.Millisecond
	// traceBatchBytes bounds one trace message (the clients use about 118 KB).
	traceBatchBytes = 64 << 10
	// traceKeyBytes bounds one trace message's KEYS (properties are at most 32 KiB).
	traceKeyBytes = 16 << 10
	// traceQueue bounds records waiting to be written; when it is full records are dropped (and counted), never
	// the consumption.
	traceQueue = 8192
)

type traceRecord struct {
	data string
	keys []string
}

type traceWriter struct {
	// send stores one trace message (body, KEYS) on traceTopic; log, stop and workers are the bus's.
	send    func(ctx context.Context, body []byte, keys []string) error
	log     *slog.Logger
	stop    <-chan struct{}
	workers *sync.WaitGroup
	timeout time.Duration
	records chan traceRecord
	dropped atomic.Int64
	seq     atomic.Uint64
}

// startTraceWriter starts the goroutine that writes trace records; it stops with the bus (b.stop), writing what
// it holds first.
func (b *RocketMQ) startTraceWriter() {
	b.trace = newTraceWriter(func(ctx context.Context, body []byte, keys []string) error {
		_, err := b.producers[0].SendSync(ctx, primitive.NewMessage(traceTopic, body).WithKeys(keys))
		return err
	}, b.log, b.stop, &b.workers, b.opts.SendTimeout)
}

func newTraceWriter(send func(context.Context, []byte, []string) error, log *slog.Logger, stop <-chan struct{},
	workers *sync.WaitGroup, timeout time.Duration) *traceWriter {
	w := &traceWriter{send: send, log: log, stop: stop, workers: workers, timeout: timeout, records: make(chan traceRecord, traceQueue)}
	workers.Add(1)
	go w.run()
	return w
}

func (w *traceWriter) add(r traceRecord) {
	select {
	case w.records <- r:
	default:
		if w.dropped.Add(1)%1000 == 1 {
			w.log.Warn("message trace records dropped: the writer is behind", "dropped", w.dropped.Load())
		}
	}
}

func (w *traceWriter) run() {
	defer w.workers.Done()
	t := time.NewTicker(traceFlushEvery)
	defer t.Stop()
	var body strings.Builder
	keys := map[string]struct{}{}
	failures := 0
	flush := func() {
		if body.Len() == 0 {
			return
		}
		ks := make([]string, 0, len(keys))
		for k := range keys {
			ks = append(ks, k)
		}
		ctx, cancel := context.WithTimeout(context.Background(), w.timeout)
		if err := w.send(ctx, []byte(body.String()), ks); err != nil {
			// Lost records only thin out the trace; consumption goes on. Log the first failure of a run and
			// every 100th after it, not every flush while the broker is away.
			if failures++; failures%100 == 1 {
				w.log.Warn("writing message trace records failed; they are dropped", "err", err, "failures", failures)
			}
		} else {
			failures = 0
		}
		cancel()
		body.Reset()
		clear(keys)
	}
	keyBytes := 0
	take := func(r traceRecord) {
		body.WriteString(r.data)
		for _, k := range r.keys {
			if _, ok := keys[k]; !ok {
				keys[k] = struct{}{}
				keyBytes += len(k) + 1
			}
		}
		// A message's properties are at most 32 KiB, KEYS included.
		if body.Len() >= traceBatchBytes || keyBytes >= traceKeyBytes {
			flush()
			keyBytes = 0
		}
	}
	for {
		select {
		case r := <-w.records:
			take(r)
		case <-t.C:
			flush()
			keyBytes = 0
		case <-w.stop:
			for {
				select {
				case r := <-w.records:
					take(r)
				default:
					flush()
					return
				}
			}
		}
	}
}

// Delivery is what a handler did with a message, for its trace record's extension (eventing/tracerecord): a
// Trigger notes where it delivered the event, the outcome, the subscriber's last status and the attempts.
type Delivery struct {
	Sink     *url.URL // the destination (its credentials are left out of the record)
	Outcome  string   // Delivered, DeadLettered, Failed
	Status   int      // the last HTTP status (0: none)
	Attempts int
}

type deliveryNoteKey struct{}

// NoteDelivery records d for the message the handler was called with (ctx is the Handler's); a no-op without
// message trace. Call it at most once per message, before the handler returns.
func NoteDelivery(ctx context.Context, d Delivery) {
	if p, ok := ctx.Value(deliveryNoteKey{}).(*Delivery); ok {
		*p = d
	}
}

// interceptor records each consumed message's SubBefore and SubAfter, with tide's extension: the CloudEvent id
// (CE_id), the OpenTelemetry trace named by the message's traceparent property (the Trigger's span is in the same
// trace) and what the handler noted (NoteDelivery).
//
// maxReconsume is the subscription's bound on redeliveries: a failed consumption of a message consumed that often
// moves it to %DLQ%<group>, as does a handler's DeadLetter (delay level -1).
func (w *traceWriter) interceptor(maxReconsume int32) primitive.Interceptor {
	return func(ctx context.Context, req, reply interface{}, next primitive.Invoker) error {
		cc, ok := primitive.GetConsumerCtx(ctx)
		if !ok || len(cc.Msgs) == 0 {
			return next(ctx, req, reply)
		}
		reqID := "tide-" + strconv.FormatUint(w.seq.Add(1), 36) + "-" + strconv.FormatInt(time.Now().UnixNano(), 36)
		start := time.Now()
		type bean struct {
			c       tracerecord.Consume
			ext     tracerecord.Ext
			recKeys []string
		}
		group := strings.TrimPrefix(cc.ConsumerGroup, "%")
		beans := make([]bean, 0, len(cc.Msgs))
		for _, m := range cc.Msgs {
			if m == nil {
				continue
			}
			if _, marker := m.GetProperties()[PropMarker]; marker {
				continue
			}
			bn := bean{c: tracerecord.Consume{Group: group, RequestID: reqID, MsgID: m.MsgId, RetryTimes: int(m.ReconsumeTimes)},
				recKeys: []string{m.MsgId}}
			ce := m.GetProperty("CE_id")
			if ce != "" {
				bn.c.Keys = append(bn.c.Keys, ce)
			}
			bn.c.Keys = append(bn.c.Keys, strings.Fields(m.GetKeys())...)
			bn.recKeys = append(bn.recKeys, bn.c.Keys...)
			bn.ext = tracerecord.Ext{Event: ce, TraceID: tracerecord.TraceIDFromTraceparent(m.GetProperty("traceparent"))}
			beans = append(beans, bn)
		}
		for _, bn := range beans {
			w.add(traceRecord{keys: bn.recKeys, data: bn.c.BeforeRecord(start, bn.ext)})
		}
		var note Delivery
		err := next(context.WithValue(ctx, deliveryNoteKey{}, &note), req, reply)
		code := primitive.ConsumeReturnType(cc.Properties[primitive.PropCtxType]).Ordinal()
		success := cc.Success && err == nil
		if err != nil {
			code = primitive.ExceptionReturn.Ordinal()
		}
		end := time.Now()
		for _, bn := range beans {
			ext := bn.ext
			ext.Outcome, ext.Status, ext.Attempts = note.Outcome, note.Status, note.Attempts
			if note.Sink != nil {
				ext.Sink = note.Sink.Redacted()
			}
			if note.Outcome != "" {
				ext.Delivery = end.Sub(start)
			}
			if !success {
				ext.Then = tracerecord.ThenRetry
				if bn.c.RetryTimes >= int(maxReconsume) {
					ext.Then = tracerecord.ThenDLQ
				} else if c, ok := primitive.GetConcurrentlyCtx(ctx); ok && c.DelayLevelWhenNextConsume < 0 {
					ext.Then = tracerecord.ThenDLQ
				}
			}
			w.add(traceRecord{keys: bn.recKeys, data: bn.c.AfterRecord(end, end.Sub(start), success, code, ext)})
		}
		return err
	}
}
