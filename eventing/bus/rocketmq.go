package bus

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/apache/rocketmq-client-go/v2/admin"
	"github.com/apache/rocketmq-client-go/v2/consumer"
	rmqerrors "github.com/apache/rocketmq-client-go/v2/errors"
	"github.com/apache/rocketmq-client-go/v2/primitive"
	"github.com/apache/rocketmq-client-go/v2/producer"
)

// RocketMQOptions configure NewRocketMQ.
type RocketMQOptions struct {
	// NameServers are "ip:port" addresses (the Go client needs literal IPs;
	// "localhost" is rewritten to 127.0.0.1). Required.
	NameServers []string
	// ProducerGroup names the producer. Default "tide-eventing".
	ProducerGroup string
	// SendTimeout bounds one send attempt. Default 3s.
	SendTimeout time.Duration
	// SendRetries is how many more times a failed send is tried. Default 2.
	SendRetries int
	// Producers is how many producer clients (each its own TCP connection)
	// Send spreads over. A broker answers the requests of one connection in
	// order, so several connections let concurrent ingress requests be stored
	// in parallel; one connection pipelines well too (the client keeps many
	// requests in flight on it). Default 1.
	Producers int
	// DisableBatching sends every message with its own round trip instead of
	// grouping concurrent Sends into RocketMQ batch sends (see batch.go).
	DisableBatching bool
	// AccessKey and SecretKey authenticate to a cluster with ACL enabled
	// (RocketMQ's access control); empty means none, as for the embedded broker.
	AccessKey, SecretKey string
	// DeleteGroup sends RocketMQ's DELETE_SUBSCRIPTIONGROUP (207) to every
	// master broker the name servers list and deletes the group's %RETRY%
	// topic, for RocketMQ.DeleteGroup. The
	// official Go client (v2.1.2) has no call for it and eventing does not
	// speak the wire protocol itself, so the process wiring passes one
	// (tide's mq/admin.DeleteGroup). Nil: DeleteGroup returns ErrUnsupported.
	DeleteGroup func(ctx context.Context, nameServers []string, group string) error
	// Logger; default slog.Default(). A component attribute is added.
	Logger *slog.Logger
	// MessageTrace makes the bus's consumers write RocketMQ message-trace records (msgtrace.go).
	MessageTrace bool
	// Native makes Open start the native bus (native.go: tide's own remoting client) instead of the official
	// client's.
	Native bool
}

// Open starts the bus opts ask for: Native, or RocketMQ on the official client.
func Open(opts RocketMQOptions) (Bus, error) {
	if opts.Native {
		return NewNative(opts)
	}
	return NewRocketMQ(opts)
}

// RocketMQ is the Bus on the official RocketMQ Go client.
type RocketMQ struct {
	opts     RocketMQOptions
	resolver primitive.NsResolver
	// nameServers are the normalized name server addresses (the resolver's).
	nameServers []string
	// instance prefixes client instance names. The Go client caches clients
	// process-wide by IP@instance; a unique prefix per Bus keeps two buses (for
	// example two brokers in one test process) from sharing a client, and each
	// subscription gets its own instance so one consumer's shutdown never tears
	// down another's connections.
	instance  string
	producers []rocketmqProducer
	next      atomic.Uint32 // round-robin index into producers
	log       *slog.Logger

	mu      sync.Mutex // guards ensured, closed, subs
	ensured map[string]bool
	closed  bool
	subs    map[*rocketmqSub]struct{}
	// late is DeleteGroup's second deletion of a group whose consumer was just shut down (lategroups.go).
	late *lateDeletes
	// queue feeds the batch workers (Batching); stop ends them; workers
	// counts them for Close.
	queue   chan *pending
	stop    chan struct{}
	workers sync.WaitGroup
	// roundTrips counts SendSync calls made (a batch is one); tests use it
	// to see that batching happened.
	roundTrips atomic.Int64
	// degraded is set when a send fails because the broker could not be
	// reached; the first successful send after that restarts every
	// subscription's consumer (see rocketmqSub.restart).
	degraded atomic.Bool
	// trace writes message-trace records when MessageTrace is set (msgtrace.go); nil otherwise.
	trace *traceWriter
	// selector picks send queues and groups batches by queue (batch.go).
	selector *keySelector
}

type rocketmqProducer interface {
	SendSync(ctx context.Context, msgs ...*primitive.Message) (*primitive.SendResult, error)
	Shutdown() error
}

