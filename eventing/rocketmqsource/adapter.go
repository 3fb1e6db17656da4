package rocketmqsource

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/apache/rocketmq-client-go/v2"
	"github.com/apache/rocketmq-client-go/v2/consumer"
	"github.com/apache/rocketmq-client-go/v2/primitive"
	"github.com/apache/rocketmq-client-go/v2/rlog"
	"go.opentelemetry.io/otel/trace"

	"github.com/tide-run/tide/apis/sources/v1alpha1"
	"github.com/tide-run/tide/eventing/delivery"
	"github.com/tide-run/tide/internal/tracing"
)

// Sentinel errors of Start; the Status reason says the same in the RocketMQSource's condition vocabulary.
var (
	ErrNameServerUnreachable = errors.New("no RocketMQ name server reachable")
	ErrTopicNotFound         = errors.New("topic not found")
	ErrBadCredentials        = errors.New("RocketMQ rejected the credentials")
	ErrConsumer              = errors.New("RocketMQ consumer failed")
	ErrStopped               = errors.New("adapter stopped")
)

// pushConsumer is the part of the official client's push consumer the adapter uses (rocketmq.PushConsumer).
type pushConsumer interface {
	Start() error
	Shutdown() error
	Subscribe(topic string, selector consumer.MessageSelector,
		f func(context.Context, ...*primitive.MessageExt) (consumer.ConsumeResult, error)) error
	Suspend()
}

// Status is whether the consumer runs, in the words of the RocketMQSource Deployed condition.
type Status struct {
	Deployed bool
	// Reason is one of the v1alpha1.Reason* constants when not deployed ("" before Start).
	Reason  string
	Message string
}

// Counters are cumulative outcomes since New. Every message the adapter received ends in exactly one of
// Delivered, DeadLettered, Retried or Abandoned per receipt (a retried or abandoned message is received again).
type Counters struct {
	// Delivered: the sink answered 2xx.
	Delivered int64
	// DeadLettered: the sink failed for good and the dead-letter sink accepted the event.
	DeadLettered int64
	// Retried: neither accepted it; the message went back to RocketMQ (retry topic, or in-place retry when ordered).
	Retried int64
	// Abandoned: deliveries cut off by Stop, left unacknowledged for the group's next consumer to redeliver.
	Abandoned int64
	// InFlight: deliveries under way now.
	InFlight int64
}

// Adapter consumes one RocketMQSource's topics and delivers the events. Start once, Stop once.
type Adapter struct {
	cfg    Config
	mapper Mapper
	sender *delivery.Sender
	log    *slog.Logger
	tracer trace.Tracer

	// sem bounds concurrent deliveries in unordered mode across all topics and the retry topic (the client bounds
	// each topic separately, which would let the retry topic double the budget).
	sem chan struct{}

	// runCtx is the context of all deliveries; cancelled by Stop after the consumer is shut down, so deliveries
	// still running then end Failed and their messages, whose queues are already dropped, stay unacknowledged.
	runCtx    context.Context
	cancelRun context.CancelFunc

	// flightMu guards stopping, active and drained: a delivery is either counted in active before Stop sets
	// stopping, or never starts; Stop waits on drained until active is back to zero.
	flightMu sync.Mutex
	stopping bool
	active   int
	drained  chan struct{}

	delivered, deadLettered, retried, abandoned, inFlight atomic.Int64
	sendHist, ageHist                                     latencyHist // latency.go

	mu       sync.Mutex // guards status, consumer and msgTrace (handle reads msgTrace unguarded: it is set before the consumer starts); taken inside flightMu, never the other way round
	status   Status
	consumer pushConsumer
	started  bool

	// msgTrace writes message-trace records (msgtrace.go); nil without Config.MessageTrace or when its producer
	// failed. Set in Start before the consumer starts, closed in Stop after it is shut down.
	msgTrace *msgTracer
}

