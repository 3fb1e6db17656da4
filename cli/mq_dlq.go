package cli

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/spf13/cobra"

	"github.com/tide-run/tide/mq/admin"
	"github.com/tide-run/tide/mq/message"
)

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
				dls, err := c.DeadLetterQueue(ctx, group)
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
						}{toJSONMessage(d.Message), admin.OriginTopic(d.Message), d.Replayed}); err != nil {
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
					m := d.Message
					fmt.Fprintf(tw, "%d\t%s\t%s\t%d\t%s\t%s\t%s\n", m.QueueOffset, msgID(m), dash(admin.OriginTopic(m)), m.ReconsumeTimes,
						msTime(m.StoreTimestamp), dash(d.Replayed), bodyPreview(m.Body, 40))
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
			"and message id, plus the property " + admin.PropReplayOf + ". Each replay is recorded in the topic " + admin.ReplayTopic + ", so\n" +
			"replaying again skips it; a message that fails again is dead-lettered anew and can be replayed again.\n" +
			"A long replay reports its count on stderr every 2 seconds.",
		Example: `  tide mq dlq replay --group audit
  tide mq dlq replay --group audit --msg-id 7F000001A1B2...
  tide mq dlq replay --group audit --dry-run`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if group == "" {
				return usageErr("--group: required")
			}
			return g.withAdmin(cmd, func(ctx context.Context, c *admin.Client) error {
				dls, err := c.DeadLetterQueue(ctx, group)
				if err != nil {
					return fmt.Errorf("dead letters of group %s: %w", group, err)
				}
				var pick []admin.DeadLetter
				for _, d := range dls {
					if id == "" || msgID(d.Message) == id || offsetMsgID(d.Message) == id {
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
					if err := c.EnsureReplayTopic(ctx); err != nil {
						return err
					}
				}
				tw := newTable(cmd.OutOrStdout())
				fmt.Fprintln(tw, "OFFSET\tMSGID\tTOPIC\tRESULT")
				failed := 0
				// The table is written at the end; a long replay reports its count on stderr meanwhile.
				prog := newProgress(cmd.ErrOrStderr(), "replayed", "dead letters", len(pick))
				for i, d := range pick {
					prog.at(i)
					res, err := replayOne(ctx, c, group, d, dryRun)
					if err != nil {
						failed++
						res = "failed: " + err.Error()
					}
					fmt.Fprintf(tw, "%d\t%s\t%s\t%s\n", d.Message.QueueOffset, msgID(d.Message), dash(admin.OriginTopic(d.Message)), res)
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

// replayOne replays a dead letter unless it was replayed already (or this is a dry run); it returns the RESULT column.
func replayOne(ctx context.Context, c *admin.Client, group string, d admin.DeadLetter, dryRun bool) (string, error) {
	if d.Replayed != "" {
		return "skipped: replayed at " + d.Replayed, nil
	}
	if admin.OriginTopic(d.Message) == "" {
		return "", fmt.Errorf("no %s or %s property", message.PropDLQOriginTopic, message.PropRetryTopic)
	}
	if dryRun {
		return "would replay", nil
	}
	res, err := c.Replay(ctx, group, d, time.Now())
	if err != nil {
		return "", err
	}
	return fmt.Sprintf("replayed to queue %d offset %d", res.QueueID, res.QueueOffset), nil
}