// withDefaults checks opts, fills in the defaults both buses share and returns the normalized name server
// addresses (localhost as 127.0.0.1, the name the clients' resolvers compare).
func (opts RocketMQOptions) withDefaults() (RocketMQOptions, []string, error) {
	if len(opts.NameServers) == 0 {
		return opts, nil, fmt.Errorf("%w: NameServers: at least one address required", ErrInvalidOptions)
	}
	addrs := make([]string, 0, len(opts.NameServers))
	for _, a := range opts.NameServers {
		host, port, err := net.SplitHostPort(a)
		if err != nil {
			return opts, nil, fmt.Errorf("%w: NameServers: %q: %w", ErrInvalidOptions, a, err)
		}
		if host == "localhost" {
			host = "127.0.0.1"
		}
		addrs = append(addrs, net.JoinHostPort(host, port))
	}
	if opts.ProducerGroup == "" {
		opts.ProducerGroup = "tide-eventing"
	}
	if opts.SendTimeout <= 0 {
		opts.SendTimeout = 3 * time.Second
	}
	if opts.SendRetries <= 0 {
		opts.SendRetries = 2
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	return opts, addrs, nil
}

// NewRocketMQ starts a producer against the name servers.
func NewRocketMQ(opts RocketMQOptions) (*RocketMQ, error) {
	opts, addrs, err := opts.withDefaults()
	if err != nil {
		return nil, err
	}
	if opts.Producers <= 0 {
		opts.Producers = 1
	}
	b := &RocketMQ{
		opts:        opts,
		resolver:    primitive.NewPassthroughResolver(addrs),
		nameServers: addrs,
		instance:    "tide-" + strconv.Itoa(os.Getpid()) + "-" + strconv.FormatInt(time.Now().UnixNano(), 36),
		log:         opts.Logger.With("component", "eventing-bus"),
		ensured:     map[string]bool{},
		subs:        map[*rocketmqSub]struct{}{},
		selector:    &keySelector{},
	}
	for i := range opts.Producers {
		p, err := producer.NewDefaultProducer(
			producer.WithNsResolver(b.resolver),
			producer.WithGroupName(opts.ProducerGroup),
			producer.WithInstanceName(b.instance+"-producer-"+strconv.Itoa(i)),
			producer.WithSendMsgTimeout(opts.SendTimeout),
			producer.WithRetry(opts.SendRetries),
			producer.WithQueueSelector(b.selector),
			producer.WithCredentials(primitive.Credentials{AccessKey: opts.AccessKey, SecretKey: opts.SecretKey}),
		)
		if err == nil {
			err = p.Start()
		}
		if err != nil {
			for _, started := range b.producers {
				_ = started.Shutdown()
			}
			return nil, fmt.Errorf("rocketmq producer %d: %w", i, err)
		}
		b.producers = append(b.producers, p)
	}
	b.stop = make(chan struct{})
	b.late = newLateDeletes(b.log, func(ctx context.Context, group string) error {
		return b.opts.DeleteGroup(ctx, b.nameServers, group)
	}, b.subscribes)
	if !opts.DisableBatching {
		b.queue = make(chan *pending, 4096)
		for _, p := range b.producers {
			// Two workers per producer: one collects while the other's
			// batch is on the wire.
			b.workers.Add(2)
			go b.batchWorker(p)
			go b.batchWorker(p)
		}
	}
	if opts.MessageTrace {
		b.startTraceWriter()
	}
	return b, nil
}

// Send implements Bus.
func (b *RocketMQ) Send(ctx context.Context, m *Message) error {
	b.mu.Lock()
	closed := b.closed
	b.mu.Unlock()
	if closed {
		return ErrClosed
	}
	msg := primitive.NewMessage(m.Topic, m.Body)
	if len(m.Properties) > 0 {
		msg.WithProperties(m.Properties)
	}
	if m.ShardingKey != "" {
		msg.WithShardingKey(m.ShardingKey)
	}
	if b.queue == nil || len(m.Body) > batchBodyLimit {
		p := b.producers[int(b.next.Add(1))%len(b.producers)]
		return b.sendSync(ctx, p, msg)
	}
	q := &pending{ctx: ctx, msg: msg, topic: m.Topic, key: m.ShardingKey, size: len(m.Body) + 256, done: make(chan error, 1)}
	select {
	case b.queue <- q:
	case <-ctx.Done():
		return fmt.Errorf("%w: topic %s: %w", ErrNotStored, m.Topic, ctx.Err())
	case <-b.stop:
		return ErrClosed
	}
	select {
	case err := <-q.done:
		return err
	case <-b.stop:
		return ErrClosed
	}
}

// sendSync stores msgs (one message, or a batch for one topic and queue) and
// maps the outcome; it also notices broker outages and recoveries.
func (b *RocketMQ) sendSync(ctx context.Context, p rocketmqProducer, msgs ...*primitive.Message) error {
	topic := msgs[0].Topic
	b.roundTrips.Add(1)
	res, err := p.SendSync(ctx, msgs...)
	if err != nil {
		if connectionLost(err) {
			b.degraded.Store(true)
		}
		return fmt.Errorf("%w: topic %s: %w", ErrNotStored, topic, err)
	}
	if b.degraded.CompareAndSwap(true, false) {
		// The broker is reachable again after an outage: consumers may be
		// stuck on pulls the old connection will never answer.
		b.log.Info("broker reachable again; restarting consumers")
		go b.resubscribeAll()
	}
	if res.Status != primitive.SendOK {
		return fmt.Errorf("%w: topic %s: broker answered status %d", ErrNotStored, topic, res.Status)
	}
	return nil
}

// EnsureTopic implements Bus. The official client has no "create topic if
// missing" that works without knowing broker addresses, but every broker
// auto-creates a topic on its first send (through TBW102, when the broker
// has autoCreateTopicEnable, Apache's default), so the first EnsureTopic of
// a topic in this process sends a marker message that consumers skip. Later
// calls are free.
func (b *RocketMQ) EnsureTopic(ctx context.Context, topic string) error {
	b.mu.Lock()
	done := b.ensured[topic]
	b.mu.Unlock()
	if done {
		return nil
	}
	// The marker has a body: Apache's broker (5.5.0) fails a send without one with a NullPointerException, and
	// its clients refuse empty bodies outright.
	err := b.Send(ctx, &Message{Topic: topic, Properties: map[string]string{PropMarker: "topic-init"}, Body: []byte("tide topic-init")})
	if err != nil {
		return fmt.Errorf("ensure topic %s: %w", topic, err)
	}
	b.mu.Lock()
	b.ensured[topic] = true
	b.mu.Unlock()
	return nil
}

// DeleteTopic implements Bus with the official client's admin API (DELETE_TOPIC_IN_BROKER on the topic's broker,
// then DELETE_TOPIC_IN_NAMESRV on every name server), as mqadmin deleteTopic does. A topic without a route is gone
// already.
func (b *RocketMQ) DeleteTopic(ctx context.Context, topic string) error {
	adm, err := admin.NewAdmin(admin.WithResolver(b.resolver),
		admin.WithCredentials(primitive.Credentials{AccessKey: b.opts.AccessKey, SecretKey: b.opts.SecretKey}))
	if err != nil {
		return fmt.Errorf("delete topic %s: %w", topic, err)
	}
	defer func() { _ = adm.Close() }()
	b.mu.Lock()
	delete(b.ensured, topic) // sending to it again must create it again
	b.mu.Unlock()
	if _, err := adm.FetchPublishMessageQueues(ctx, topic); err != nil {
		if errors.Is(err, rmqerrors.ErrTopicNotExist) {
			return nil
		}
		return fmt.Errorf("delete topic %s: finding its broker: %w", topic, err)
	}
	// The name servers are given so the client does not look the route up again between the broker and the name
	// server deletions: a name server that derives routes from live brokers (tide's) no longer has one, and the
	// client would log an error for a deletion that worked.
	if err := adm.DeleteTopic(ctx, admin.WithTopicDelete(topic), admin.WithNameSrvAddr(b.nameServers)); err != nil {
		return fmt.Errorf("delete topic %s: %w", topic, err)
	}
	return nil
}

// DeleteGroup implements Bus with RocketMQOptions.DeleteGroup, which removes
// the group's config and offsets on every master broker and its %RETRY%
// topic, as mqadmin deleteSubGroup does. (Not with DeleteTopic for the retry
// topic: the official client's DeleteTopic asks for the route again after
// deleting, and tide's name server creates a missing %RETRY% topic on such a
// lookup.)
//
// A group whose consumer this bus shut down less than lateHeartbeat ago is deleted a second time once that window
// has passed (see lateHeartbeat), unless the bus subscribed it again meanwhile.
func (b *RocketMQ) DeleteGroup(ctx context.Context, group string) error {
	if b.opts.DeleteGroup == nil {
		return fmt.Errorf("delete group %s: %w", group, ErrUnsupported)
	}
	if group == "" {
		return fmt.Errorf("%w: group: required", ErrInvalidOptions)
	}
	if err := b.opts.DeleteGroup(ctx, b.nameServers, group); err != nil {
		return fmt.Errorf("delete group %s: %w", group, err)
	}
	b.late.deleted(group)
	return nil
}

// subscribes reports whether the bus has a subscription of group.
func (b *RocketMQ) subscribes(group string) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	for s := range b.subs {
		if s.group == group {
			return true
		}
	}
	return false
}

