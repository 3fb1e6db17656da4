package broker

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"strings"
	"sync"
	"time"

	"k8s.io/utils/clock"

	"github.com/tide-run/tide/mq/internal/commitlog"
	"github.com/tide-run/tide/mq/internal/store"
	"github.com/tide-run/tide/mq/mqmeta"
	"github.com/tide-run/tide/mq/remoting"
)

// DefaultDelayLevels is Java's messageDelayLevel: "1s 5s 10s 30s 1m 2m 3m 4m 5m 6m 7m 8m 9m 10m 20m 30m 1h 2h".
var DefaultDelayLevels = []time.Duration{time.Second, 5 * time.Second, 10 * time.Second, 30 * time.Second,
	time.Minute, 2 * time.Minute, 3 * time.Minute, 4 * time.Minute, 5 * time.Minute, 6 * time.Minute, 7 * time.Minute,
	8 * time.Minute, 9 * time.Minute, 10 * time.Minute, 20 * time.Minute, 30 * time.Minute, time.Hour, 2 * time.Hour}

// Options configure a Broker.
type Options struct {
	// Store holds the messages. Required; the broker does not close it.
	Store *store.Store
	// DataDir holds config/ (topics, groups, consumer offsets). Required.
	DataDir string
	// FS is the file layer for config files. Default commitlog.OS{}.
	FS commitlog.FS
	// Addr is the advertised "ip:port" (stamped as store host, returned in routes). Required.
	Addr string
	// BrokerName default "broker-a"; ClusterName default "DefaultCluster".
	BrokerName, ClusterName string
	// DisableAutoCreateTopics stops sends to unknown topics from creating them (through TBW102).
	DisableAutoCreateTopics bool
	// DefaultTopicQueueNums is TBW102's queue count, the cap for auto-created topics. Default 8.
	DefaultTopicQueueNums int
	// DelayLevels, level 1 first. Default DefaultDelayLevels.
	DelayLevels []time.Duration
	// LockLease is how long an ordered-consumption queue lock lasts without renewal. Default 60s.
	LockLease time.Duration
	// ClientExpiry drops clients silent for this long. Default 120s.
	ClientExpiry time.Duration
	// MaxMessageSize caps a message body (batch: the whole body). Default 4 MiB.
	MaxMessageSize int
	// OffsetPersistInterval is how often changed consumer offsets are written. Default 5s.
	OffsetPersistInterval time.Duration
	// DisableZeroOffsetForNewGroups: by default QUERY_CONSUMER_OFFSET of a group with no stored offset answers 0
	// while the queue still holds its first message, as Java does (so CONSUME_FROM_LAST_OFFSET reads a young topic
	// from the start). Set this to answer "not found" instead, making "last" mean the queue's end.
	DisableZeroOffsetForNewGroups bool
	// TransactionImmunity is how long a half message waits for END_TRANSACTION before the producer group is asked
	// (CHECK_TRANSACTION_STATE). Default 6s.
	TransactionImmunity time.Duration
	// TransactionCheckInterval separates two checks of the same half message. Default 30s.
	TransactionCheckInterval time.Duration
	// TransactionCheckMax checks are made before a half message is discarded. Default 15.
	TransactionCheckMax int
	// TransactionCheckTick is how often half messages are examined. Default 1s.
	TransactionCheckTick time.Duration
	// Clock drives leases, long-poll deadlines and delay levels. Default clock.RealClock{}.
	Clock clock.WithTicker
	// Logger. Default slog.Default().
	Logger *slog.Logger
	// Counters, if set, count messages in, out and dead-lettered for metrics (counters.go); nil counts nothing.
	Counters *Counters
}

