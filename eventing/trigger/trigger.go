package trigger

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"strings"
	"sync/atomic"

	"github.com/cloudevents/sdk-go/v2/event"
	"github.com/cloudevents/sdk-go/v2/types"
	"go.opentelemetry.io/otel/trace"
	eventingv1 "knative.dev/eventing/pkg/apis/eventing/v1"

	"github.com/tide-run/tide/eventing/binding"
	"github.com/tide-run/tide/eventing/bus"
	"github.com/tide-run/tide/eventing/contract"
	"github.com/tide-run/tide/eventing/delivery"
	"github.com/tide-run/tide/eventing/filter"
	"github.com/tide-run/tide/internal/tracing"
)

// Sentinel errors.
var (
	ErrInvalidConfig = errors.New("invalid trigger config")
	ErrNotFound      = errors.New("trigger not found")
	ErrClosed        = errors.New("trigger manager closed")
)

// OrderAnnotation selects the delivery order of a Trigger.
const (
	OrderAnnotation = "rocketmq.eventing.knative.dev/delivery.order"
	OrderOrdered    = "ordered"
	OrderUnordered  = "unordered"
)

// DefaultConcurrency bounds in-flight deliveries of an unordered Trigger.
const DefaultConcurrency = 32

// Config is everything the data plane needs to run one Trigger; the control
// plane resolves it (subscriber URI, dead-letter sink, delivery defaults from
// the Broker) and passes it to Manager.Upsert.
type Config struct {
	Namespace string
	Name      string
	// UID is the Trigger's metadata.uid, optional. When set it becomes part
	// of the consumer group, so a Trigger deleted and created again under the
	// same name starts afresh instead of resuming the old one's offsets.
	UID string
	// Broker is the Broker's name (same namespace); replies are published to it.
	Broker string
	// Topic is the Broker's RocketMQ topic.
	Topic string
	// Filter and Filters are spec.filter and spec.filters.
	Filter  *eventingv1.TriggerFilter
	Filters []eventingv1.SubscriptionsAPIFilter
	// Subscriber is the resolved spec.subscriber (status.subscriberUri).
	Subscriber *url.URL
	// Delivery is spec.delivery (or the Broker's), resolved.
	Delivery DeliverySpec
	// Ordered: strict per-queue order (see OrderAnnotation).
	Ordered bool
	// Concurrency bounds in-flight deliveries when unordered; default DefaultConcurrency.
	Concurrency int
}

// OrderedFromAnnotations reads OrderAnnotation; a value other than ordered or
// unordered is an error naming the field.
func OrderedFromAnnotations(ann map[string]string) (bool, error) {
	switch v := ann[OrderAnnotation]; v {
	case "", OrderUnordered:
		return false, nil
	case OrderOrdered:
		return true, nil
	default:
		return false, fmt.Errorf("%w: metadata.annotations[%s]: expected %q or %q, got %q",
			ErrInvalidConfig, OrderAnnotation, OrderOrdered, OrderUnordered, v)
	}
}

func (c *Config) key() string { return c.Namespace + "/" + c.Name }

// Group is the RocketMQ consumer group of a Trigger without a UID. RocketMQ
// group names allow letters, digits, '-' and '_' only, so other characters
// become '_'.
func Group(namespace, name string) string {
	return "tide-trigger-" + sanitize(namespace) + "-" + sanitize(name)
}

// GroupOf is the consumer group of a Trigger config: Group, plus the first
// 8 characters of the UID when there is one.
func GroupOf(c Config) string {
	g := Group(c.Namespace, c.Name)
	if c.UID != "" {
		g += "-" + sanitize(c.UID[:min(8, len(c.UID))])
	}
	return g
}

func sanitize(s string) string {
	return strings.Map(func(r rune) rune {
		if r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_' {
			return r
		}
		return '_'
	}, s)
}

func (c *Config) validate() error {
	switch {
	case c.Namespace == "":
		return fmt.Errorf("%w: metadata.namespace: required", ErrInvalidConfig)
	case c.Name == "":
		return fmt.Errorf("%w: metadata.name: required", ErrInvalidConfig)
	case c.Broker == "":
		return fmt.Errorf("%w: spec.broker: required", ErrInvalidConfig)
	case c.Topic == "":
		return fmt.Errorf("%w: broker topic: required", ErrInvalidConfig)
	case c.Subscriber == nil || c.Subscriber.Host == "":
		return fmt.Errorf("%w: spec.subscriber: resolved absolute URI required", ErrInvalidConfig)
	}
	return nil
}

