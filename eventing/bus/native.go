package bus

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/tide-run/tide/mq/acl"
	"github.com/tide-run/tide/mq/message"
	"github.com/tide-run/tide/mq/mqmeta"
	"github.com/tide-run/tide/mq/remoting"
)

// Native is the Bus on tide's own remoting client (mq/remoting) instead of the official Go client: the same
// semantics as RocketMQ (batching by queue with ShardingKey queue selection, EnsureTopic by a marker message,
// DeleteTopic, DeleteGroup through the same hook with its late second deletion, message trace, ACL signing) at a
// fraction of the cost per message: one write per frame, no goroutine or context values per message, a message's
// properties parsed once into the map the handler gets. It speaks RocketMQ's 4.x remoting protocol, so it works
// against tide's embedded broker and Apache RocketMQ alike. The consumer is native_consumer.go.
type Native struct {
	opts        RocketMQOptions
	nameServers []string
	log         *slog.Logger
	conns       *nativeConns // the producer's connections
	// uniqPrefix is the first 20 hex digits of the message ids this bus gives (UNIQ_KEY): address, pid, random.
	uniqPrefix string
	uniqSeq    atomic.Uint32

	routeMu sync.Mutex // guards routes
	routes  map[string]*nativeRoute

	mu      sync.Mutex // guards ensured, closed, subs
	ensured map[string]bool
	closed  bool
	subs    map[*nativeSub]struct{}
	late    *lateDeletes // DeleteGroup's second deletion (lategroups.go)

	queue      chan *pending
	stop       chan struct{}
	workers    sync.WaitGroup
	roundTrips atomic.Int64
	trace      *traceWriter
	selector   *keySelector
}

var _ Bus = (*Native)(nil)

// routeTTL is how long a topic's route is used before it is fetched again (the official clients refresh every 30 s).
const routeTTL = 30 * time.Second

// NewNative starts a native bus. It takes RocketMQ's options (Producers is ignored: a connection per broker
// pipelines every request).
func NewNative(opts RocketMQOptions) (*Native, error) {
	opts, addrs, err := opts.withDefaults()
	if err != nil {
		return nil, err
	}
	b := &Native{
		opts:        opts,
		nameServers: addrs,
		log:         opts.Logger.With("component", "eventing-bus"),
		conns:       newNativeConns(addrs, acl.Credentials{AccessKey: opts.AccessKey, SecretKey: opts.SecretKey}),
		routes:      map[string]*nativeRoute{},
		ensured:     map[string]bool{},
		subs:        map[*nativeSub]struct{}{},
		stop:        make(chan struct{}),
		selector:    &keySelector{},
	}
	b.late = newLateDeletes(b.log, func(ctx context.Context, group string) error {
		return b.opts.DeleteGroup(ctx, b.nameServers, group)
	}, b.subscribes)
	var id [10]byte
	copy(id[:4], net.IPv4(127, 0, 0, 1).To4())
	id[4], id[5] = byte(os.Getpid()>>8), byte(os.Getpid())
	r := rand.Uint32()
	id[6], id[7], id[8], id[9] = byte(r>>24), byte(r>>16), byte(r>>8), byte(r)
	b.uniqPrefix = strings.ToUpper(hex.EncodeToString(id[:]))
	if !opts.DisableBatching {
		b.queue = make(chan *pending, 4096)
		b.workers.Add(2)
		go b.batchWorker()
		go b.batchWorker()
	}
	if opts.MessageTrace {
		b.trace = newTraceWriter(func(ctx context.Context, body []byte, keys []string) error {
			return b.sendNow(ctx, []*Message{{Topic: traceTopic, Body: body, Properties: map[string]string{message.PropKeys: strings.Join(keys, " ")}}}, "")
		}, b.log, b.stop, &b.workers, opts.SendTimeout)
	}
	return b, nil
}

// clientSeq numbers client ids (newClientID).
var clientSeq atomic.Uint64

