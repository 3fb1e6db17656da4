package bus

import (
	"context"
	"hash/fnv"
	"math/rand/v2"
	"sync"

	"github.com/apache/rocketmq-client-go/v2/primitive"
	"github.com/apache/rocketmq-client-go/v2/producer"
)

// Batching ("group commit" for sends): while a synchronous send is in flight,
// further Sends queue up; a worker takes everything queued (up to
// maxBatchMessages / maxBatchBytes), groups it by topic and sharding key, and
// stores each group with one SEND_BATCH_MESSAGE round trip. Under light load a
// message goes alone and waits for nothing; under load round trips, syscalls
// and broker work are shared by many messages. Every caller still returns
// only after the broker acknowledged the batch holding its message.
const (
	maxBatchMessages = 64
	maxBatchBytes    = 1 << 20
	// batchBodyLimit: bigger bodies are sent alone so that the client's
	// compression of large bodies (single messages only) still applies.
	batchBodyLimit = 4 << 10
)

type pending struct {
	ctx   context.Context
	msg   *primitive.Message // the official client's bus
	nmsg  *Message           // the native bus (native.go)
	topic string
	key   string
	size  int
	done  chan error
}

// batchWorker serves b.queue until the bus closes.
func (b *RocketMQ) batchWorker(p rocketmqProducer) {
	defer b.workers.Done()
	for {
		batch, ok := collectBatch(b.queue, b.stop)
		if !ok {
			return
		}
		hints, groups := b.selector.group(batch)
		// Each group is its own round trip (a batch send goes to one queue); the groups go out together, so a
		// batch spread over many keys costs one round-trip time, not one per key.
		var wg sync.WaitGroup
		for i, g := range groups {
			k := hints[i]
			msgs := make([]*primitive.Message, 0, len(g))
			live := g[:0:0]
			for _, q := range g {
				if q.ctx.Err() != nil {
					q.done <- q.ctx.Err()
					continue
				}
				msgs = append(msgs, q.msg)
				live = append(live, q)
			}
			if len(msgs) == 0 {
				continue
			}
			if len(msgs) > 1 {
				// The batch message the client builds has no properties, so
				// the queue choice travels as a hint the selector reads: the
				// hash of one of the group's keys, all of which pick the same
				// queue (see group).
				msgs[0].Queue = &primitive.MessageQueue{QueueId: int(keyHash(k))}
			}
			send := func() {
				err := b.sendSync(live[0].ctx, p, msgs...)
				for _, q := range live {
					q.done <- err
				}
			}
			if i == len(groups)-1 {
				send() // the last group on this goroutine
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

func keyHash(key string) uint32 {
	h := fnv.New32a()
	_, _ = h.Write([]byte(key))
	return h.Sum32() & 0x7fffffff
}

// keySelector picks the queue by the hash of the message's sharding key, or
// by the hash hint a batch carries in Queue.QueueId (see batchWorker), so a
// key's messages land in one queue whether sent alone or batched. Messages
// without a key go to a random queue. It remembers each topic's number of
// queues (from the routes the client hands it) so that batching can group
// messages by the queue their keys pick rather than by key.
type keySelector struct {
	queues sync.Map // topic -> int: the number of queues at the last Select
}

var _ producer.QueueSelector = (*keySelector)(nil)

func (s *keySelector) Select(m *primitive.Message, mqs []*primitive.MessageQueue, _ string) *primitive.MessageQueue {
	if n, ok := s.queues.Load(m.Topic); !ok || n.(int) != len(mqs) {
		s.queues.Store(m.Topic, len(mqs))
	}
	if k := m.GetShardingKey(); k != "" {
		return mqs[int(keyHash(k))%len(mqs)]
	}
	if m.Queue != nil && m.Queue.BrokerName == "" {
		return mqs[m.Queue.QueueId%len(mqs)]
	}
	return mqs[rand.IntN(len(mqs))]
}

// group splits a batch into the groups that each go out as one batch send: per topic, the messages whose keys
// pick the same queue (keyHash(key) % queues, what Select does with a key), in arrival order. While a topic's
// queue count is not yet known (no Select for it yet) the groups are per key, which is always safe. Grouping by
// queue rather than by key is what makes batching pay with many keys: a batch of 64 events from 64 sources is 8
// round trips on an 8-queue topic, not 64. It returns, for each group, one of its keys (the hint for Select).
// Should a topic's queue count change between group and Select, a group's keys go to the queue of its hint key:
// per-key order across that moment is no more broken than by the change itself, which moves most keys anyway.
func (s *keySelector) group(batch []*pending) (hints []string, groups [][]*pending) {
	type gk struct {
		topic string
		slot  int    // queue index when the queue count is known, else -1
		key   string // the key when slot is -1 (or the message has none)
	}
	index := map[gk]int{}
	for _, q := range batch {
		k := gk{topic: q.topic, slot: -1, key: q.key}
		if q.key != "" {
			if n, ok := s.queues.Load(q.topic); ok && n.(int) > 0 {
				k = gk{topic: q.topic, slot: int(keyHash(q.key)) % n.(int)}
			}
		}
		i, ok := index[k]
		if !ok {
			i = len(groups)
			index[k] = i
			groups = append(groups, nil)
			hints = append(hints, q.key)
		}
		groups[i] = append(groups[i], q)
	}
	return hints, groups
}

// collectBatch takes the next batch of queued sends for a batch worker: the first to arrive, then whatever else is
// queued, up to maxBatchMessages and maxBatchBytes. ok is false when stop closed first.
func collectBatch(queue <-chan *pending, stop <-chan struct{}) (batch []*pending, ok bool) {
	var first *pending
	select {
	case first = <-queue:
	case <-stop:
		return nil, false
	}
	batch = []*pending{first}
	size := first.size
	for len(batch) < maxBatchMessages && size < maxBatchBytes {
		select {
		case q := <-queue:
			batch = append(batch, q)
			size += q.size
		default:
			return batch, true
		}
	}
	return batch, true
}