// Stats are a Trigger's counters since it started in this process.
type Stats struct {
	// Delivered: the subscriber answered 2xx.
	Delivered int64 `json:"delivered"`
	// Retried: extra attempts made (attempts beyond the first per delivery).
	Retried int64 `json:"retried"`
	// DeadLettered: the dead-letter sink took the event.
	DeadLettered int64 `json:"deadLettered"`
	// Failed: neither subscriber nor dead-letter sink took it; it was left in
	// RocketMQ for redelivery (%RETRY%, eventually %DLQ%).
	Failed int64 `json:"failed"`
	// Filtered: events that did not pass the filter.
	Filtered int64 `json:"filtered"`
	// Replies stored back into the Broker; RepliesDropped ended by TTL.
	Replies        int64 `json:"replies"`
	RepliesDropped int64 `json:"repliesDropped"`
	// BadReplies: attempts the subscriber answered 2xx with a body that is
	// neither empty nor a valid CloudEvent (delivery.ErrBadReply). Each is a
	// failed attempt, retried like a 502, so it is also in Retried (when
	// another attempt followed) and the event ends Delivered, DeadLettered or
	// Failed like any other.
	BadReplies int64 `json:"badReplies"`
	// Discarded: messages on the topic that are not valid CloudEvents.
	Discarded int64 `json:"discarded"`
	// InFlight deliveries right now.
	InFlight int64 `json:"inFlight"`
}

type counters struct {
	delivered, retried, deadLettered, failed, filtered atomic.Int64
	replies, repliesDropped, discarded, inFlight       atomic.Int64
	badReplies                                         atomic.Int64
}

func (c *counters) snapshot() Stats {
	return Stats{
		Delivered: c.delivered.Load(), Retried: c.retried.Load(), DeadLettered: c.deadLettered.Load(),
		Failed: c.failed.Load(), Filtered: c.filtered.Load(), Replies: c.replies.Load(),
		RepliesDropped: c.repliesDropped.Load(), BadReplies: c.badReplies.Load(), Discarded: c.discarded.Load(),
		InFlight: c.inFlight.Load(),
	}
}

// Publisher stores an event in a Broker (ingress.Ingress implements it).
type Publisher interface {
	Publish(ctx context.Context, namespace, broker string, e event.Event) error
}

// runtimeConfig is the part of a Trigger that can change without restarting
// its consumer; the dispatcher reads it through an atomic pointer.
type runtimeConfig struct {
	cfg    Config
	filter filter.Filter
}

// dispatcher handles the messages of one Trigger.
type dispatcher struct {
	rc        atomic.Pointer[runtimeConfig]
	sender    Sender
	publisher Publisher
	stats     *counters
	log       *slog.Logger
	// ctx ends when the Trigger is removed, cancelling in-flight deliveries
	// (their messages are not acknowledged and come back later).
	ctx context.Context
	// tracer records a consumer span per message (tracing.go); group is the consumer group, for its attributes.
	tracer trace.Tracer
	group  string
}

func (d *dispatcher) handle(ctx context.Context, m *bus.Message) bus.Action {
	rc := d.rc.Load()
	span := noSpan
	var res *DeliveryResult
	act := d.process(rc, m, &span, &res)
	endProcess(span, act, res)
	if res != nil {
		// For the message's RocketMQ trace record (`tide mq trace`): where it went and what the subscriber said.
		bus.NoteDelivery(ctx, bus.Delivery{Sink: rc.cfg.Subscriber, Outcome: res.Outcome.String(),
			Status: res.StatusCode, Attempts: res.Attempts})
	}
	return act
}

