package trigger

import (
	"context"
	"fmt"
	"strconv"
	"time"

	"github.com/cloudevents/sdk-go/v2/event"

	"github.com/tide-run/tide/eventing/binding"
	"github.com/tide-run/tide/eventing/bus"
)

// TailOptions configure Tail.
type TailOptions struct {
	Topic string
	// Since: start with messages stored at or after it (default: now minus
	// one second). The consumer starts there by timestamp, and messages
	// stored earlier are also skipped by store time, in case a broker starts
	// a new group elsewhere.
	Since time.Time
	// Now supplies the default for Since; default time.Now.
	Now func() time.Time
}

// Tail calls fn for every CloudEvent entering the topic from now on, in a
// throw-away consumer group of its own, so it never takes events from a
// Trigger. fn must be safe for concurrent calls. Close the subscription to stop.
func Tail(ctx context.Context, b bus.Bus, o TailOptions, fn func(*event.Event)) (bus.Subscription, error) {
	if o.Topic == "" {
		return nil, fmt.Errorf("%w: topic: required", ErrInvalidConfig)
	}
	now := time.Now
	if o.Now != nil {
		now = o.Now
	}
	if o.Since.IsZero() {
		o.Since = now().Add(-time.Second)
	}
	group := "tide-tail-" + strconv.FormatInt(now().UnixNano(), 36)
	return b.Subscribe(ctx, bus.SubscribeOptions{Topic: o.Topic, Group: group, Concurrency: 1, From: bus.FromTime, Since: o.Since},
		func(_ context.Context, m *bus.Message) bus.Action {
			if !m.StoreTime.IsZero() && m.StoreTime.Before(o.Since) {
				return bus.Ack
			}
			if ev, err := binding.Decode(m.Body, m.Properties); err == nil {
				fn(ev)
			}
			return bus.Ack
		})
}
