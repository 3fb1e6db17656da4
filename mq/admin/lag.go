package admin

import (
	"context"
	"fmt"
	"slices"

	"github.com/tide-run/tide/mq/mqmeta"
)

// GroupLag is a consumer group's position: its connected consumers and, per topic and queue, the broker's offset,
// the group's committed offset (-1 where it never committed one) and the lag.
type GroupLag struct {
	Group     string
	Consumers []string           // client ids, never nil
	Queues    []mqmeta.QueueStat // never nil
	Topics    []string           // the topics of Queues, in their first order, never nil
	TotalLag  int64
}

// GroupLag reads a group's offsets on every topic it has offsets on, its lag and its connected consumers.
func (c *Client) GroupLag(ctx context.Context, group string) (GroupLag, error) {
	l := GroupLag{Group: group, Consumers: []string{}, Queues: []mqmeta.QueueStat{}, Topics: []string{}}
	stats, err := c.ConsumeStats(ctx, group, "")
	if err != nil {
		return l, fmt.Errorf("offsets of group %s: %w", group, err)
	}
	ids, err := c.ConsumerIDs(ctx, group)
	if err != nil {
		return l, fmt.Errorf("consumers of group %s: %w", group, err)
	}
	if ids != nil {
		l.Consumers = ids
	}
	for _, s := range stats {
		l.Queues = append(l.Queues, s)
		l.TotalLag += s.Lag
		if !slices.Contains(l.Topics, s.Topic) {
			l.Topics = append(l.Topics, s.Topic)
		}
	}
	return l, nil
}
