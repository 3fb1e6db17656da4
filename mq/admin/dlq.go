package admin

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/tide-run/tide/mq/message"
	"github.com/tide-run/tide/mq/mqmeta"
)

// Replays of dead letters are recorded as messages in ReplayTopic, one per re-sent dead letter, tagged with the
// group and keyed by the dead letter's offset message id (its commit-log position, never reused), so a second replay
// skips it. A dead letter that fails again lands in the DLQ as a new entry (new offset id) and can be replayed again.
// Order: the re-send happens first, then the record, so a crash in between can duplicate a message but never lose
// one (delivery is at least once anyway).
const (
	ReplayTopic     = "TIDE_DLQ_REPLAY"
	propReplayGroup = "TIDE_DLQ_GROUP"
	propReplayEntry = "TIDE_DLQ_ENTRY"
	// PropReplayOf marks a replayed message with the offset message id of the dead letter it came from.
	PropReplayOf = "TIDE_REPLAY_OF"
	// replayProducerGroup names the sender of replays and their records.
	replayProducerGroup = "tide-dlq-replay"
)

// DeadLetter is one entry of a group's dead-letter queue (%DLQ%<group>) and when it was replayed.
type DeadLetter struct {
	Message  *message.Message
	Replayed string // when, RFC 3339; "" if never
}

// ReadQueues reads every message of a topic's first queues queues, each from its min to its max offset, through
// raw pulls as group "tide-admin" (no offsets are committed); expr is a tag expression ("" or "*" for all).
func (c *Client) ReadQueues(ctx context.Context, topic string, queues int, expr string, each func(*message.Message)) error {
	for q := int32(0); int(q) < queues; q++ {
		off, err := c.MinOffset(ctx, topic, q)
		if err != nil {
			return fmt.Errorf("%s queue %d: %w", topic, q, err)
		}
		end, err := c.MaxOffset(ctx, topic, q)
		if err != nil {
			return fmt.Errorf("%s queue %d: %w", topic, q, err)
		}
		for off < end {
			msgs, next, err := c.PullExpr(ctx, "tide-admin", topic, q, off, 32, expr)
			if err != nil {
				return fmt.Errorf("reading %s queue %d at %d: %w", topic, q, off, err)
			}
			for _, m := range msgs {
				each(m)
			}
			if next <= off {
				break
			}
			off = next
		}
	}
	return nil
}

// DeadLetterQueue reads all of a group's dead-letter queue (every queue, unlike DeadLetters) and marks the entries
// ReplayTopic records as replayed. A group without a DLQ has none (nil, nil).
func (c *Client) DeadLetterQueue(ctx context.Context, group string) ([]DeadLetter, error) {
	topics, err := c.Topics(ctx)
	if err != nil {
		return nil, fmt.Errorf("listing topics: %w", err)
	}
	dlq, ok := topics[mqmeta.DLQPrefix+group]
	if !ok {
		return nil, nil
	}
	replayed := map[string]string{}
	if rt, ok := topics[ReplayTopic]; ok {
		expr := group // the broker filters records by tag; a group name with '|' would read as an expression
		if strings.Contains(group, "|") {
			expr = "*"
		}
		err := c.ReadQueues(ctx, ReplayTopic, max(rt.ReadQueueNums, rt.WriteQueueNums), expr, func(m *message.Message) {
			if message.Property(m.Properties, propReplayGroup) == group {
				replayed[message.Property(m.Properties, propReplayEntry)] = time.UnixMilli(m.StoreTimestamp).UTC().Format(time.RFC3339)
			}
		})
		if err != nil {
			return nil, err
		}
	}
	var out []DeadLetter
	err = c.ReadQueues(ctx, dlq.TopicName, max(dlq.ReadQueueNums, dlq.WriteQueueNums), "", func(m *message.Message) {
		out = append(out, DeadLetter{Message: m, Replayed: replayed[OffsetMsgID(m)]})
	})
	return out, err
}

// EnsureReplayTopic creates ReplayTopic (one queue) unless it exists.
func (c *Client) EnsureReplayTopic(ctx context.Context) error {
	topics, err := c.Topics(ctx)
	if err != nil {
		return fmt.Errorf("listing topics: %w", err)
	}
	if _, ok := topics[ReplayTopic]; ok {
		return nil
	}
	if err := c.CreateTopic(ctx, ReplayTopic, 1); err != nil {
		return fmt.Errorf("creating %s: %w", ReplayTopic, err)
	}
	return nil
}

// Replay re-sends a dead letter of group to the topic it came from, with its body, tag, keys, user properties and
// message id plus PropReplayOf, then records the replay in ReplayTopic (call EnsureReplayTopic first). It does not
// look at d.Replayed: skipping replayed entries is the caller's choice. now stamps the record.
func (c *Client) Replay(ctx context.Context, group string, d DeadLetter, now time.Time) (SendResult, error) {
	topic := OriginTopic(d.Message)
	if topic == "" {
		return SendResult{}, fmt.Errorf("no %s or %s property", message.PropDLQOriginTopic, message.PropRetryTopic)
	}
	props := UserProperties(d.Message)
	entry := OffsetMsgID(d.Message)
	props[PropReplayOf] = entry
	var keys []string
	if k := message.Property(d.Message.Properties, message.PropKeys); k != "" {
		keys = []string{k}
	}
	res, err := c.Send(ctx, SendRequest{Topic: topic, Body: d.Message.Body, Tag: message.Property(d.Message.Properties, message.PropTags),
		Keys: keys, Properties: props, QueueID: -1, ProducerGroup: replayProducerGroup, UniqKey: MsgID(d.Message)})
	if err != nil {
		return SendResult{}, fmt.Errorf("re-sending to %s: %w", topic, err)
	}
	rec, err := json.Marshal(map[string]any{"group": group, "dlqEntry": entry, "msgId": res.MsgID, "topic": topic,
		"offsetMsgId": res.OffsetMsgID, "replayedAt": now.UTC().Format(time.RFC3339)})
	if err != nil {
		return res, fmt.Errorf("encoding the replay record: %w", err)
	}
	if _, err := c.Send(ctx, SendRequest{Topic: ReplayTopic, Body: rec, Tag: group, Keys: []string{entry}, QueueID: 0,
		ProducerGroup: replayProducerGroup, Properties: map[string]string{propReplayGroup: group, propReplayEntry: entry}}); err != nil {
		return res, fmt.Errorf("re-sent to %s queue %d offset %d, but recording the replay failed (a later replay would "+
			"send it again): %w", topic, res.QueueID, res.QueueOffset, err)
	}
	return res, nil
}