// Subscribe implements Bus.
func (b *RocketMQ) Subscribe(ctx context.Context, o SubscribeOptions, h Handler) (Subscription, error) {
	if o.Topic == "" {
		return nil, fmt.Errorf("%w: Topic: required", ErrInvalidOptions)
	}
	if o.Group == "" {
		return nil, fmt.Errorf("%w: Group: required", ErrInvalidOptions)
	}
	if strings.ContainsAny(o.Group, " /%") {
		return nil, fmt.Errorf("%w: Group: %q must not contain spaces, '/' or '%%'", ErrInvalidOptions, o.Group)
	}
	if o.Concurrency <= 0 {
		o.Concurrency = 20
	}
	if err := b.EnsureTopic(ctx, o.Topic); err != nil {
		return nil, err
	}
	from := consumer.ConsumeFromLastOffset
	switch o.From {
	case FromFirst:
		from = consumer.ConsumeFromFirstOffset
	case FromTime:
		from = consumer.ConsumeFromTimestamp
	}
	copts := []consumer.Option{
		consumer.WithNsResolver(b.resolver),
		consumer.WithGroupName(o.Group),
		consumer.WithConsumerModel(consumer.Clustering),
		consumer.WithConsumeFromWhere(from),
		consumer.WithConsumerOrder(o.Ordered),
		consumer.WithConsumeMessageBatchMaxSize(1),
		consumer.WithConsumeGoroutineNums(o.Concurrency),
		consumer.WithCredentials(primitive.Credentials{AccessKey: b.opts.AccessKey, SecretKey: b.opts.SecretKey}),
		// Bound what a consumer buffers ahead of a slow subscriber. The client's
		// defaults (1,024 messages and 512 MiB per queue) would let ten Triggers
		// behind slow subscribers hold gigabytes; 256 messages / 16 MiB per
		// queue is still far more than the deliveries in flight.
		consumer.WithPullThresholdForQueue(256),
		consumer.WithPullThresholdSizeForQueue(16),
	}
	if o.From == FromTime {
		// The client parses this layout as UTC.
		copts = append(copts, consumer.WithConsumeTimestamp(o.Since.UTC().Format("20060102150405")))
	}
	if o.MaxReconsumeTimes <= 0 {
		// Explicit, because the client treats "unset" as unbounded for ordered
		// consumption, which would block a queue forever on a poisoned message.
		o.MaxReconsumeTimes = 16
	}
	copts = append(copts, consumer.WithMaxReconsumeTimes(o.MaxReconsumeTimes))
	if b.trace != nil {
		copts = append(copts, consumer.WithInterceptor(b.trace.interceptor(o.MaxReconsumeTimes)))
	}
	if o.OrderedRetryPause <= 0 {
		o.OrderedRetryPause = time.Second
	}
	handler := func(cctx context.Context, msgs ...*primitive.MessageExt) (consumer.ConsumeResult, error) {
		// Batch size is 1, but honour any batch: all or nothing.
		for _, me := range msgs {
			props := me.GetProperties()
			if _, marker := props[PropMarker]; marker {
				continue
			}
			m := &Message{
				Topic:          me.Topic,
				Body:           me.Body,
				Properties:     props,
				MsgID:          me.MsgId,
				QueueOffset:    me.QueueOffset,
				ReconsumeTimes: me.ReconsumeTimes,
				BornTime:       time.UnixMilli(me.BornTimestamp),
				StoreTime:      time.UnixMilli(me.StoreTimestamp),
			}
			if me.Queue != nil {
				m.QueueID = me.Queue.QueueId
			}
			switch h(cctx, m) {
			case Ack:
				continue
			case DeadLetter:
				if cc, ok := primitive.GetConcurrentlyCtx(cctx); ok && !o.Ordered {
					// A negative delay level sends the message straight to
					// %DLQ%<group> (RocketMQ's send-back semantics).
					cc.DelayLevelWhenNextConsume = -1
				}
			}
			if o.Ordered {
				if oc, ok := primitive.GetOrderlyCtx(cctx); ok {
					oc.SuspendCurrentQueueTimeMillis = int(o.OrderedRetryPause / time.Millisecond)
				}
				return consumer.SuspendCurrentQueueAMoment, nil
			}
			return consumer.ConsumeRetryLater, nil
		}
		return consumer.ConsumeSuccess, nil
	}
	s := &rocketmqSub{b: b, group: o.Group, log: b.log.With("group", o.Group, "topic", o.Topic)}
	s.start = func(generation int) (rocketmqConsumer, error) {
		opts := append(copts[:len(copts):len(copts)],
			consumer.WithInstance(b.instance+"-"+o.Group+"-"+strconv.Itoa(generation)))
		pc, err := consumer.NewPushConsumer(opts...)
		if err != nil {
			return nil, fmt.Errorf("rocketmq consumer %s: %w", o.Group, err)
		}
		if err := pc.Subscribe(o.Topic, consumer.MessageSelector{}, handler); err != nil {
			return nil, fmt.Errorf("rocketmq subscribe %s: %w", o.Topic, err)
		}
		if err := pc.Start(); err != nil {
			return nil, fmt.Errorf("rocketmq consumer %s start: %w", o.Group, err)
		}
		return pc, nil
	}
	pc, err := s.start(0)
	if err != nil && strings.Contains(err.Error(), "route info not found") {
		// The topic is gone although this process created it earlier (the
		// broker lost its data, or an operator deleted it): create it again.
		b.mu.Lock()
		delete(b.ensured, o.Topic)
		b.mu.Unlock()
		if err := b.EnsureTopic(ctx, o.Topic); err != nil {
			return nil, err
		}
		s.generation = 1
		pc, err = s.start(1)
	}
	if err != nil {
		return nil, err
	}
	s.pc = pc
	b.mu.Lock()
	b.subs[s] = struct{}{}
	b.mu.Unlock()
	s.log.Debug("subscribed", "ordered", o.Ordered, "concurrency", o.Concurrency)
	return s, nil
}