// quietClientLog turns the client's process-global logger down to errors, once per process.
var quietClientLog sync.Once

// New validates cfg and returns an Adapter; nothing connects until Start.
func New(cfg Config) (*Adapter, error) {
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	if cfg.MaxInFlight == 0 {
		cfg.MaxInFlight = int(v1alpha1.DefaultMaxInFlight)
	}
	if cfg.MaxReconsumeTimes == 0 {
		cfg.MaxReconsumeTimes = 16
	}
	if cfg.OrderedRetryInterval <= 0 {
		cfg.OrderedRetryInterval = time.Second
	}
	if cfg.PullBatchSize <= 0 {
		cfg.PullBatchSize = 32
	}
	if cfg.Selector.Type == "" {
		cfg.Selector.Type = v1alpha1.SelectorTag
	}
	if cfg.Selector.Type == v1alpha1.SelectorTag && strings.TrimSpace(cfg.Selector.Expression) == "" {
		cfg.Selector.Expression = "*"
	}
	log := cfg.Logger
	if log == nil {
		log = slog.Default()
	}
	log = log.With("component", "rocketmqsource", "source", cfg.SourceNamespace+"/"+cfg.SourceName, "group", cfg.ConsumerGroup)
	sender := cfg.Sender
	if sender == nil {
		sender = delivery.New(delivery.Options{Client: cfg.HTTPClient, Logger: log, TracerProvider: cfg.TracerProvider})
	}
	quietClientLog.Do(func() { rlog.SetLogLevel("error") })
	a := &Adapter{
		cfg:    cfg,
		mapper: Mapper{Namespace: cfg.SourceNamespace, Name: cfg.SourceName, Overrides: cfg.Overrides, RocketMQNamespace: cfg.Namespace},
		sender: sender,
		log:    log,
		tracer: newTracer(cfg.TracerProvider),
		sem:    make(chan struct{}, cfg.MaxInFlight),
	}
	a.runCtx, a.cancelRun = context.WithCancel(context.Background())
	return a, nil
}

// Status returns the current deployment status.
func (a *Adapter) Status() Status {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.status
}

// Counters returns the outcome counters.
func (a *Adapter) Counters() Counters {
	return Counters{Delivered: a.delivered.Load(), DeadLettered: a.deadLettered.Load(), Retried: a.retried.Load(),
		Abandoned: a.abandoned.Load(), InFlight: a.inFlight.Load()}
}

func (a *Adapter) setStatus(deployed bool, reason, msg string) {
	a.mu.Lock()
	a.status = Status{Deployed: deployed, Reason: reason, Message: msg}
	a.mu.Unlock()
}