// newUniqKey builds a message id in the official clients' layout (32 hex digits: address, pid, random; then
// milliseconds since the start of the month and a counter). The random part makes it unique across buses.
func (b *Native) newUniqKey(now time.Time) string {
	month := time.Date(now.Year(), now.Month(), 1, 0, 0, 0, 0, now.Location())
	ms := uint32(now.Sub(month).Milliseconds())
	n := b.uniqSeq.Add(1)
	var buf [32]byte
	copy(buf[:], b.uniqPrefix)
	const digits = "0123456789ABCDEF"
	v := uint64(ms)<<16 | uint64(n&0xFFFF)
	for i := 31; i >= 20; i-- {
		buf[i] = digits[v&0xF]
		v >>= 4
	}
	return string(buf[:])
}

// route returns topic's route, fetched again after routeTTL or when refresh is set.
func (b *Native) route(ctx context.Context, topic string, refresh bool) (*nativeRoute, error) {
	b.routeMu.Lock()
	r := b.routes[topic]
	b.routeMu.Unlock()
	if r != nil && !refresh && time.Since(r.at) < routeTTL {
		return r, nil
	}
	nr, err := b.conns.fetchRoute(ctx, topic)
	if err != nil {
		if r != nil && !errors.Is(err, errNoRoute) {
			return r, nil // the name server is away: the last route is the best guess
		}
		return nil, err
	}
	b.routeMu.Lock()
	b.routes[topic] = nr
	b.routeMu.Unlock()
	if n := len(nr.write); n > 0 {
		b.selector.queues.Store(topic, n)
	}
	return nr, nil
}

// writeQueues returns the queues a send to topic may go to: the topic's, or the default topic's (TBW102) for a
// topic the brokers do not know yet, which they create on the first send.
func (b *Native) writeQueues(ctx context.Context, topic string, refresh bool) ([]nativeQueue, error) {
	r, err := b.route(ctx, topic, refresh)
	if err == nil && len(r.write) > 0 {
		return r.write, nil
	}
	if err != nil && !errors.Is(err, errNoRoute) {
		return nil, err
	}
	d, derr := b.route(ctx, mqmeta.DefaultTopic, refresh)
	if derr != nil {
		return nil, fmt.Errorf("topic %s has no route and the default topic neither: %w", topic, derr)
	}
	out := make([]nativeQueue, 0, 4*len(d.masters))
	seen := map[string]bool{}
	for _, q := range d.write {
		if !seen[q.broker] {
			seen[q.broker] = true
			for i := range int32(4) {
				out = append(out, nativeQueue{topic: topic, broker: q.broker, addr: q.addr, id: i})
			}
		}
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("%w %s: no writable queue", errNoRoute, topic)
	}
	return out, nil
}

