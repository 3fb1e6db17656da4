package kafkasource

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/sasl"
	"github.com/twmb/franz-go/pkg/sasl/plain"
	"github.com/twmb/franz-go/pkg/sasl/scram"
	"go.opentelemetry.io/otel/trace"

	"github.com/tide-run/tide/apis/sources/v1beta1"
	"github.com/tide-run/tide/eventing/delivery"
	"github.com/tide-run/tide/internal/tracing"
)

// Sentinel errors of Start; the Status reason says the same in the KafkaSource's condition vocabulary.
var (
	ErrBrokersUnreachable = errors.New("no Kafka bootstrap server reachable")
	ErrTopicNotFound      = errors.New("topic not found")
	ErrBadCredentials     = errors.New("Kafka rejected the credentials")
	ErrOffsets            = errors.New("committing the initial offsets failed")
	ErrConsumer           = errors.New("Kafka consumer failed")
	ErrStopped            = errors.New("adapter stopped")
)

// Status is the adapter's state in the words of the KafkaSource conditions.
type Status struct {
	// Connected: the brokers answered (ConnectionEstablished).
	Connected bool
	// OffsetsCommitted: every partition of the topics has a committed offset for the group (InitialOffsetsCommitted).
	OffsetsCommitted bool
	// Deployed: the consumer runs (Deployed).
	Deployed bool
	// Reason is one of the v1beta1.Reason* constants when something is false ("" before Start).
	Reason  string
	Message string
}

// Counters are cumulative outcomes since New. Every record the adapter started to deliver ends in Delivered,
// DeadLettered or Abandoned; Retried counts the rounds in between that neither sink accepted.
type Counters struct {
	// Delivered: the sink answered 2xx.
	Delivered int64
	// DeadLettered: the sink failed for good and the dead-letter sink accepted the event.
	DeadLettered int64
	// Retried: rounds in which neither accepted it; the record is tried again in place after RetryPause.
	Retried int64
	// Abandoned: deliveries cut off by Stop, left uncommitted for the group's next consumer to redeliver.
	Abandoned int64
	// InFlight: deliveries under way now.
	InFlight int64
}

// Adapter consumes one KafkaSource's topics and delivers the events. Start once, Stop once.
type Adapter struct {
	cfg    Config
	mapper Mapper
	sender *delivery.Sender
	log    *slog.Logger
	tracer trace.Tracer

	// sem bounds concurrent deliveries in unordered mode across all partitions.
	sem chan struct{}

	// pollCtx ends the poll loop (Stop cancels it first); runCtx is the context of deliveries, cancelled by Stop
	// once its deadline passed or the loop ended, so deliveries still running end unfinished and uncommitted.
	pollCtx, runCtx       context.Context
	cancelPoll, cancelRun context.CancelFunc
	stopping              atomic.Bool
	loopDone              chan struct{}

	delivered, deadLettered, retried, abandoned, inFlight atomic.Int64

	mu      sync.Mutex // guards status, client and started
	status  Status
	client  *kgo.Client
	started bool
}

// New validates cfg and returns an Adapter; nothing connects until Start.
func New(cfg Config) (*Adapter, error) {
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	if cfg.MaxInFlight == 0 {
		cfg.MaxInFlight = 32
	}
	if cfg.InitialOffset == "" {
		cfg.InitialOffset = v1beta1.OffsetLatest
	}
	if cfg.RetryPause <= 0 {
		cfg.RetryPause = time.Second
	}
	log := cfg.Logger
	if log == nil {
		log = slog.Default()
	}
	log = log.With("component", "kafkasource", "source", cfg.SourceNamespace+"/"+cfg.SourceName, "group", cfg.ConsumerGroup)
	sender := cfg.Sender
	if sender == nil {
		sender = delivery.New(delivery.Options{Logger: log, TracerProvider: cfg.TracerProvider})
	}
	a := &Adapter{
		cfg:      cfg,
		mapper:   Mapper{Namespace: cfg.SourceNamespace, Name: cfg.SourceName, KeyType: cfg.KeyType, Overrides: cfg.Overrides},
		sender:   sender,
		log:      log,
		tracer:   tracing.Tracer(cfg.TracerProvider, "github.com/tide-run/tide/eventing/kafkasource"),
		sem:      make(chan struct{}, cfg.MaxInFlight),
		loopDone: make(chan struct{}),
	}
	a.pollCtx, a.cancelPoll = context.WithCancel(context.Background())
	a.runCtx, a.cancelRun = context.WithCancel(context.Background())
	return a, nil
}

// Status returns the current status.
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

func (a *Adapter) fail(st Status, sentinel error, err error, hint string) error {
	st.Message = err.Error() + hint
	a.mu.Lock()
	a.status = st
	a.mu.Unlock()
	return fmt.Errorf("%w: %w", sentinel, err)
}

