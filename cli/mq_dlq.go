package cli

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/tide-run/tide/mq/admin"
	"github.com/tide-run/tide/mq/message"
	"github.com/tide-run/tide/mq/mqmeta"
)

// Replays are recorded as messages in replayTopic, one per re-sent dead letter, tagged with the group and keyed by
// the dead letter's offset message id (its commit-log position, never reused), so a second replay skips it. A
// dead letter that fails again lands in the DLQ as a new entry (new offset id) and can be replayed again.
// Order: the re-send happens first, then the record, so a crash in between can duplicate a message but never
// lose one (delivery is at least once anyway).
const (
	replayTopic     = "TIDE_DLQ_REPLAY"
	propReplayGroup = "TIDE_DLQ_GROUP"
	propReplayEntry = "TIDE_DLQ_ENTRY"
	// propReplayOf marks a replayed message with the dead letter it came from.
	propReplayOf = "TIDE_REPLAY_OF"
)

// deadLetter is one DLQ entry and whether it was replayed.
type deadLetter struct {
	m        *message.Message
	replayed string // when, RFC 3339; "" if never
}

func originTopic(m *message.Message) string {
	if t := message.Property(m.Properties, message.PropDLQOriginTopic); t != "" {
		return t
	}
	return message.Property(m.Properties, message.PropRetryTopic)
}

// readQueueAll reads every message of a topic's queues from their min to their max offset.
func readQueueAll(ctx context.Context, c *admin.Client, topic string, queues int, expr string, each func(*message.Message)) error {
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

// loadDeadLetters reads a group's DLQ and the replay records.
func loadDeadLetters(ctx context.Context, c *admin.Client, group string) ([]deadLetter, error) {
	topics, err := c.Topics(ctx)
	if err != nil {
		return nil, fmt.Errorf("listing topics: %w", err)
	}
	dlq, ok := topics[mqmeta.DLQPrefix+group]
	if !ok {
		return nil, nil
	}
	replayed := map[string]string{}
	if rt, ok := topics[replayTopic]; ok {
		expr := group // the broker filters records by tag; a group name with '|' would read as an expression
		if strings.Contains(group, "|") {
			expr = "*"
		}
		err := readQueueAll(ctx, c, replayTopic, max(rt.ReadQueueNums, rt.WriteQueueNums), expr, func(m *message.Message) {
			if message.Property(m.Properties, propReplayGroup) == group {
				replayed[message.Property(m.Properties, propReplayEntry)] = msTime(m.StoreTimestamp)
			}
		})
		if err != nil {
			return nil, err
		}
	}
	var out []deadLetter
	err = readQueueAll(ctx, c, dlq.TopicName, max(dlq.ReadQueueNums, dlq.WriteQueueNums), "", func(m *message.Message) {
		out = append(out, deadLetter{m: m, replayed: replayed[offsetMsgID(m)]})
	})
	return out, err
}

func newMQDLQCommand(g *mqGlobals) *cobra.Command {
	var group, output string
	cmd := &cobra.Command{
		Use:   "dlq --group G",
		Short: "List a group's dead letters (%DLQ%<group>); `dlq replay` re-sends them",
		Long: "List the messages that consumer group G gave up on after its maximum reconsume times, with the topic\n" +
			"they came from and whether they were already replayed.",
		Example: `  tide mq dlq --group audit
  tide mq dlq --group audit -o json
  tide mq dlq replay --group audit`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if group == "" {
				return usageErr("--group: required")
			}
			if err := checkOutput(output); err != nil {
				return err
			}
			return g.withAdmin(cmd, func(ctx context.Context, c *admin.Client) error {
				dls, err := loadDeadLetters(ctx, c, group)
				if err != nil {
					return fmt.Errorf("dead letters of group %s: %w", group, err)
				}
				out := cmd.OutOrStdout()
				if output == "json" {
					enc := json.NewEncoder(out)
					for _, d := range dls {
						if err := enc.Encode(struct {
							jsonMessage
							OriginTopic string `json:"originTopic"`
							Replayed    string `json:"replayed,omitempty"`
						}{toJSONMessage(d.m), originTopic(d.m), d.replayed}); err != nil {
							return err
						}
					}
					return nil
				}
				if len(dls) == 0 {
					_, err := fmt.Fprintf(cmd.ErrOrStderr(), "No dead letters for group %s.\n", group)
					return err
				}
				tw := newTable(out)
				fmt.Fprintln(tw, "OFFSET\tMSGID\tORIGIN TOPIC\tRECONSUMES\tSTORED\tREPLAYED\tBODY")
				for _, d := range dls {
					fmt.Fprintf(tw, "%d\t%s\t%s\t%d\t%s\t%s\t%s\n", d.m.QueueOffset, msgID(d.m), dash(originTopic(d.m)), d.m.ReconsumeTimes,
						msTime(d.m.StoreTimestamp), dash(d.replayed), bodyPreview(d.m.Body, 40))
				}
				return tw.Flush()
			})
		},
	}
	cmd.Flags().StringVarP(&group, "group", "g", "", "consumer group (required)")
	cmd.Flags().StringVarP(&output, "output", "o", "table", "output format: table or json (one object per line)")
	cmd.AddCommand(newMQDLQReplayCommand(g))
	return cmd
}