// Send implements Bus.
func (b *Native) Send(ctx context.Context, m *Message) error {
	b.mu.Lock()
	closed := b.closed
	b.mu.Unlock()
	if closed {
		return ErrClosed
	}
	if b.queue == nil || len(m.Body) > batchBodyLimit {
		return b.sendNow(ctx, []*Message{m}, m.ShardingKey)
	}
	q := &pending{ctx: ctx, nmsg: m, topic: m.Topic, key: m.ShardingKey, size: len(m.Body) + 256, done: make(chan error, 1)}
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

// batchWorker serves b.queue until the bus closes (see batch.go: the same grouping as the official client's bus).
func (b *Native) batchWorker() {
	defer b.workers.Done()
	for {
		batch, ok := collectBatch(b.queue, b.stop)
		if !ok {
			return
		}
		hints, groups := b.selector.group(batch)
		var wg sync.WaitGroup
		for i, g := range groups {
			msgs := make([]*Message, 0, len(g))
			live := g[:0:0]
			for _, q := range g {
				if q.ctx.Err() != nil {
					q.done <- q.ctx.Err()
					continue
				}
				msgs = append(msgs, q.nmsg)
				live = append(live, q)
			}
			if len(msgs) == 0 {
				continue
			}
			send := func() {
				err := b.sendNow(live[0].ctx, msgs, hints[i])
				for _, q := range live {
					q.done <- err
				}
			}
			if i == len(groups)-1 {
				send()
				continue
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				send()
			}()
		}
		wg.Wait()
	}
}

// sendNow stores msgs (one message, or a batch for one topic whose keys all pick one queue, key being one of them)
// with one SEND_MESSAGE_V2 or SEND_BATCH_MESSAGE round trip, retrying up to SendRetries times: on another queue
// (another broker where there is one) for messages without a key, on the key's queue otherwise.
func (b *Native) sendNow(ctx context.Context, msgs []*Message, key string) error {
	topic := msgs[0].Topic
	now := time.Now()
	props := make([]string, len(msgs))
	for i, m := range msgs {
		props[i] = b.formatProps(m, now)
	}
	var lastErr error
	var lastBroker string
	start := rand.IntN(1 << 30)
	for attempt := 0; attempt <= b.opts.SendRetries; attempt++ {
		if err := ctx.Err(); err != nil {
			lastErr = err
			break
		}
		qs, err := b.writeQueues(ctx, topic, attempt > 0)
		if err != nil {
			lastErr = err
			continue
		}
		var q nativeQueue
		if key != "" {
			q = qs[int(keyHash(key))%len(qs)]
		} else {
			q = qs[(start+attempt)%len(qs)]
			if q.broker == lastBroker {
				for j := range qs {
					if c := qs[(start+attempt+j)%len(qs)]; c.broker != lastBroker {
						q = c
						break
					}
				}
			}
		}
		lastBroker = q.broker
		b.roundTrips.Add(1)
		resp, err := b.conns.invoke(ctx, q.addr, b.sendRequest(q, msgs, props, now), b.opts.SendTimeout)
		if err != nil {
			lastErr = err
			continue
		}
		switch resp.Code {
		case remoting.Success:
			return nil
		case remoting.FlushDiskTimeout, 11, 12: // stored, but not flushed or replicated in time: not SEND_OK
			return fmt.Errorf("%w: topic %s: broker answered status %d", ErrNotStored, topic, resp.Code)
		}
		lastErr = fmt.Errorf("%w: %s: code %d: %s", errBrokerAnswer, q.addr, resp.Code, resp.Remark)
		if resp.Code == remoting.MessageIllegal || resp.Code == remoting.NoPermission {
			break
		}
	}
	return fmt.Errorf("%w: topic %s: %w", ErrNotStored, topic, lastErr)
}

// formatProps encodes m's properties with the ones every client sends (UNIQ_KEY, WAIT, the sharding key).
func (b *Native) formatProps(m *Message, now time.Time) string {
	var sb strings.Builder
	for k, v := range m.Properties {
		sb.WriteString(k)
		sb.WriteByte(1)
		sb.WriteString(v)
		sb.WriteByte(2)
	}
	if m.ShardingKey != "" {
		sb.WriteString("__SHARDINGKEY\x01")
		sb.WriteString(m.ShardingKey)
		sb.WriteByte(2)
	}
	sb.WriteString(message.PropUniqKey + "\x01")
	sb.WriteString(b.newUniqKey(now))
	sb.WriteString("\x02" + message.PropWaitStoreOK + "\x01true\x02")
	return sb.String()
}

func (b *Native) sendRequest(q nativeQueue, msgs []*Message, props []string, now time.Time) *remoting.Command {
	ext := map[string]string{
		"a": b.opts.ProducerGroup, "b": q.topic, "c": mqmeta.DefaultTopic, "d": "4", "e": strconv.Itoa(int(q.id)),
		"f": "0", "g": strconv.FormatInt(now.UnixMilli(), 10), "h": "0", "j": "0", "k": "false",
	}
	if len(msgs) == 1 {
		ext["i"], ext["m"] = props[0], "false"
		return remoting.NewRequest(remoting.SendMessageV2, ext, msgs[0].Body)
	}
	size := 0
	for i, m := range msgs {
		size += 22 + len(m.Body) + len(props[i])
	}
	body := make([]byte, 0, size)
	for i, m := range msgs {
		body = message.AppendBatchItem(body, message.BatchItem{Body: m.Body, Properties: props[i]})
	}
	ext["i"], ext["m"] = message.PropWaitStoreOK+"\x01true\x02", "true"
	return remoting.NewRequest(remoting.SendBatchMessage, ext, body)
}

// EnsureTopic implements Bus as RocketMQ.EnsureTopic does: the first call for a topic sends a marker message
// (consumers skip it), which makes the broker create the topic.
func (b *Native) EnsureTopic(ctx context.Context, topic string) error {
	b.mu.Lock()
	done := b.ensured[topic]
	b.mu.Unlock()
	if done {
		return nil
	}
	err := b.sendNow(ctx, []*Message{{Topic: topic, Properties: map[string]string{PropMarker: "topic-init"}, Body: []byte("tide topic-init")}}, "")
	if err != nil {
		return fmt.Errorf("ensure topic %s: %w", topic, err)
	}
	// The route changed (or appeared) with the topic.
	if _, err := b.route(ctx, topic, true); err != nil {
		b.log.Debug("route of a topic just created not there yet", "topic", topic, "err", err)
	}
	b.mu.Lock()
	b.ensured[topic] = true
	b.mu.Unlock()
	return nil
}

// DeleteTopic implements Bus: DELETE_TOPIC_IN_BROKER on every master of the topic's route, then
// DELETE_TOPIC_IN_NAMESRV on every name server (mqadmin deleteTopic's steps). A topic without a route is gone.
func (b *Native) DeleteTopic(ctx context.Context, topic string) error {
	b.mu.Lock()
	delete(b.ensured, topic)
	b.mu.Unlock()
	r, err := b.conns.fetchRoute(ctx, topic)
	b.routeMu.Lock()
	delete(b.routes, topic)
	b.routeMu.Unlock()
	if errors.Is(err, errNoRoute) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("delete topic %s: finding its broker: %w", topic, err)
	}
	for _, addr := range uniq(r.masters) {
		if _, err := b.conns.call(ctx, addr, remoting.NewRequest(remoting.DeleteTopicInBroker, map[string]string{"topic": topic}, nil), 5*time.Second); err != nil {
			return fmt.Errorf("delete topic %s: %w", topic, err)
		}
	}
	for _, ns := range b.nameServers {
		if _, err := b.conns.call(ctx, ns, remoting.NewRequest(remoting.DeleteTopicInNameSrv, map[string]string{"topic": topic}, nil), 5*time.Second); err != nil {
			return fmt.Errorf("delete topic %s: %w", topic, err)
		}
	}
	return nil
}

func uniq(s []string) []string {
	var out []string
	for _, v := range s {
		if !contains(out, v) {
			out = append(out, v)
		}
	}
	return out
}

func contains(s []string, v string) bool {
	for _, x := range s {
		if x == v {
			return true
		}
	}
	return false
}

// DeleteGroup implements Bus with the DeleteGroup hook, as RocketMQ.DeleteGroup does, with the same second deletion
// after a recent shutdown (lateHeartbeat).
func (b *Native) DeleteGroup(ctx context.Context, group string) error {
	if b.opts.DeleteGroup == nil {
		return fmt.Errorf("delete group %s: %w", group, ErrUnsupported)
	}
	if err := b.opts.DeleteGroup(ctx, b.nameServers, group); err != nil {
		return fmt.Errorf("delete group %s: %w", group, err)
	}
	b.late.deleted(group)
	return nil
}

// subscribes reports whether the bus has a subscription of group.
func (b *Native) subscribes(group string) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	for s := range b.subs {
		if s.o.Group == group {
			return true
		}
	}
	return false
}

// Close implements Bus.
func (b *Native) Close() error {
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
	b.conns.close()
	return nil
}