// baseOptions are the connection options every client of the adapter uses.
func (a *Adapter) baseOptions() []kgo.Opt {
	opts := []kgo.Opt{kgo.SeedBrokers(a.cfg.BootstrapServers...), kgo.ClientID("tide-kafkasource"),
		kgo.DialTimeout(5 * time.Second)}
	if a.cfg.TLS != nil {
		opts = append(opts, kgo.DialTLSConfig(a.cfg.TLS.Clone()))
	}
	if m := a.saslMechanism(); m != nil {
		opts = append(opts, kgo.SASL(m))
	}
	return opts
}

func (a *Adapter) saslMechanism() sasl.Mechanism {
	s := a.cfg.SASL
	switch s.Mechanism {
	case v1beta1.SASLPlain:
		return plain.Auth{User: s.User, Pass: s.Password}.AsMechanism()
	case v1beta1.SASLScramSHA256:
		return scram.Auth{User: s.User, Pass: s.Password}.AsSha256Mechanism()
	case v1beta1.SASLScramSHA512:
		return scram.Auth{User: s.User, Pass: s.Password}.AsSha512Mechanism()
	}
	return nil
}

// Start checks the brokers and topics, commits the initial offset of every partition that has none for the group
// (as Knative's controller does, so "latest" means "from when the source was set up", not "from whenever the
// consumer joins"), then joins the group and starts delivering. It returns once the consumer runs, or an error
// wrapping one of the sentinel errors (the Status then carries the matching reason).
func (a *Adapter) Start(ctx context.Context) error {
	a.mu.Lock()
	if a.started {
		a.mu.Unlock()
		return fmt.Errorf("%w: Start called twice", ErrConsumer)
	}
	a.started = true
	a.mu.Unlock()

	if err := probe(ctx, a.cfg.BootstrapServers); err != nil {
		return a.fail(Status{Reason: v1beta1.ReasonBrokersUnreachable}, ErrBrokersUnreachable, err,
			" (is Kafka running at spec.bootstrapServers? the source retries)")
	}
	if err := a.commitInitialOffsets(ctx); err != nil {
		return err
	}
	reset := kgo.NewOffset().AtEnd()
	if a.cfg.InitialOffset == v1beta1.OffsetEarliest {
		reset = kgo.NewOffset().AtStart()
	}
	opts := append(a.baseOptions(),
		kgo.ConsumerGroup(a.cfg.ConsumerGroup),
		kgo.ConsumeTopics(a.cfg.Topics...),
		kgo.ConsumeResetOffset(reset),
		// A poll's records are all finished (or the adapter stops) before the group may rebalance, so offsets are
		// only ever marked for partitions this consumer owns.
		kgo.BlockRebalanceOnPoll(),
		// Only marked offsets are committed (mark: the contiguous prefix of finished records), every second and on
		// revoke; Stop commits them once more.
		kgo.AutoCommitMarks(),
		kgo.AutoCommitInterval(time.Second),
		kgo.FetchMaxWait(500*time.Millisecond),
	)
	cl, err := kgo.NewClient(opts...)
	if err != nil {
		return a.fail(Status{Connected: true, OffsetsCommitted: true, Reason: v1beta1.ReasonConsumerFailed}, ErrConsumer, err, "")
	}
	a.mu.Lock()
	if a.stopping.Load() {
		a.mu.Unlock()
		cl.Close()
		return ErrStopped
	}
	a.client = cl
	a.status = Status{Connected: true, OffsetsCommitted: true, Deployed: true}
	a.mu.Unlock()
	go a.loop(cl)
	a.log.Info("consuming", "topics", a.cfg.Topics, "bootstrapServers", a.cfg.BootstrapServers, "ordered", a.cfg.Ordered,
		"initialOffset", a.cfg.InitialOffset, "sink", a.cfg.Sink.Redacted())
	return nil
}

// probe checks that one bootstrap server accepts a TCP connection, so an unreachable cluster is reported as such
// at once instead of after the client's retries.
func probe(ctx context.Context, servers []string) error {
	d := net.Dialer{Timeout: 3 * time.Second}
	var lastErr error
	for _, s := range servers {
		conn, err := d.DialContext(ctx, "tcp", s)
		if err == nil {
			conn.Close()
			return nil
		}
		lastErr = err
	}
	return lastErr
}

