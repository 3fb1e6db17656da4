package admin

import (
	"context"
	"errors"
	"slices"
	"time"

	"github.com/tide-run/tide/mq/message"
	"github.com/tide-run/tide/mq/mqmeta"
	"github.com/tide-run/tide/mq/msgtrace"
)

// MessageTrace is one message's life: its trace timeline and, when the broker still has it, the stored message.
type MessageTrace struct {
	msgtrace.Timeline
	// Stored is the message as the broker keeps it (queue, offset, store time, properties, body); nil once
	// retention removed it or when it lives on another broker.
	Stored *message.Message
	// Skipped counts trace records about it that did not parse.
	Skipped int
}

// Trace reads the message-trace records the official clients wrote to traceTopic ("" means RMQ_SYS_TRACE_TOPIC)
// about key — a message id (UNIQ_KEY), an offset message id, or one of a message's KEYS — and builds each matching
// message's timeline. Trace messages carry the traced message's id and keys as their own KEYS, so this is one
// QUERY_MESSAGE on the trace topic (the newest 64 trace messages, each holding up to ~100 records). A key that
// names messages without trace records still finds them (Stored set, no records): tracing was off for them.
func (c *Client) Trace(ctx context.Context, key, traceTopic string, begin, end time.Time) ([]MessageTrace, error) {
	if traceTopic == "" {
		traceTopic = mqmeta.TraceTopic
	}
	var viewed *message.Message
	if m, err := c.ViewMessage(ctx, key); err == nil {
		viewed, key = m, MsgID(m) // trace records name the producer's id, not the broker's
	}
	traceMsgs, err := c.QueryByKey(ctx, traceTopic, key, mqmeta.QueryMaxNum, begin, end)
	if err != nil && !errors.Is(err, ErrResponse) {
		return nil, err
	}
	var recs []msgtrace.Record
	skipped := 0
	for _, m := range traceMsgs {
		body, err := Body(m) // batches over 4 KiB are compressed by the clients
		if err != nil {
			skipped++
			continue
		}
		r, s := msgtrace.Parse(body)
		recs = append(recs, r...)
		skipped += s
	}
	ids := msgtrace.MsgIDs(recs, key)
	var out []MessageTrace
	if !slices.Contains(ids, key) {
		// The key names a message none of the records are about (its producer did not trace), e.g. an event's
		// source message whose Broker-topic copy the Triggers traced under its id: show it first, untraced.
		if viewed != nil && MsgID(viewed) == key {
			out = append(out, MessageTrace{Timeline: msgtrace.Timeline{MsgID: key}, Stored: viewed})
		} else if found, _ := c.FindByID(ctx, key, "", begin, end); len(found) > 0 {
			out = append(out, MessageTrace{Timeline: msgtrace.Timeline{MsgID: key}, Stored: found[0]})
		}
	}
	for _, id := range ids {
		mt := MessageTrace{Timeline: msgtrace.Build(id, recs), Skipped: skipped}
		mt.Stored = c.storedMessage(ctx, id, mt.Published, viewed, begin, end)
		out = append(out, mt)
	}
	return out, nil
}

// storedMessage finds the stored copy of message id: by the offset message id its Pub record names, else by its
// id in the Pub record's topic.
func (c *Client) storedMessage(ctx context.Context, id string, pubs []msgtrace.Record, viewed *message.Message, begin, end time.Time) *message.Message {
	if viewed != nil && MsgID(viewed) == id {
		return viewed
	}
	for _, p := range pubs {
		if p.OffsetMsgID != "" {
			if m, err := c.ViewMessage(ctx, p.OffsetMsgID); err == nil && MsgID(m) == id {
				return m
			}
		}
	}
	for _, p := range pubs {
		if mqmeta.ValidateTopic(p.Topic) == nil {
			if ms, err := c.QueryByUniqKey(ctx, p.Topic, id, time.Time{}, time.Time{}); err == nil && len(ms) > 0 {
				return ms[0] // the first stored (a re-send or a retry keeps the id)
			}
		}
	}
	if len(pubs) == 0 {
		// Only consumers traced it (e.g. tide's Triggers): look for the id in every topic, user topics first, so
		// the original is found before its %RETRY% copies.
		if ms, err := c.FindByID(ctx, id, "", time.Time{}, time.Time{}); err == nil && len(ms) > 0 {
			return ms[0]
		}
	}
	return nil
}
