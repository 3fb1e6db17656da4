package broker

import (
	"context"
	"fmt"
	"strings"
	"sync/atomic"

	"k8s.io/utils/clock"

	"github.com/tide-run/tide/mq/internal/store"
	"github.com/tide-run/tide/mq/message"
	"github.com/tide-run/tide/mq/mqmeta"
)

// This file is the broker's in-process API for the RocketMQ 5 gRPC endpoint (mq/internal/grpcproxy), which serves
// the same topics, groups, offsets and store as the remoting protocol (Apache's proxy in "local" mode does the
// same with its embedded broker). Nothing here speaks remoting.

// proxyHooks are the endpoint's callbacks, set once before traffic and read on hot paths without locks.
type proxyHooks struct {
	arrival   atomic.Pointer[func(topic string, qid int32)]
	txCheck   atomic.Pointer[func(m *message.Message, halfOff int64) bool]
	consumers atomic.Pointer[func(group string) []string] // proxyconsumers.go
}

// SetArrivalHook registers fn to be told of every stored message's topic and queue (after the consume queue has
// it). fn runs on the store's write path: it must not block.
func (b *Broker) SetArrivalHook(fn func(topic string, qid int32)) { b.hooks.arrival.Store(&fn) }

// SetTxChecker registers fn to ask a gRPC producer about an undecided half message (stored form; halfOff is its
// offset in the half topic) when no remoting producer of its group is connected. fn reports whether it asked.
func (b *Broker) SetTxChecker(fn func(m *message.Message, halfOff int64) bool) {
	b.hooks.txCheck.Store(&fn)
}

func (h *proxyHooks) arrived(topic string, qid int32) {
	if fn := h.arrival.Load(); fn != nil {
		(*fn)(topic, qid)
	}
}

func (h *proxyHooks) check(m *message.Message, halfOff int64) bool {
	if fn := h.txCheck.Load(); fn != nil {
		return (*fn)(m, halfOff)
	}
	return false
}

// Store is the broker's message store (reads for the gRPC endpoint's receives).
func (b *Broker) Store() *store.Store { return b.st }

// Clock is the broker's clock.
func (b *Broker) Clock() clock.WithTicker { return b.clock }

// MaxMessageSize is the largest accepted body.
func (b *Broker) MaxMessageSize() int { return b.opts.MaxMessageSize }

// AutoCreateTopics reports whether sends may create unknown topics.
func (b *Broker) AutoCreateTopics() bool { return !b.opts.DisableAutoCreateTopics }

// Group returns a subscription group's config.
func (b *Broker) Group(name string) (mqmeta.GroupConfig, bool) { return b.cfg.group(name) }

// EnsureGroup returns a group's config, creating it with defaults (as a consumer's heartbeat does).
func (b *Broker) EnsureGroup(name string) (mqmeta.GroupConfig, error) { return b.cfg.ensureGroup(name) }

// Offset is a group's committed offset on a queue (shared with remoting consumers).
func (b *Broker) Offset(topic, group string, q int32) (int64, bool) {
	return b.cfg.offset(topic, group, q)
}

// SetOffset commits a group's offset on a queue; it is persisted with the other offsets.
func (b *Broker) SetOffset(topic, group string, q int32, off int64) {
	b.cfg.setOffset(topic, group, q, off)
}

// InitialOffset is where a group without a committed offset starts on a queue: 0 while the queue still holds its
// first message (as QUERY_CONSUMER_OFFSET answers and Java's pop does), otherwise the queue's end.
func (b *Broker) InitialOffset(topic string, q int32) int64 {
	if !b.opts.DisableZeroOffsetForNewGroups && b.st.MinOffset(topic, q) == 0 {
		return 0
	}
	return b.st.MaxOffset(topic, q)
}

// Put stores messages through the same path as a remoting send: timer properties, delay levels and, with half,
// the transaction's half topic (the messages must carry PGROUP). It returns once the flush policy allows an answer.
func (b *Broker) Put(ctx context.Context, msgs []*message.Message, half bool) ([]store.PutResult, error) {
	for _, m := range msgs {
		if half {
			b.prepareHalf(m)
		}
		if err := b.applyTimer(m); err != nil {
			return nil, err
		}
		b.applyDelay(m)
	}
	res, end, err := b.st.Put(msgs)
	if err != nil {
		return nil, err
	}
	done := make(chan error, 1)
	b.st.WhenFlushed(end, func(err error) { done <- err })
	select {
	case err := <-done:
		if err != nil {
			return nil, fmt.Errorf("message stored but not flushed to disk: %w", err)
		}
		return res, nil
	case <-ctx.Done():
		return nil, fmt.Errorf("waiting for the flush: %w", ctx.Err())
	}
}

// IsRetryOrDLQ reports %RETRY%/%DLQ% topic names.
func IsRetryOrDLQ(topic string) bool {
	return strings.HasPrefix(topic, mqmeta.RetryPrefix) || strings.HasPrefix(topic, mqmeta.DLQPrefix)
}

// SystemTopic returns a group's retry or dead-letter topic, creating it (one queue, read-write) if needed: the 5.x
// endpoint's dead-lettering creates %DLQ%<group> as the broker's own send-back does.
func (b *Broker) SystemTopic(name string) (mqmeta.TopicConfig, bool) { return b.systemTopic(name) }