// process handles one message. An event that passes the filter gets its span (*spanOut), whose context carries the
// trace to the subscriber and into replies; one the filter drops makes no span (with many Triggers on a Broker most
// events are dropped by most of them). *resOut is set when a delivery was made.
func (d *dispatcher) process(rc *runtimeConfig, m *bus.Message, spanOut *trace.Span, resOut **DeliveryResult) bus.Action {
	ev, err := binding.Decode(m.Body, m.Properties)
	if err != nil {
		// Not ours to deliver: the ingress only stores valid CloudEvents, so
		// this is a foreign producer writing to the Broker's topic.
		d.stats.discarded.Add(1)
		d.log.Warn("discarding message that is not a valid CloudEvent", "msgId", m.MsgID, "err", err)
		return bus.Ack
	}
	if !rc.filter.Match(ev) {
		d.stats.filtered.Add(1)
		return bus.Ack
	}
	ctx, span := d.startProcess(m, rc)
	*spanOut = span
	ttl := int32(-1)
	if raw, ok := extension(ev, contract.TTLExtension); ok {
		if n, err := types.ToInteger(raw); err == nil {
			ttl = n
		}
		// The TTL is the Broker's business, not the subscriber's (Knative strips it too).
		ev.SetExtension(contract.TTLExtension, nil)
	}
	spec := rc.cfg.Delivery
	spec.PreferReply = true
	// The subscriber sees this Trigger's span in both the traceparent header and the event's extension.
	tracing.SetEvent(ctx, ev)
	d.stats.inFlight.Add(1)
	res := d.sender.Send(ctx, rc.cfg.Subscriber, *ev, spec)
	d.stats.inFlight.Add(-1)
	*resOut = &res
	if res.Attempts > 1 {
		d.stats.retried.Add(int64(res.Attempts - 1))
	}
	if res.BadReplies > 0 {
		// The sender already treated these as failed attempts (Knative's broker
		// answers 502 for them); counted separately because "the subscriber
		// said 200 but the event was retried" needs explaining.
		d.stats.badReplies.Add(int64(res.BadReplies))
	}
	switch res.Outcome {
	case Delivered:
		if res.Reply != nil {
			if act := d.reply(ctx, rc, res.Reply, ttl); act == bus.Retry {
				return bus.Retry
			}
		}
		d.stats.delivered.Add(1)
		return bus.Ack
	case DeadLettered:
		d.stats.deadLettered.Add(1)
		return bus.Ack
	default:
		if d.ctx.Err() != nil {
			// Shutting down: not a failure of the event; it will be redelivered.
			return bus.Retry
		}
		d.stats.failed.Add(1)
		if errors.Is(res.Err, delivery.ErrNotRetryable) && !errors.Is(res.Err, delivery.ErrDeadLetterFailed) {
			// The subscriber rejected the event for good (e.g. 400) and there is
			// no dead-letter sink: redelivering cannot help. Knative drops the
			// event here; tide parks it in %DLQ%<group> where it can be inspected.
			d.log.Warn("subscriber rejected the event; parking it in the trigger's RocketMQ DLQ",
				"id", ev.ID(), "source", ev.Source(), "status", res.StatusCode, "err", res.Err)
			return bus.DeadLetter
		}
		d.log.Warn("delivery failed; leaving the event in RocketMQ for redelivery",
			"id", ev.ID(), "source", ev.Source(), "status", res.StatusCode, "attempts", res.Attempts,
			"reconsumeTimes", m.ReconsumeTimes, "err", res.Err)
		return bus.Retry
	}
}

// reply stores a subscriber's reply in the Broker with the original's TTL
// (Publish decrements it).
func (d *dispatcher) reply(ctx context.Context, rc *runtimeConfig, reply *event.Event, ttl int32) bus.Action {
	r := reply.Clone()
	if ttl >= 0 {
		r.SetExtension(contract.TTLExtension, ttl)
	}
	// ctx carries this delivery's span: the reply's producer span at the ingress is its child.
	err := d.publisher.Publish(ctx, rc.cfg.Namespace, rc.cfg.Broker, r)
	switch {
	case err == nil:
		d.stats.replies.Add(1)
		return bus.Ack
	case errors.Is(err, contract.ErrTTLExpired):
		d.stats.repliesDropped.Add(1)
		d.log.Debug("reply dropped: TTL exhausted", "id", r.ID(), "type", r.Type())
		return bus.Ack
	case errors.Is(err, contract.ErrInvalidEvent):
		// Retrying cannot make an invalid reply valid.
		d.stats.repliesDropped.Add(1)
		d.log.Warn("reply dropped: invalid event", "err", err)
		return bus.Ack
	default:
		d.log.Warn("storing reply failed; the event will be redelivered", "err", err)
		return bus.Retry
	}
}

// extension reads one extension (name in lower case, as stored) without Extensions(), which copies the whole map:
// every decoded event carries a 1.0 context, so the copy is avoided on the hot path.
func extension(ev *event.Event, name string) (any, bool) {
	if c, ok := ev.Context.(*event.EventContextV1); ok {
		v, ok := c.Extensions[name]
		return v, ok
	}
	v, ok := ev.Extensions()[name]
	return v, ok
}