// Start connects, subscribes and starts consuming. It returns once the consumer runs, or an error wrapping one of
// the sentinel errors (the Status then carries the matching reason).
func (a *Adapter) Start(ctx context.Context) error {
	a.mu.Lock()
	if a.started {
		a.mu.Unlock()
		return fmt.Errorf("%w: Start called twice", ErrConsumer)
	}
	a.started = true
	a.mu.Unlock()

	addrs, err := resolveNameServers(ctx, a.cfg.NameServers)
	if err != nil {
		a.setStatus(false, v1alpha1.ReasonNameServerUnreachable, err.Error())
		return err
	}
	c, err := rocketmq.NewPushConsumer(a.clientOptions(addrs)...)
	if err != nil {
		a.setStatus(false, v1alpha1.ReasonConsumerFailed, err.Error())
		return fmt.Errorf("%w: %w", ErrConsumer, err)
	}
	if a.cfg.MessageTrace {
		t := a.startMsgTrace(addrs)
		a.mu.Lock()
		a.msgTrace = t
		a.mu.Unlock()
	}
	sel := consumer.MessageSelector{Type: consumer.TAG, Expression: a.cfg.Selector.Expression}
	if a.cfg.Selector.Type == v1alpha1.SelectorSQL92 {
		sel.Type = consumer.SQL92
	}
	for _, t := range a.cfg.Topics {
		if err := c.Subscribe(t, sel, a.consume); err != nil {
			a.setStatus(false, v1alpha1.ReasonConsumerFailed, err.Error())
			return fmt.Errorf("%w: subscribe %s: %w", ErrConsumer, t, err)
		}
	}
	if err := c.Start(); err != nil {
		// The client starts its instance (route refresh and heartbeat timers, connections) before it checks the
		// topic routes, so a failed Start must still be shut down, or those keep running for the process's life.
		_ = c.Shutdown()
		a.msgTrace.close()
		reason, sentinel := classify(err)
		a.setStatus(false, reason, err.Error()+hint(reason, a.cfg.Topics))
		return fmt.Errorf("%w: %w", sentinel, err)
	}
	// Publish the consumer under flightMu, which Stop holds while it reads it: either Stop sees the consumer, or
	// this sees that Stop ran (and found none to shut down).
	a.flightMu.Lock()
	stopped := a.stopping
	if !stopped {
		a.mu.Lock()
		a.consumer = c
		a.mu.Unlock()
	}
	a.flightMu.Unlock()
	if stopped {
		_ = c.Shutdown()
		a.msgTrace.close()
		return ErrStopped
	}
	a.setStatus(true, "", "")
	a.log.Info("consuming", "topics", a.cfg.Topics, "nameServers", addrs, "ordered", a.cfg.Ordered, "maxInFlight", a.cfg.MaxInFlight, "sink", a.cfg.Sink.Redacted())
	return nil
}

// instanceSeq makes client instance names unique within the process: the client library shares one connection
// set per instance name, and one set per adapter keeps adapters independent (shutting one down does not touch
// another's connections).
var instanceSeq atomic.Int64

func (a *Adapter) clientOptions(addrs []string) []consumer.Option {
	opts := []consumer.Option{
		consumer.WithNameServer(addrs),
		consumer.WithGroupName(a.cfg.ConsumerGroup),
		consumer.WithConsumerModel(consumer.Clustering),
		consumer.WithConsumerOrder(a.cfg.Ordered),
		consumer.WithConsumeMessageBatchMaxSize(1),
		consumer.WithConsumeGoroutineNums(a.cfg.MaxInFlight),
		consumer.WithMaxReconsumeTimes(a.cfg.MaxReconsumeTimes),
		consumer.WithSuspendCurrentQueueTimeMillis(a.cfg.OrderedRetryInterval),
		consumer.WithPullBatchSize(a.cfg.PullBatchSize),
		consumer.WithAutoCommit(true),
		consumer.WithInstance("tide-rocketmqsource-" + strconv.FormatInt(instanceSeq.Add(1), 10)),
	}
	kind, at, _ := v1alpha1.ParseInitialOffset(a.cfg.InitialOffset)
	switch {
	case kind == v1alpha1.OffsetEarliest:
		opts = append(opts, consumer.WithConsumeFromWhere(consumer.ConsumeFromFirstOffset))
	case kind == v1alpha1.OffsetLatest:
		opts = append(opts, consumer.WithConsumeFromWhere(consumer.ConsumeFromLastOffset))
	default:
		// The client parses this layout as UTC.
		opts = append(opts, consumer.WithConsumeFromWhere(consumer.ConsumeFromTimestamp),
			consumer.WithConsumeTimestamp(at.UTC().Format("20060102150405")))
	}
	if a.cfg.Namespace != "" {
		opts = append(opts, consumer.WithNamespace(a.cfg.Namespace))
	}
	if a.cfg.AccessKey != "" {
		opts = append(opts, consumer.WithCredentials(primitive.Credentials{AccessKey: a.cfg.AccessKey, SecretKey: a.cfg.SecretKey}))
	}
	return opts
}