// commitInitialOffsets lists the topics' partitions and commits InitialOffset for those without a committed offset.
func (a *Adapter) commitInitialOffsets(ctx context.Context) error {
	cl, err := kgo.NewClient(append(a.baseOptions(), kgo.RetryTimeout(10*time.Second))...)
	if err != nil {
		return a.fail(Status{Reason: v1beta1.ReasonConsumerFailed}, ErrConsumer, err, "")
	}
	defer cl.Close()
	adm := kadm.NewClient(cl)
	ctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	var listed kadm.ListedOffsets
	if a.cfg.InitialOffset == v1beta1.OffsetEarliest {
		listed, err = adm.ListStartOffsets(ctx, a.cfg.Topics...)
	} else {
		listed, err = adm.ListEndOffsets(ctx, a.cfg.Topics...)
	}
	if err == nil {
		err = listed.Error()
	}
	if err != nil {
		if errors.Is(err, kerr.UnknownTopicOrPartition) {
			return a.fail(Status{Connected: true, Reason: v1beta1.ReasonTopicNotFound}, ErrTopicNotFound, err, a.topicHint())
		}
		return a.classified(err)
	}
	for _, t := range a.cfg.Topics {
		if len(listed[t]) == 0 {
			return a.fail(Status{Connected: true, Reason: v1beta1.ReasonTopicNotFound}, ErrTopicNotFound,
				fmt.Errorf("topic %q has no partitions", t), a.topicHint())
		}
	}
	var committed kadm.OffsetResponses
	err = retrying(ctx, func() error {
		var err error
		committed, err = adm.FetchOffsets(ctx, a.cfg.ConsumerGroup)
		if err == nil {
			err = committed.Error()
		}
		return err
	})
	if err != nil {
		return a.fail(Status{Connected: true, Reason: v1beta1.ReasonOffsetsNotCommitted}, ErrOffsets, err, "")
	}
	missing := kadm.Offsets{}
	listed.Each(func(l kadm.ListedOffset) {
		if c, ok := committed.Lookup(l.Topic, l.Partition); ok && c.At >= 0 {
			return
		}
		missing.Add(kadm.Offset{Topic: l.Topic, Partition: l.Partition, At: l.Offset, LeaderEpoch: -1})
	})
	if len(missing) == 0 {
		return nil
	}
	err = retrying(ctx, func() error {
		resp, err := adm.CommitOffsets(ctx, a.cfg.ConsumerGroup, missing)
		if err == nil {
			err = resp.Error()
		}
		return err
	})
	if err != nil {
		return a.fail(Status{Connected: true, Reason: v1beta1.ReasonOffsetsNotCommitted}, ErrOffsets, err, "")
	}
	a.log.Info("initial offsets committed", "partitions", len(missing.Sorted()), "initialOffset", a.cfg.InitialOffset)
	return nil
}

// retrying calls f until it succeeds, fails with an error Kafka does not call retriable, or ctx ends. The group
// coordinator answers COORDINATOR_NOT_AVAILABLE / COORDINATOR_LOAD_IN_PROGRESS while __consumer_offsets is being
// created or loaded (a fresh or restarted cluster), which the admin calls report rather than retry.
func retrying(ctx context.Context, f func() error) error {
	for {
		err := f()
		if err == nil || !kerr.IsRetriable(err) {
			return err
		}
		select {
		case <-ctx.Done():
			return err
		case <-time.After(250 * time.Millisecond):
		}
	}
}

func (a *Adapter) classified(err error) error {
	s := strings.ToLower(err.Error())
	if errors.Is(err, kerr.SaslAuthenticationFailed) || errors.Is(err, kerr.IllegalSaslState) ||
		errors.Is(err, kerr.UnsupportedSaslMechanism) || errors.Is(err, kerr.TopicAuthorizationFailed) ||
		errors.Is(err, kerr.GroupAuthorizationFailed) || strings.Contains(s, "sasl") {
		return a.fail(Status{Reason: v1beta1.ReasonBadCredentials}, ErrBadCredentials, err,
			" (check spec.net.sasl's Secrets and the cluster's ACLs; the source retries)")
	}
	return a.fail(Status{Reason: v1beta1.ReasonBrokersUnreachable}, ErrBrokersUnreachable, err, " (the source retries)")
}

func (a *Adapter) topicHint() string {
	return " (create it, e.g. `kafka-topics.sh --create --topic " + strings.Join(a.cfg.Topics, ",") +
		"`, or produce to it where topics are auto-created; the source retries)"
}

// loop polls, delivers each poll's records to the end and lets the group rebalance only between polls.
func (a *Adapter) loop(cl *kgo.Client) {
	defer close(a.loopDone)
	var errLogged time.Time
	for {
		fetches := cl.PollRecords(a.pollCtx, 500)
		if fetches.IsClientClosed() || a.pollCtx.Err() != nil {
			return
		}
		fetches.EachError(func(topic string, p int32, err error) {
			if errors.Is(err, context.Canceled) || time.Since(errLogged) < 10*time.Second {
				return
			}
			errLogged = time.Now()
			a.log.Warn("fetch failed; the client retries", "topic", topic, "partition", p, "err", err)
		})
		var wg sync.WaitGroup
		fetches.EachPartition(func(p kgo.FetchTopicPartition) {
			if len(p.Records) == 0 {
				return
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				a.processPartition(cl, p.Records)
			}()
		})
		wg.Wait()
		cl.AllowRebalance()
	}
}

