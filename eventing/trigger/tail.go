package trigger

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"sync"
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
	// Logger gets one line when the tail's consumer group cannot be deleted;
	// default slog.Default().
	Logger *slog.Logger
	// GroupDeleteTimeout bounds deleting the group on Close; default
	// DefaultGroupDeleteTimeout.
	GroupDeleteTimeout time.Duration
}

// Tail calls fn for every CloudEvent entering the topic from now on, in a
// throw-away consumer group of its own, so it never takes events from a
// Trigger. fn must be safe for concurrent calls. Close the subscription to
// stop: Close also deletes the throw-away group on the broker (see
// bus.Bus.DeleteGroup), so tails do not pile groups up; a failure there is
// logged, not returned.
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
	sub, err := b.Subscribe(ctx, bus.SubscribeOptions{Topic: o.Topic, Group: group, Concurrency: 1, From: bus.FromTime, Since: o.Since},
		func(_ context.Context, m *bus.Message) bus.Action {
			if !m.StoreTime.IsZero() && m.StoreTime.Before(o.Since) {
				return bus.Ack
			}
			if ev, err := binding.Decode(m.Body, m.Properties); err == nil {
				fn(ev)
			}
			return bus.Ack
		})
	if err != nil {
		return nil, err
	}
	log := o.Logger
	if log == nil {
		log = slog.Default()
	}
	timeout := o.GroupDeleteTimeout
	if timeout <= 0 {
		timeout = DefaultGroupDeleteTimeout
	}
	return &tailSub{sub: sub, bus: b, group: group, timeout: timeout, log: log.With("component", "trigger")}, nil
}

// tailSub closes a tail's consumer, then deletes its group (closing first:
// a live consumer's heartbeat would re-create the group).
type tailSub struct {
	sub     bus.Subscription
	bus     bus.Bus
	group   string
	timeout time.Duration
	log     *slog.Logger
	once    sync.Once
	err     error
}

func (t *tailSub) Close() error {
	t.once.Do(func() {
		t.err = t.sub.Close()
		ctx, cancel := context.WithTimeout(context.Background(), t.timeout)
		defer cancel()
		if err := t.bus.DeleteGroup(ctx, t.group); err != nil && !errors.Is(err, bus.ErrUnsupported) {
			t.log.Warn("deleting the tail's consumer group failed; it stays on the broker", "group", t.group, "err", err)
		}
	})
	return t.err
}