// resolveNameServers turns host:port into ip:port (the client accepts only literal IPs) and checks that at least
// one name server accepts a TCP connection, so an unreachable one is reported as such rather than as a missing topic.
func resolveNameServers(ctx context.Context, servers []string) ([]string, error) {
	var out []string
	var lastErr error
	for _, s := range servers {
		host, port, err := net.SplitHostPort(s)
		if err != nil {
			return nil, fmt.Errorf("%w: name server %q: %w", ErrInvalidConfig, s, err)
		}
		ips, err := net.DefaultResolver.LookupHost(ctx, host)
		if err != nil || len(ips) == 0 {
			lastErr = fmt.Errorf("resolving %s: %w", host, err)
			continue
		}
		out = append(out, net.JoinHostPort(ips[0], port))
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("%w: %w", ErrNameServerUnreachable, lastErr)
	}
	d := net.Dialer{Timeout: 3 * time.Second}
	for _, addr := range out {
		conn, err := d.DialContext(ctx, "tcp", addr)
		if err == nil {
			conn.Close()
			return out, nil
		}
		lastErr = err
	}
	return nil, fmt.Errorf("%w: %v: %w", ErrNameServerUnreachable, out, lastErr)
}

// hint is what the status message adds so a user knows what to do about a start failure; the source keeps retrying.
func hint(reason string, topics []string) string {
	switch reason {
	case v1alpha1.ReasonTopicNotFound:
		name := "TOPIC"
		if len(topics) == 1 {
			name = topics[0]
		}
		return fmt.Sprintf(" (create it, e.g. `tide mq topic create %s`, or produce to it; the source retries)", name)
	case v1alpha1.ReasonNameServerUnreachable:
		return " (is RocketMQ running? `tide up` starts one; the source retries)"
	}
	return ""
}

// classify maps a client Start error to a condition reason and sentinel.
func classify(err error) (string, error) {
	s := strings.ToLower(err.Error())
	switch {
	case strings.Contains(s, "route info not found"), strings.Contains(s, "topic not exist"):
		return v1alpha1.ReasonTopicNotFound, ErrTopicNotFound
	case strings.Contains(s, "accesskey"), strings.Contains(s, "signature"), strings.Contains(s, "no permission"), strings.Contains(s, "acl"):
		return v1alpha1.ReasonBadCredentials, ErrBadCredentials
	case strings.Contains(s, "connection refused"), strings.Contains(s, "i/o timeout"):
		return v1alpha1.ReasonNameServerUnreachable, ErrNameServerUnreachable
	}
	return v1alpha1.ReasonConsumerFailed, ErrConsumer
}

// consume is the client's callback. Batches hold one message (WithConsumeMessageBatchMaxSize(1)), so the result
// is that message's: success only once its event was delivered or dead-lettered.
func (a *Adapter) consume(ctx context.Context, msgs ...*primitive.MessageExt) (consumer.ConsumeResult, error) {
	broker := ""
	if mc, ok := primitive.GetConsumerCtx(ctx); ok && mc.MQ != nil {
		broker = mc.MQ.BrokerName
	}
	for _, msg := range msgs {
		if a.handle(msg, broker) {
			continue
		}
		if a.runCtx.Err() != nil {
			// Abandoned by Stop: the queue is dropped, the client ignores this answer, nothing is handed back.
			a.abandoned.Add(1)
		} else {
			a.retried.Add(1)
		}
		if a.cfg.Ordered {
			if oc, ok := primitive.GetOrderlyCtx(ctx); ok {
				oc.SuspendCurrentQueueTimeMillis = int(a.cfg.OrderedRetryInterval.Milliseconds())
			}
			return consumer.SuspendCurrentQueueAMoment, nil
		}
		if cc, ok := primitive.GetConcurrentlyCtx(ctx); ok && a.cfg.RetryDelayLevel > 0 {
			cc.DelayLevelWhenNextConsume = a.cfg.RetryDelayLevel
		}
		return consumer.ConsumeRetryLater, nil
	}
	return consumer.ConsumeSuccess, nil
}

