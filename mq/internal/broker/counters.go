package broker

import (
	"sync"
	"sync/atomic"

	"github.com/tide-run/tide/mq/message"
	"github.com/tide-run/tide/mq/mqmeta"
	"github.com/tide-run/tide/mq/remoting"
)

// Counters are the broker's traffic counters for metrics: messages and body bytes produced per topic and message
// type, pulled per topic and consumer group, and dead-lettered per topic and group. The broker adds to them on its
// hot paths with atomic adds on a per-series entry found in a sync.Map, so counting costs no lock; mq's Prometheus
// collector reads them at scrape time. A Broker without Counters (Options.Counters nil) counts nothing.
//
// Invariant: series exist only for topics and groups the broker knows (a topic or group deleted through the broker
// drops its series, ForgetTopic / ForgetGroup), and the (topic, group) series of pulls and dead letters are capped
// at MaxGroupSeries: beyond it, new pairs are counted under the group OverflowGroup, so a client inventing group
// names cannot grow the scrape without bound.
type Counters struct {
	in  sync.Map // inKey -> *InStats
	out sync.Map // outKey -> *OutStats
	dlq sync.Map // outKey -> *atomic.Uint64

	groupSeries atomic.Int64 // entries in out and dlq
}

// MaxGroupSeries caps the (topic, consumer group) series of pulls and dead letters.
const MaxGroupSeries = 10000

// OverflowGroup is the consumer_group label of pulls and dead letters beyond MaxGroupSeries.
const OverflowGroup = "_overflow"

// MessageType is Apache RocketMQ 5's message_type label: how a message was produced.
type MessageType uint8

// Message types, as Apache's TopicMessageType names them in metrics.
const (
	Normal MessageType = iota
	Delay
	Transaction
)

func (t MessageType) String() string {
	switch t {
	case Delay:
		return "delay"
	case Transaction:
		return "transaction"
	}
	return "normal"
}

// SizeBuckets are the upper bounds (bytes) of Apache's rocketmq_message_size histogram: 1 KiB, 4 KiB, 512 KiB,
// 1 MiB, 2 MiB, 4 MiB (and +Inf).
var SizeBuckets = [...]uint64{1 << 10, 4 << 10, 512 << 10, 1 << 20, 2 << 20, 4 << 20}

// InStats counts produced messages of one topic and message type.
type InStats struct {
	Messages, Bytes atomic.Uint64
	// Sizes[i] counts bodies of at most SizeBuckets[i] bytes and more than SizeBuckets[i-1] (not cumulative).
	Sizes [len(SizeBuckets)]atomic.Uint64
}

// OutStats counts messages pulled by one consumer group from one topic.
type OutStats struct {
	Messages, Bytes atomic.Uint64
}

type inKey struct {
	topic string
	typ   MessageType
}

type outKey struct{ topic, group string }

// noteIn counts stored messages of a send (not of a consumer's send-back): the delay and transaction system
// topics are counted under the message's real topic, as Apache counts the send.
func (c *Counters) noteIn(msgs []*message.Message) {
	if c == nil {
		return
	}
	for _, m := range msgs {
		k := inKey{topic: m.Topic}
		switch m.Topic {
		case mqmeta.ScheduleTopic, mqmeta.TimerTopic:
			k = inKey{topic: message.Property(m.Properties, message.PropRealTopic), typ: Delay}
		case mqmeta.HalfTopic:
			k = inKey{topic: message.Property(m.Properties, message.PropRealTopic), typ: Transaction}
		}
		v, ok := c.in.Load(k)
		if !ok {
			v, _ = c.in.LoadOrStore(k, new(InStats))
		}
		s := v.(*InStats)
		n := uint64(len(m.Body))
		s.Messages.Add(1)
		s.Bytes.Add(n)
		i := 0
		for i < len(SizeBuckets)-1 && n > SizeBuckets[i] {
			i++
		}
		if n <= SizeBuckets[i] {
			s.Sizes[i].Add(1)
		} // bodies over 4 MiB are refused before they are stored; +Inf is Messages
	}
}

