package admin

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"time"

	"github.com/tide-run/tide/mq/message"
	"github.com/tide-run/tide/mq/mqmeta"
)

// PollInterval is how long GroupReader.Run waits between passes over empty queues. It is a polling period, not a
// wait for an event: the idle timeout decides when to stop.
const PollInterval = 100 * time.Millisecond

// GroupReader reads one topic's queues as a consumer group with raw pulls, the way `tide mq consume` does: from the
// group's committed offsets (or the first or last message where it has none), handing each batch to a callback, and
// committing the offsets after the last handled message per queue. Offsets[q] only moves past a message once the
// callback returned for it (or the filter skipped it), so committing never loses one. Not safe for concurrent use.
type GroupReader struct {
	Client *Client
	Group  string
	Topic  string
	// Expr is the tag expression the broker filters by ("*" or "" for all); Filter checks tags again here.
	Expr   string
	Filter TagFilter
	// RequestTimeout bounds each request (0: only the caller's context does).
	RequestTimeout time.Duration

	queues  []int32
	offsets map[int32]int64
}

func (r *GroupReader) reqCtx(ctx context.Context) (context.Context, context.CancelFunc) {
	if r.RequestTimeout <= 0 {
		return context.WithCancel(ctx)
	}
	return context.WithTimeout(ctx, r.RequestTimeout)
}

// Init finds the topic's queues and where to start on each: the group's committed offset, else the first message
// (fromFirst) or past the last one. A group the broker does not know is created with the broker's defaults, so
// listings show it.
func (r *GroupReader) Init(ctx context.Context, fromFirst bool) error {
	rctx, cancel := r.reqCtx(ctx)
	defer cancel()
	c := r.Client
	topics, err := c.Topics(rctx)
	if err != nil {
		return fmt.Errorf("listing topics: %w", err)
	}
	t, ok := topics[r.Topic]
	if !ok {
		return fmt.Errorf("topic %q not found (create it with `tide mq topic create %s`)", r.Topic, r.Topic)
	}
	groups, err := c.Groups(rctx)
	if err != nil {
		return fmt.Errorf("listing groups: %w", err)
	}
	if _, ok := groups[r.Group]; !ok {
		if err := c.CreateGroup(rctx, mqmeta.GroupConfig{GroupName: r.Group, ConsumeEnable: true, ConsumeBroadcastEnable: true,
			RetryQueueNums: 1, RetryMaxTimes: 16}); err != nil {
			return fmt.Errorf("creating group %s: %w", r.Group, err)
		}
	}
	stats, err := c.ConsumeStats(rctx, r.Group, r.Topic)
	if err != nil {
		return fmt.Errorf("offsets of group %s: %w", r.Group, err)
	}
	stored := map[int32]int64{}
	for _, st := range stats {
		if st.ConsumerOffset >= 0 {
			stored[st.QueueID] = st.ConsumerOffset
		}
	}
	r.queues, r.offsets = nil, map[int32]int64{}
	for q := int32(0); int(q) < t.ReadQueueNums; q++ {
		r.queues = append(r.queues, q)
		if off, ok := stored[q]; ok {
			r.offsets[q] = off
			continue
		}
		var off int64
		if fromFirst {
			off, err = c.MinOffset(rctx, r.Topic, q)
		} else {
			off, err = c.MaxOffset(rctx, r.Topic, q)
		}
		if err != nil {
			return fmt.Errorf("queue %d of %s: %w", q, r.Topic, err)
		}
		r.offsets[q] = off
	}
	return nil
}

// Run pulls round robin over the queues and hands matching messages to handle, until maxMsgs messages (0: no limit)
// were handled, nothing arrived for idle, or ctx ends (not an error: that is how a user stops a follow). It returns
// how many messages were handled.
func (r *GroupReader) Run(ctx context.Context, maxMsgs int, idle time.Duration, handle func([]*message.Message) error) (int, error) {
	n := 0
	last := time.Now()
	for {
		got := false
		for _, q := range r.queues {
			want := 32
			if maxMsgs > 0 {
				want = min(want, maxMsgs-n)
			}
			rctx, cancel := r.reqCtx(ctx)
			msgs, next, err := r.Client.PullExpr(rctx, r.Group, r.Topic, q, r.offsets[q], want, r.Expr)
			cancel()
			if err != nil {
				if ctx.Err() != nil {
					return n, nil
				}
				return n, fmt.Errorf("pulling %s queue %d at offset %d: %w", r.Topic, q, r.offsets[q], err)
			}
			var show []*message.Message
			for _, m := range msgs {
				if r.Filter.Match(m) {
					show = append(show, m)
				}
			}
			if len(show) > 0 {
				if err := handle(show); err != nil {
					return n, err
				}
				n += len(show)
				got = true
			}
			// next is past every message of this answer (or past filtered ones); all of them were handled.
			if next > r.offsets[q] {
				r.offsets[q] = next
			}
			if maxMsgs > 0 && n >= maxMsgs {
				return n, nil
			}
		}
		if got {
			last = time.Now()
			continue
		}
		if time.Since(last) >= idle {
			return n, nil
		}
		select {
		case <-ctx.Done():
			return n, nil
		case <-time.After(PollInterval):
		}
	}
}

// Commit writes the group's offsets: past the last handled message on every queue.
func (r *GroupReader) Commit(ctx context.Context) error {
	for _, q := range slices.Sorted(maps.Keys(r.offsets)) {
		if err := r.Client.UpdateOffset(ctx, r.Group, r.Topic, q, r.offsets[q]); err != nil {
			return fmt.Errorf("queue %d: %w", q, err)
		}
	}
	return nil
}