// rocketmqSub is one consumer group member; its push consumer can be
// replaced (restart) when the broker comes back after an outage.
type rocketmqSub struct {
	b     *RocketMQ
	group string
	log   *slog.Logger
	start func(generation int) (rocketmqConsumer, error)

	mu         sync.Mutex // guards pc, generation, closed
	pc         rocketmqConsumer
	generation int
	closed     bool
}

type rocketmqConsumer interface{ Shutdown() error }

func (s *rocketmqSub) Close() error {
	s.b.mu.Lock()
	delete(s.b.subs, s)
	s.b.mu.Unlock()
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil
	}
	s.closed = true
	err := s.pc.Shutdown()
	s.b.late.shutDown(s.group)
	return err
}

// restart replaces the push consumer with a fresh one (new client instance,
// new connections). rocketmq-client-go v2.1.2 does not fail a pull that is
// pending on a connection the broker closed; the consumer then sits idle until
// its hard-coded 30 s pull timeout. A fresh consumer pulls at once and resumes
// from the group's committed offsets; deliveries in flight in the old one are
// not acknowledged and come again (at-least-once).
func (s *rocketmqSub) restart() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return
	}
	_ = s.pc.Shutdown()
	s.generation++
	pc, err := s.start(s.generation)
	if err != nil {
		// Keep the old (shut down) consumer recorded so Close stays safe; the
		// next recovery tries again.
		s.log.Warn("restarting consumer after broker recovery failed", "err", err)
		s.b.degraded.Store(true)
		return
	}
	s.pc = pc
	s.log.Info("consumer restarted after broker recovery", "generation", s.generation)
}

// connectionLost reports whether err says the broker could not be reached
// (as opposed to, say, a slow answer), the sign of a broker outage.
func connectionLost(err error) bool {
	var op *net.OpError
	return errors.As(err, &op) || errors.Is(err, io.EOF) || errors.Is(err, syscall.ECONNRESET) ||
		errors.Is(err, syscall.ECONNREFUSED) || errors.Is(err, syscall.EPIPE)
}

// resubscribeAll restarts every live subscription (see restart).
func (b *RocketMQ) resubscribeAll() {
	b.mu.Lock()
	subs := make([]*rocketmqSub, 0, len(b.subs))
	for s := range b.subs {
		subs = append(subs, s)
	}
	b.mu.Unlock()
	for _, s := range subs {
		s.restart()
	}
}

// Close implements Bus.
func (b *RocketMQ) Close() error {
	b.mu.Lock()
	if b.closed {
		b.mu.Unlock()
		return nil
	}
	b.closed = true
	b.mu.Unlock()
	close(b.stop)
	b.workers.Wait()
	b.late.close()
	var errs []error
	for _, p := range b.producers {
		errs = append(errs, p.Shutdown())
	}
	return errors.Join(errs...)
}
