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
	ctx  context.Context
	msg  *primitive.Message
	key  string
	size int
	done chan error
}

// batchWorker serves b.queue until the bus closes.
func (b *RocketMQ) batchWorker(p rocketmqProducer) {
	defer b.workers.Done()
	for {
		var first *pending
		select {
		case first = <-b.queue:
		case <-b.stop:
			return
		}
		batch := []*pending{first}
		size := first.size
	drain:
		for len(batch) < maxBatchMessages && size < maxBatchBytes {
			select {
			case q := <-b.queue:
				batch = append(batch, q)
				size += q.size
			default:
				break drain
			}
		}
		// Group by topic and key, keeping arrival order within a group.
		type gk struct{ topic, key string }
		groups := map[gk][]*pending{}
		var order []gk
		for _, q := range batch {
			k := gk{q.msg.Topic, q.key}
			if _, ok := groups[k]; !ok {
				order = append(order, k)
			}
			groups[k] = append(groups[k], q)
		}
		// Each group is its own round trip (a batch send goes to one queue); the groups go out together, so a
		// batch spread over many keys costs one round-trip time, not one per key.
		var wg sync.WaitGroup
		for i, k := range order {
			g := groups[k]
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
				// the queue choice travels as a hint the selector reads.
				msgs[0].Queue = &primitive.MessageQueue{QueueId: int(keyHash(k.key))}
			}
			send := func() {
				err := b.sendSync(live[0].ctx, p, msgs...)
				for _, q := range live {
					q.done <- err
				}
			}
			if i == len(order)-1 {
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
// without a key go to a random queue.
type keySelector struct{}

var _ producer.QueueSelector = keySelector{}

func (keySelector) Select(m *primitive.Message, mqs []*primitive.MessageQueue, _ string) *primitive.MessageQueue {
	if k := m.GetShardingKey(); k != "" {
		return mqs[int(keyHash(k))%len(mqs)]
	}
	if m.Queue != nil && m.Queue.BrokerName == "" {
		return mqs[m.Queue.QueueId%len(mqs)]
	}
	return mqs[rand.IntN(len(mqs))]
}