// processPartition delivers one partition's records of a poll (in offset order) and marks the contiguous prefix
// of finished records for commit. It returns early only when the adapter stops.
func (a *Adapter) processPartition(cl *kgo.Client, recs []*kgo.Record) {
	if a.cfg.Ordered {
		for _, r := range recs {
			if a.stopping.Load() || !a.deliver(r) {
				return
			}
			mark(cl, r)
		}
		return
	}
	var mu sync.Mutex
	done := make([]bool, len(recs))
	next := 0
	var wg sync.WaitGroup
	for i, r := range recs {
		if a.stopping.Load() {
			break
		}
		acquired := false
		select {
		case a.sem <- struct{}{}:
			acquired = true
		case <-a.pollCtx.Done():
		}
		if !acquired || a.stopping.Load() {
			if acquired {
				<-a.sem
			}
			break
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			ok := a.deliver(r)
			<-a.sem
			if !ok {
				return
			}
			mu.Lock()
			defer mu.Unlock()
			done[i] = true
			advanced := false
			for next < len(recs) && done[next] {
				next++
				advanced = true
			}
			if advanced {
				mark(cl, recs[next-1])
			}
		}()
	}
	wg.Wait()
}

func mark(cl *kgo.Client, r *kgo.Record) {
	cl.MarkCommitOffsets(map[string]map[int32]kgo.EpochOffset{
		r.Topic: {r.Partition: {Epoch: r.LeaderEpoch, Offset: r.Offset + 1}},
	})
}

// deliver delivers r's event until the sink or the dead-letter sink accepted it (true) or the adapter stops (false).
func (a *Adapter) deliver(r *kgo.Record) bool {
	ev := a.mapper.Map(r)
	for round := 0; ; round++ {
		if a.runCtx.Err() != nil || (round > 0 && a.stopping.Load()) {
			a.abandoned.Add(1)
			return false
		}
		a.inFlight.Add(1)
		ctx, span := a.startProcess(r)
		tracing.SetEvent(ctx, &ev)
		res := a.sender.Send(ctx, a.cfg.Sink, ev, a.cfg.Delivery)
		endProcess(span, res)
		a.inFlight.Add(-1)
		switch res.Outcome {
		case delivery.Delivered:
			a.delivered.Add(1)
			return true
		case delivery.DeadLettered:
			a.deadLettered.Add(1)
			a.log.Warn("event dead-lettered", "id", ev.ID(), "topic", r.Topic, "partition", r.Partition, "offset", r.Offset, "err", res.Err)
			return true
		}
		if a.runCtx.Err() != nil {
			a.abandoned.Add(1)
			return false
		}
		a.retried.Add(1)
		if round%30 == 0 {
			a.log.Warn("delivery failed; the record stays uncommitted and is tried again", "id", ev.ID(), "topic", r.Topic,
				"partition", r.Partition, "offset", r.Offset, "round", round+1, "attempts", res.Attempts, "err", res.Err)
		}
		select {
		case <-time.After(a.cfg.RetryPause):
		case <-a.pollCtx.Done():
		}
	}
}

// Stop stops consuming: no new deliveries start, deliveries under way get until ctx ends to finish, then the
// offsets of finished records are committed and the consumer leaves the group; unfinished records stay
// uncommitted, to be redelivered after a restart. Stop is safe to call more than once.
func (a *Adapter) Stop(ctx context.Context) error {
	if !a.stopping.CompareAndSwap(false, true) {
		return nil
	}
	a.cancelPoll()
	a.mu.Lock()
	cl := a.client
	a.mu.Unlock()
	var err error
	if cl != nil {
		select {
		case <-a.loopDone:
		case <-ctx.Done():
			err = fmt.Errorf("%w: deliveries still running when the stop deadline passed; they will be redelivered: %w", ErrStopped, ctx.Err())
			a.cancelRun()
			<-a.loopDone
		}
	}
	a.cancelRun()
	if cl != nil {
		cctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		if cerr := cl.CommitMarkedOffsets(cctx); cerr != nil && err == nil {
			err = fmt.Errorf("%w: committing the last offsets (they will be redelivered): %w", ErrStopped, cerr)
		}
		cancel()
		cl.AllowRebalance()
		cl.Close()
	}
	a.mu.Lock()
	a.status = Status{Reason: "Stopped", Message: "the adapter was stopped"}
	a.mu.Unlock()
	a.log.Info("stopped", "delivered", a.delivered.Load(), "deadLettered", a.deadLettered.Load(), "retried", a.retried.Load(),
		"abandoned", a.abandoned.Load())
	return err
}