// Broker handles broker requests.
type Broker struct {
	opts      Options
	log       *slog.Logger
	st        *store.Store
	cfg       *config
	clock     clock.WithTicker
	storeHost netip.AddrPort

	clients *clientTable
	polls   *longPolls
	locks   *lockTable
	sched   *scheduler
	tx      *transactions
	timers  *timers
	hooks   proxyHooks // the gRPC endpoint's callbacks (proxyapi.go)
	started time.Time  // when New ran (GET_BROKER_RUNTIME_INFO's bootTimestamp)

	pullMu    sync.Mutex // guards lastPulls
	lastPulls map[pullKey]pullSeen

	stopOnce sync.Once
	stop     chan struct{}
	wg       sync.WaitGroup
}

// Errors.
var ErrConfig = errors.New("broker: bad options")

// New builds a broker; Start begins its background work.
func New(opts Options) (*Broker, error) {
	if opts.Store == nil || opts.DataDir == "" || opts.Addr == "" {
		return nil, fmt.Errorf("%w: Store, DataDir and Addr are required", ErrConfig)
	}
	host, err := netip.ParseAddrPort(opts.Addr)
	if err != nil {
		return nil, fmt.Errorf("%w: Addr %q: %w", ErrConfig, opts.Addr, err)
	}
	if opts.FS == nil {
		opts.FS = commitlog.OS{}
	}
	if opts.BrokerName == "" {
		opts.BrokerName = "broker-a"
	}
	if opts.ClusterName == "" {
		opts.ClusterName = "DefaultCluster"
	}
	if opts.DefaultTopicQueueNums == 0 {
		opts.DefaultTopicQueueNums = 8
	}
	if len(opts.DelayLevels) == 0 {
		opts.DelayLevels = DefaultDelayLevels
	}
	if opts.LockLease == 0 {
		opts.LockLease = 60 * time.Second
	}
	if opts.ClientExpiry == 0 {
		opts.ClientExpiry = 120 * time.Second
	}
	if opts.MaxMessageSize == 0 {
		opts.MaxMessageSize = 4 << 20
	}
	if opts.OffsetPersistInterval == 0 {
		opts.OffsetPersistInterval = 5 * time.Second
	}
	if opts.TransactionImmunity == 0 {
		opts.TransactionImmunity = 6 * time.Second
	}
	if opts.TransactionCheckInterval == 0 {
		opts.TransactionCheckInterval = 30 * time.Second
	}
	if opts.TransactionCheckMax == 0 {
		opts.TransactionCheckMax = 15
	}
	if opts.TransactionCheckTick == 0 {
		opts.TransactionCheckTick = time.Second
	}
	if opts.Clock == nil {
		opts.Clock = clock.RealClock{}
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	cfg, err := loadConfig(opts.FS, opts.DataDir)
	if err != nil {
		return nil, err
	}
	b := &Broker{opts: opts, log: opts.Logger.With("component", "mq.broker"), st: opts.Store, cfg: cfg,
		clock: opts.Clock, storeHost: host, stop: make(chan struct{}), started: opts.Clock.Now()}
	b.lastPulls = map[pullKey]pullSeen{}
	b.clients = newClientTable(b)
	b.polls = newLongPolls(b)
	b.locks = newLockTable()
	b.sched = newScheduler(b)
	if _, _, err := cfg.ensureTopic(mqmeta.TopicConfig{TopicName: mqmeta.DefaultTopic, ReadQueueNums: opts.DefaultTopicQueueNums,
		WriteQueueNums: opts.DefaultTopicQueueNums, Perm: mqmeta.PermRW | mqmeta.PermInherit}); err != nil {
		return nil, err
	}
	if _, _, err := cfg.ensureTopic(mqmeta.TopicConfig{TopicName: mqmeta.ScheduleTopic, ReadQueueNums: len(opts.DelayLevels),
		WriteQueueNums: len(opts.DelayLevels), Perm: mqmeta.PermRW}); err != nil {
		return nil, err
	}
	if _, _, err := cfg.ensureTopic(mqmeta.TopicConfig{TopicName: opts.ClusterName + mqmeta.ReplyTopicSuffix, ReadQueueNums: 1,
		WriteQueueNums: 1, Perm: mqmeta.PermRW}); err != nil {
		return nil, err
	}
	for _, sys := range []string{mqmeta.HalfTopic, mqmeta.OpHalfTopic, mqmeta.TimerTopic} {
		if _, _, err := cfg.ensureTopic(mqmeta.TopicConfig{TopicName: sys, ReadQueueNums: 1, WriteQueueNums: 1, Perm: mqmeta.PermRW}); err != nil {
			return nil, err
		}
	}
	if err := b.ensureTraceTopic(); err != nil {
		return nil, err
	}
	b.tx = newTransactions(b)
	if b.timers, err = newTimers(b); err != nil {
		return nil, err
	}
	b.st.OnArrival = b.onArrival
	b.st.RetainFrom = b.timers.retainFrom
	return b, nil
}

// Start runs the background loops (long-poll deadlines, client expiry, offset persistence, delay delivery).
func (b *Broker) Start() {
	b.wg.Add(5)
	go b.polls.run()
	go b.sched.run()
	go b.timers.run()
	go b.tx.run()
	go b.housekeeping()
}

// Close stops the background loops and persists offsets.
func (b *Broker) Close(ctx context.Context) error {
	b.stopOnce.Do(func() { close(b.stop) })
	done := make(chan struct{})
	go func() { b.wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-ctx.Done():
		return ctx.Err()
	}
	terr := b.timers.close()
	if err := b.cfg.persistOffsets(true); err != nil {
		return err
	}
	return terr
}

func (b *Broker) housekeeping() {
	defer b.wg.Done()
	t := b.clock.NewTicker(time.Second)
	defer t.Stop()
	lastPersist := b.clock.Now()
	for {
		select {
		case <-b.stop:
			return
		case <-t.C():
			now := b.clock.Now()
			b.clients.expire(now)
			if now.Sub(lastPersist) >= b.opts.OffsetPersistInterval {
				lastPersist = now
				if err := b.cfg.persistOffsets(false); err != nil {
					b.log.Error("persisting consumer offsets failed", "err", err)
				}
			}
		}
	}
}

func (b *Broker) onArrival(topic string, qid int32) {
	b.polls.arrived(topic, qid)
	b.hooks.arrived(topic, qid)
	switch topic {
	case mqmeta.ScheduleTopic:
		b.sched.wake()
	case mqmeta.TimerTopic:
		b.timers.wake()
	}
}

// Handle is the remoting handler for the broker port.
func (b *Broker) Handle(c *remoting.Conn, req *remoting.Command) *remoting.Command {
	if req.Code != remoting.SendMessage && req.Code != remoting.SendMessageV2 {
		b.flushSends(c) // sends deferred before this request are stored (and visible) before it is served
	}
	switch req.Code {
	case remoting.SendMessage, remoting.SendMessageV2, remoting.SendReplyMessage, remoting.SendReplyMessageV2:
		return b.handleSend(c, req, false)
	case remoting.SendBatchMessage:
		return b.handleSend(c, req, true)
	case remoting.PullMessage:
		return b.handlePull(c, req)
	case remoting.HeartBeat:
		return b.handleHeartbeat(c, req)
	case remoting.UnregisterClient:
		return b.handleUnregister(c, req)
	case remoting.GetConsumerListByGroup:
		return b.handleConsumerList(c, req)
	case remoting.QueryConsumerOffset:
		return b.handleQueryOffset(req)
	case remoting.UpdateConsumerOffset:
		return b.handleUpdateOffset(req)
	case remoting.GetMaxOffset, remoting.GetMinOffset:
		return b.handleMinMaxOffset(req)
	case remoting.SearchOffsetByTimestamp:
		return b.handleSearchOffset(req)
	case remoting.ConsumerSendMsgBack:
		return b.handleSendBack(c, req)
	case remoting.LockBatchMQ:
		return b.handleLock(req)
	case remoting.UnlockBatchMQ:
		return b.handleUnlock(req)
	case remoting.QueryMessage:
		return b.handleQueryMessage(req)
	case queryTopicConsumeByWho:
		return b.handleTopicConsumeByWho(req)
	case remoting.ViewMessageByID:
		return b.handleViewMessage(req)
	case remoting.UpdateAndCreateTopic:
		return b.handleCreateTopic(req)
	case remoting.DeleteTopicInBroker:
		return b.handleDeleteTopic(req)
	case remoting.GetAllTopicConfig:
		return b.handleAllTopics(req)
	case remoting.UpdateAndCreateSubscription:
		return b.handleCreateGroup(req)
	case remoting.GetAllSubscriptionGroupConfig:
		return b.handleAllGroups(req)
	case remoting.DeleteSubscriptionGroup:
		return b.handleDeleteGroup(req)
	case remoting.GetConsumeStats:
		return b.handleConsumeStats(req)
	case remoting.InvokeBrokerToResetOffset:
		return b.handleResetOffset(req)
	case remoting.EndTransaction:
		return b.handleEndTransaction(req)
	case remoting.CheckClientConfig:
		return handleCheckClientConfig(req)
	case remoting.GetTopicConfig:
		return b.handleGetTopicConfig(req)
	case getBrokerRuntimeInfo:
		return b.handleBrokerRuntimeInfo(req)
	case getBrokerConfig:
		return b.handleBrokerConfig(req)
	case getTopicStatsInfo:
		return b.handleTopicStats(req)
	case getConsumerConnectionList:
		return b.handleConsumerConnections(req)
	case getProducerConnectionList:
		return b.handleProducerConnections(req)
	}
	return remoting.Errorf(req, remoting.RequestCodeNotSupported, "request code %d not supported", req.Code)
}

// Topic returns a topic's config. Retry topics are created on first use, so a consumer group's %RETRY% route
// exists by the time the client asks the name server for it. A dead-letter topic is not: as in Apache RocketMQ,
// %DLQ%<group> exists (and has a route) only once the first message of the group is dead-lettered, which creates
// it through systemTopic.
func (b *Broker) Topic(name string) (mqmeta.TopicConfig, bool) {
	if t, ok := b.cfg.topic(name); ok {
		return t, true
	}
	if strings.HasPrefix(name, mqmeta.RetryPrefix) {
		return b.systemTopic(name)
	}
	return mqmeta.TopicConfig{}, false
}

// RouteTopic is Topic for the name server's route answers: it never writes. A consumer group's %RETRY% topic that
// does not exist yet is answered as the one-queue read-write topic its first use will create (the heartbeat, a
// send-back or a pull creates it), so route lookups never wait for the topic table's fsync: on a loaded machine
// that wait made clients' route queries time out.
func (b *Broker) RouteTopic(name string) (mqmeta.TopicConfig, bool) {
	if t, ok := b.cfg.topic(name); ok {
		return t, true
	}
	if strings.HasPrefix(name, mqmeta.RetryPrefix) && mqmeta.ValidateTopic(name) == nil {
		return mqmeta.TopicConfig{TopicName: name, ReadQueueNums: 1, WriteQueueNums: 1, Perm: mqmeta.PermRW}, true
	}
	return mqmeta.TopicConfig{}, false
}

// systemTopic returns a retry or dead-letter topic's config, creating it (one queue, read-write) if needed.
func (b *Broker) systemTopic(name string) (mqmeta.TopicConfig, bool) {
	if t, ok := b.cfg.topic(name); ok {
		return t, true
	}
	if !strings.HasPrefix(name, mqmeta.RetryPrefix) && !strings.HasPrefix(name, mqmeta.DLQPrefix) {
		return mqmeta.TopicConfig{}, false
	}
	if mqmeta.ValidateTopic(name) != nil {
		return mqmeta.TopicConfig{}, false
	}
	t, _, err := b.cfg.ensureTopic(mqmeta.TopicConfig{TopicName: name, ReadQueueNums: 1, WriteQueueNums: 1, Perm: mqmeta.PermRW})
	if err != nil {
		b.log.Error("creating system topic failed", "topic", name, "err", err)
		return mqmeta.TopicConfig{}, false
	}
	return t, true
}

// Topics returns every topic's config.
func (b *Broker) Topics() map[string]mqmeta.TopicConfig { return b.cfg.allTopics() }

// CreateTopic creates or updates a topic.
func (b *Broker) CreateTopic(t mqmeta.TopicConfig) error {
	if err := mqmeta.ValidateTopic(t.TopicName); err != nil {
		return err
	}
	if t.ReadQueueNums <= 0 || t.WriteQueueNums <= 0 || t.ReadQueueNums > 1024 || t.WriteQueueNums > 1024 {
		return fmt.Errorf("topic %s: readQueueNums %d / writeQueueNums %d: want 1..1024", t.TopicName, t.ReadQueueNums, t.WriteQueueNums)
	}
	if t.Perm == 0 {
		t.Perm = mqmeta.PermRW
	}
	_, err := b.cfg.putTopic(t)
	return err
}

// DeleteTopic removes a topic, its queues and its consumer offsets.
func (b *Broker) DeleteTopic(name string) error {
	if name == mqmeta.DefaultTopic || name == mqmeta.ScheduleTopic {
		return fmt.Errorf("topic %s: system topic cannot be deleted", name)
	}
	ok, err := b.cfg.deleteTopic(name)
	if err != nil {
		return err
	}
	if !ok {
		return fmt.Errorf("topic %s: %w", name, errTopicNotExist)
	}
	b.opts.Counters.ForgetTopic(name)
	return b.st.DeleteTopic(name)
}

var errTopicNotExist = errors.New("topic does not exist")

// BrokerName is the broker's name in routes.
func (b *Broker) BrokerName() string { return b.opts.BrokerName }

// ClusterName is the cluster's name in routes.
func (b *Broker) ClusterName() string { return b.opts.ClusterName }

// Addr is the advertised address.
func (b *Broker) Addr() string { return b.opts.Addr }

type pullKey struct {
	group, topic string
	queue        int32
}

type pullSeen struct {
	conn   *remoting.Conn
	at     time.Time
	offset int64 // the queue offset the pull asked for: everything below it was handed to the group
}

func (b *Broker) notePull(p *pullReq) {
	b.pullMu.Lock()
	b.lastPulls[pullKey{p.group, p.topic, p.queue}] = pullSeen{p.conn, b.clock.Now(), p.offset}
	b.pullMu.Unlock()
}

// PulledOffsets returns, per group, topic and queue, the offset the group's last pull asked for (everything below
// it was handed to a consumer; minus the committed offset, that is what is in flight).
func (b *Broker) PulledOffsets() map[string]map[string]map[int32]int64 {
	b.pullMu.Lock()
	defer b.pullMu.Unlock()
	out := map[string]map[string]map[int32]int64{}
	for k, s := range b.lastPulls {
		g := out[k.group]
		if g == nil {
			g = map[string]map[int32]int64{}
			out[k.group] = g
		}
		q := g[k.topic]
		if q == nil {
			q = map[int32]int64{}
			g[k.topic] = q
		}
		q[k.queue] = s.offset
	}
	return out
}

// LastPull reports which clients (by the connection they share) last pulled a queue for a group, and when.
func (b *Broker) LastPull(group, topic string, queue int32) ([]string, time.Time) {
	b.pullMu.Lock()
	s, ok := b.lastPulls[pullKey{group, topic, queue}]
	b.pullMu.Unlock()
	if !ok {
		return nil, time.Time{}
	}
	return b.clients.idsOnConn(s.conn), s.at
}