// handle delivers one message and reports whether it may be acknowledged.
func (a *Adapter) handle(msg *primitive.MessageExt, broker string) bool {
	a.flightMu.Lock()
	if a.stopping {
		a.flightMu.Unlock()
		// Stop is draining: do not start new deliveries. Wait for the consumer to be shut down (its queues are then
		// dropped, so the client ignores this result and the message stays unacknowledged for the next owner).
		<-a.runCtx.Done()
		return false
	}
	a.active++
	a.flightMu.Unlock()
	defer func() {
		a.flightMu.Lock()
		a.active--
		if a.active == 0 && a.drained != nil {
			close(a.drained)
			a.drained = nil
		}
		a.flightMu.Unlock()
	}()
	if !a.cfg.Ordered {
		select {
		case a.sem <- struct{}{}:
			defer func() { <-a.sem }()
		case <-a.runCtx.Done():
			return false
		}
	}
	a.inFlight.Add(1)
	defer a.inFlight.Add(-1)
	ev := a.mapper.Map(msg, broker)
	start := time.Now()
	ctx, span := a.startProcess(msg, broker)
	// The sink sees this span in both the traceparent header and the event's distributed-tracing extension.
	tracing.SetEvent(ctx, &ev)
	tc := a.traceBegin(ctx, msg, ev.ID(), start)
	res := a.sender.Send(ctx, a.cfg.Sink, ev, a.cfg.Delivery)
	tc.end(res)
	endProcess(span, res)
	a.observeDelivery(msg, res, start)
	switch res.Outcome {
	case delivery.Delivered:
		a.delivered.Add(1)
		return true
	case delivery.DeadLettered:
		a.deadLettered.Add(1)
		a.log.Warn("event dead-lettered", "id", ev.ID(), "topic", msg.Topic, "queueOffset", msg.QueueOffset, "err", res.Err)
		return true
	}
	if a.runCtx.Err() == nil {
		a.log.Warn("delivery failed; message goes back to RocketMQ for retry", "id", ev.ID(), "topic", msg.Topic,
			"queueOffset", msg.QueueOffset, "reconsumeTimes", msg.ReconsumeTimes, "attempts", res.Attempts, "err", res.Err)
	}
	return false
}

// Stop stops consuming: no new deliveries start, deliveries under way get until ctx ends to finish, then the
// consumer shuts down (persisting committed offsets) and unfinished deliveries are abandoned unacknowledged, to be
// redelivered after a restart. Stop is safe to call more than once.
func (a *Adapter) Stop(ctx context.Context) error {
	a.flightMu.Lock()
	if a.stopping {
		a.flightMu.Unlock()
		return nil
	}
	a.stopping = true
	drained := make(chan struct{})
	if a.active == 0 {
		close(drained)
	} else {
		a.drained = drained
	}
	a.mu.Lock()
	c := a.consumer
	a.mu.Unlock()
	a.flightMu.Unlock()
	if c != nil {
		c.Suspend()
	}
	var err error
	select {
	case <-drained:
	case <-ctx.Done():
		err = fmt.Errorf("%w: deliveries still running when the stop deadline passed; they will be redelivered: %w", ErrStopped, ctx.Err())
	}
	if c != nil {
		if serr := c.Shutdown(); serr != nil && err == nil {
			err = fmt.Errorf("%w: consumer shutdown: %w", ErrStopped, serr)
		}
	}
	a.cancelRun()
	a.mu.Lock()
	t := a.msgTrace
	a.mu.Unlock()
	t.close()
	a.setStatus(false, "Stopped", "the adapter was stopped")
	a.log.Info("stopped", "delivered", a.delivered.Load(), "deadLettered", a.deadLettered.Load(), "retried", a.retried.Load(),
		"abandoned", a.abandoned.Load())
	return err
}