// groupEntry finds or makes the (topic, group) entry of m, under the series cap.
func (c *Counters) groupEntry(m *sync.Map, topic, group string, mk func() any) any {
	k := outKey{topic, group}
	if v, ok := m.Load(k); ok {
		return v
	}
	if c.groupSeries.Load() >= MaxGroupSeries {
		k.group = OverflowGroup
		if v, ok := m.Load(k); ok {
			return v
		}
	}
	v, loaded := m.LoadOrStore(k, mk())
	if !loaded {
		c.groupSeries.Add(1)
	}
	return v
}

// noteOut counts messages a pull returned.
func (c *Counters) noteOut(topic, group string, msgs int, bytes int) {
	if c == nil || msgs == 0 {
		return
	}
	s := c.groupEntry(&c.out, topic, group, func() any { return new(OutStats) }).(*OutStats)
	s.Messages.Add(uint64(msgs))
	s.Bytes.Add(uint64(bytes))
}

// noteDLQ counts a message of topic that group dead-lettered.
func (c *Counters) noteDLQ(topic, group string) {
	if c == nil {
		return
	}
	c.groupEntry(&c.dlq, topic, group, func() any { return new(atomic.Uint64) }).(*atomic.Uint64).Add(1)
}

// RangeIn calls fn for every produced-messages series.
func (c *Counters) RangeIn(fn func(topic string, typ MessageType, s *InStats)) {
	c.in.Range(func(k, v any) bool {
		key := k.(inKey)
		fn(key.topic, key.typ, v.(*InStats))
		return true
	})
}

// RangeOut calls fn for every pulled-messages series.
func (c *Counters) RangeOut(fn func(topic, group string, s *OutStats)) {
	c.out.Range(func(k, v any) bool {
		key := k.(outKey)
		fn(key.topic, key.group, v.(*OutStats))
		return true
	})
}

// RangeDLQ calls fn for every dead-letter series.
func (c *Counters) RangeDLQ(fn func(topic, group string, n uint64)) {
	c.dlq.Range(func(k, v any) bool {
		key := k.(outKey)
		fn(key.topic, key.group, v.(*atomic.Uint64).Load())
		return true
	})
}

// ForgetTopic drops a deleted topic's series.
func (c *Counters) ForgetTopic(topic string) {
	if c == nil {
		return
	}
	c.in.Range(func(k, _ any) bool {
		if k.(inKey).topic == topic {
			c.in.Delete(k)
		}
		return true
	})
	c.forgetGroups(func(k outKey) bool { return k.topic == topic })
}

// ForgetGroup drops a deleted consumer group's series.
func (c *Counters) ForgetGroup(group string) {
	if c == nil {
		return
	}
	c.forgetGroups(func(k outKey) bool { return k.group == group })
}

func (c *Counters) forgetGroups(match func(outKey) bool) {
	for _, m := range []*sync.Map{&c.out, &c.dlq} {
		m.Range(func(k, _ any) bool {
			if match(k.(outKey)) {
				if _, loaded := m.LoadAndDelete(k); loaded {
					c.groupSeries.Add(-1)
				}
			}
			return true
		})
	}
}

// Connections counts the distinct connections of registered producers (any producer group) and, per consumer
// group, of its consumers, as Apache's rocketmq_producer_connections and rocketmq_consumer_connections do.
func (b *Broker) Connections() (producers int, consumers map[string]int) {
	t := b.clients
	t.mu.Lock()
	defer t.mu.Unlock()
	seen := map[*remoting.Conn]bool{}
	for _, members := range t.producers {
		for _, m := range members {
			seen[m.conn] = true
		}
	}
	consumers = make(map[string]int, len(t.groups))
	for name, g := range t.groups {
		conns := map[*remoting.Conn]bool{}
		for _, m := range g.members {
			conns[m.conn] = true
		}
		if len(conns) > 0 {
			consumers[name] = len(conns)
		}
	}
	return len(seen), consumers
}
