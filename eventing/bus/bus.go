package bus

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// Sentinel errors.
var (
	// ErrClosed: the bus or subscription was closed.
	ErrClosed = errors.New("bus closed")
	// ErrNotStored: the broker did not confirm the message as stored.
	ErrNotStored = errors.New("message not stored")
	// ErrInvalidOptions: bad options (names the field).
	ErrInvalidOptions = errors.New("invalid bus options")
	// ErrUnsupported: the bus cannot do this (wraps errors.ErrUnsupported).
	ErrUnsupported = fmt.Errorf("bus: %w", errors.ErrUnsupported)
)

// PropMarker marks a bus-internal message that consumers skip.
const PropMarker = "TIDE_MARKER"

// Message is one RocketMQ message as eventing sees it.
type Message struct {
	Topic      string
	Body       []byte
	Properties map[string]string
	// ShardingKey, when set, picks the queue by hash so that messages with the
	// same key keep their order in one queue.
	ShardingKey string

	// Set on consumed messages.
	MsgID          string
	QueueID        int
	QueueOffset    int64
	ReconsumeTimes int32
	BornTime       time.Time
	StoreTime      time.Time
}

// Action is a handler's verdict on a message.
type Action int

const (
	// Ack: done with the message (delivered, dead-lettered or discarded).
	Ack Action = iota
	// Retry: keep the message in RocketMQ and deliver it again later.
	Retry
	// DeadLetter: retrying cannot help (for example the subscriber rejected the
	// event with a non-retryable status and there is no dead-letter sink); park
	// the message in %DLQ%<group> now instead of cycling through %RETRY%. Ordered
	// subscriptions treat it as Retry (the queue's order must hold), which ends
	// in %DLQ% after MaxReconsumeTimes.
	DeadLetter
)

// Handler processes one message. It may be called concurrently for an
// unordered subscription; for an ordered one, calls for the same queue are
// sequential.
type Handler func(ctx context.Context, m *Message) Action

// From says where a consumer group without a stored offset starts.
type From int

const (
	// FromLast starts at the end of the queues (RocketMQ's
	// CONSUME_FROM_LAST_OFFSET; brokers may start a brand-new small topic at 0).
	FromLast From = iota
	// FromFirst starts at the beginning.
	FromFirst
	// FromTime starts at the first message stored at or after
	// SubscribeOptions.Since (RocketMQ's CONSUME_FROM_TIMESTAMP, one-second
	// precision). Unlike FromLast it does not depend on when the consumer's
	// queues get assigned, so nothing sent after Subscribe returns is skipped.
	FromTime
)

// SubscribeOptions configure one consumer group.
type SubscribeOptions struct {
	Topic string
	Group string
	// Ordered delivers one message at a time per queue, in queue order.
	Ordered bool
	// Concurrency bounds in-flight handler calls of an unordered subscription.
	// Default 20 (the client's default).
	Concurrency int
	// MaxReconsumeTimes bounds redeliveries (through %RETRY%, or in place for
	// ordered subscriptions) before the message moves to %DLQ%<group>.
	// 0 means 16, RocketMQ's default.
	MaxReconsumeTimes int32
	// OrderedRetryPause is how long an ordered subscription waits before
	// retrying a message in place. Default 1s.
	OrderedRetryPause time.Duration
	From              From
	// Since is the start time for FromTime.
	Since time.Time
}

// Subscription is a running consumer group member.
type Subscription interface {
	// Close stops consuming and persists offsets. In-flight messages that were
	// not acknowledged are delivered again later.
	Close() error
}

// Bus is what eventing needs from RocketMQ.
type Bus interface {
	// Send stores m synchronously; nil means the broker confirmed SEND_OK.
	Send(ctx context.Context, m *Message) error
	// EnsureTopic makes sure topic exists so consumers can subscribe to it.
	EnsureTopic(ctx context.Context, topic string) error
	// DeleteTopic removes topic and the messages stored in it. A topic that does not exist is not an error.
	DeleteTopic(ctx context.Context, topic string) error
	// DeleteGroup removes a consumer group from the brokers: its subscription config, its committed offsets and
	// its %RETRY% topic. Its %DLQ% topic, which holds parked messages, stays. Close the group's subscriptions
	// first (a live consumer's heartbeat re-creates the group). A group that does not exist is not an error;
	// ErrUnsupported means this bus has no way to do it.
	DeleteGroup(ctx context.Context, group string) error
	// Subscribe starts consuming; it returns once the consumer has started.
	Subscribe(ctx context.Context, opts SubscribeOptions, h Handler) (Subscription, error)
	// Close shuts the producer down. Subscriptions are closed by their owners.
	Close() error
}
