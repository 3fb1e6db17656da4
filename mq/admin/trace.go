package admin

import (
	"context"
	"errors"
	"slices"
	"strings"
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
	recs, skipped, err := c.traceRecords(ctx, traceTopic, key, begin, end)
	if err != nil {
		return nil, err
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
	seen := map[string]bool{}
	for _, mt := range out {
		seen[mt.MsgID] = true
	}
	add := func(ids []string, recs []msgtrace.Record, skipped int) {
		for _, id := range ids {
			if seen[id] {
				continue
			}
			seen[id] = true
			mt := MessageTrace{Timeline: msgtrace.Build(id, recs), Skipped: skipped}
			mt.Stored = c.storedMessage(ctx, id, mt.Published, viewed, begin, end)
			out = append(out, mt)
		}
	}
	add(ids, recs, skipped)
	// Follow the CloudEvents tide's consumers say the messages became (a RocketMQSource's records name the event;
	// the Triggers' records of the Broker-topic message that carries it are keyed by the event's id), so a trace by
	// an order's key shows the order message and then its event's deliveries. Bounded: at most 16 events.
	followed := map[string]bool{key: true}
	for i := 0; i < len(out) && len(followed) <= 16; i++ {
		for _, ev := range out[i].Events() {
			if followed[ev] || len(followed) > 16 {
				continue
			}
			followed[ev] = true
			erecs, eskipped, err := c.traceRecords(ctx, traceTopic, ev, begin, end)
			if err != nil {
				return nil, err
			}
			add(msgtrace.MsgIDs(erecs, ev), erecs, eskipped)
		}
	}
	return out, nil
}

// traceRecords reads the trace records stored under key on traceTopic.
func (c *Client) traceRecords(ctx context.Context, traceTopic, key string, begin, end time.Time) ([]msgtrace.Record, int, error) {
	traceMsgs, err := c.QueryByKey(ctx, traceTopic, key, mqmeta.QueryMaxNum, begin, end)
	if err != nil && !errors.Is(err, ErrResponse) {
		return nil, 0, err
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
	return recs, skipped, nil
}

// TraceID is the OpenTelemetry trace a stored message names in its context properties: OpenTelemetry's
// "traceparent" user property, else RocketMQ 5's TRACE_CONTEXT, else a CloudEvent's CE_traceparent ("" if none).
func TraceID(m *message.Message) string {
	if m == nil {
		return ""
	}
	for _, p := range []string{"traceparent", "TRACE_CONTEXT", "CE_traceparent"} {
		if id := traceIDOf(message.Property(m.Properties, p)); id != "" {
			return id
		}
	}
	return ""
}

// traceIDOf returns the trace id of a W3C traceparent value.
func traceIDOf(tp string) string {
	if len(tp) < 55 || tp[2] != '-' || tp[35] != '-' {
		return ""
	}
	id := tp[3:35]
	for i := 0; i < len(id); i++ {
		if ch := id[i]; !(ch >= '0' && ch <= '9' || ch >= 'a' && ch <= 'f') {
			return ""
		}
	}
	if strings.Trim(id, "0") == "" {
		return ""
	}
	return id
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