func newMQDLQReplayCommand(g *mqGlobals) *cobra.Command {
	var group, id string
	var dryRun bool
	cmd := &cobra.Command{
		Use:   "replay --group G [--msg-id ID]",
		Short: "Re-send dead letters to the topic they came from",
		Long: "Re-send group G's dead letters (all not yet replayed, or the one(s) with --msg-id, matched against the\n" +
			"message id or the offset message id) to their original topic, with their body, tag, keys, user properties\n" +
			"and message id, plus the property " + propReplayOf + ". Each replay is recorded in the topic " + replayTopic + ", so\n" +
			"replaying again skips it; a message that fails again is dead-lettered anew and can be replayed again.",
		Example: `  tide mq dlq replay --group audit
  tide mq dlq replay --group audit --msg-id 7F000001A1B2...
  tide mq dlq replay --group audit --dry-run`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if group == "" {
				return usageErr("--group: required")
			}
			return g.withAdmin(cmd, func(ctx context.Context, c *admin.Client) error {
				dls, err := loadDeadLetters(ctx, c, group)
				if err != nil {
					return fmt.Errorf("dead letters of group %s: %w", group, err)
				}
				var pick []deadLetter
				for _, d := range dls {
					if id == "" || msgID(d.m) == id || offsetMsgID(d.m) == id {
						pick = append(pick, d)
					}
				}
				if id != "" && len(pick) == 0 {
					return fmt.Errorf("no dead letter of group %s has message id %s (see `tide mq dlq --group %s`)", group, id, group)
				}
				if len(pick) == 0 {
					_, err := fmt.Fprintf(cmd.ErrOrStderr(), "No dead letters for group %s.\n", group)
					return err
				}
				if !dryRun {
					if err := ensureReplayTopic(ctx, c); err != nil {
						return err
					}
				}
				tw := newTable(cmd.OutOrStdout())
				fmt.Fprintln(tw, "OFFSET\tMSGID\tTOPIC\tRESULT")
				failed := 0
				for _, d := range pick {
					res, err := replayOne(ctx, c, group, d, dryRun)
					if err != nil {
						failed++
						res = "failed: " + err.Error()
					}
					fmt.Fprintf(tw, "%d\t%s\t%s\t%s\n", d.m.QueueOffset, msgID(d.m), dash(originTopic(d.m)), res)
				}
				if err := tw.Flush(); err != nil {
					return err
				}
				if failed > 0 {
					return fmt.Errorf("%d of %d replays failed", failed, len(pick))
				}
				return nil
			})
		},
	}
	cmd.Flags().StringVarP(&group, "group", "g", "", "consumer group (required)")
	cmd.Flags().StringVar(&id, "msg-id", "", "replay only the dead letter(s) with this message id or offset message id")
	cmd.Flags().BoolVar(&dryRun, "dry-run", false, "show what would be replayed, send nothing")
	return cmd
}

func ensureReplayTopic(ctx context.Context, c *admin.Client) error {
	topics, err := c.Topics(ctx)
	if err != nil {
		return fmt.Errorf("listing topics: %w", err)
	}
	if _, ok := topics[replayTopic]; ok {
		return nil
	}
	if err := c.CreateTopic(ctx, replayTopic, 1); err != nil {
		return fmt.Errorf("creating %s: %w", replayTopic, err)
	}
	return nil
}

// replayOne re-sends a dead letter and records it; it returns the RESULT column.
func replayOne(ctx context.Context, c *admin.Client, group string, d deadLetter, dryRun bool) (string, error) {
	if d.replayed != "" {
		return "skipped: replayed at " + d.replayed, nil
	}
	topic := originTopic(d.m)
	if topic == "" {
		return "", fmt.Errorf("no %s or %s property", message.PropDLQOriginTopic, message.PropRetryTopic)
	}
	if dryRun {
		return "would replay", nil
	}
	props := userProperties(d.m)
	entry := offsetMsgID(d.m)
	props[propReplayOf] = entry
	var keys []string
	if k := message.Property(d.m.Properties, message.PropKeys); k != "" {
		keys = []string{k}
	}
	res, err := c.Send(ctx, admin.SendRequest{Topic: topic, Body: d.m.Body, Tag: message.Property(d.m.Properties, message.PropTags),
		Keys: keys, Properties: props, QueueID: -1, ProducerGroup: "tide-dlq-replay", UniqKey: msgID(d.m)})
	if err != nil {
		return "", fmt.Errorf("re-sending to %s: %w", topic, err)
	}
	rec, _ := json.Marshal(map[string]any{"group": group, "dlqEntry": entry, "msgId": res.MsgID, "topic": topic,
		"offsetMsgId": res.OffsetMsgID, "replayedAt": time.Now().UTC().Format(time.RFC3339)})
	if _, err := c.Send(ctx, admin.SendRequest{Topic: replayTopic, Body: rec, Tag: group, Keys: []string{entry}, QueueID: 0,
		ProducerGroup: "tide-dlq-replay", Properties: map[string]string{propReplayGroup: group, propReplayEntry: entry}}); err != nil {
		return "", fmt.Errorf("re-sent to %s queue %d offset %d, but recording the replay failed (a later replay would "+
			"send it again): %w", topic, res.QueueID, res.QueueOffset, err)
	}
	return fmt.Sprintf("replayed to queue %d offset %d", res.QueueID, res.QueueOffset), nil
}
