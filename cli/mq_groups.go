package cli

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/tide-run/tide/mq/admin"
	"github.com/tide-run/tide/mq/mqmeta"
)

// groupDetail is `tide mq groups GROUP -o json`.
type groupDetail struct {
	Group     string             `json:"group"`
	Consumers []string           `json:"consumers"`
	Queues    []mqmeta.QueueStat `json:"queues"`
	TotalLag  int64              `json:"totalLag"`
}

// groupRow is one line of `tide mq groups`.
type groupRow struct {
	Group     string   `json:"group"`
	Consumers int      `json:"consumers"`
	Topics    []string `json:"topics"`
	Lag       int64    `json:"lag"`
}

func newMQGroupsCommand(g *mqGlobals) *cobra.Command {
	var output string
	cmd := &cobra.Command{
		Use:   "groups [GROUP]",
		Short: "List consumer groups with their lag, or one group's offsets and lag per queue",
		Long: "Without GROUP: every subscription group with its connected consumers, topics and total lag.\n" +
			"With GROUP: per topic and queue the broker's offset, the group's committed offset and the lag.\n" +
			"A CONSUMER OFFSET of - means the group never committed one there (lag counts the whole queue).",
		Example: "  tide mq groups\n  tide mq groups audit\n  tide mq groups audit -o json\n  tide mq groups delete audit",
		Args: func(cmd *cobra.Command, args []string) error {
			if len(args) > 1 {
				return usageErr("%s: want at most one GROUP, got %d arguments", cmd.CommandPath(), len(args))
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := checkOutput(output); err != nil {
				return err
			}
			return g.withAdmin(cmd, func(ctx context.Context, c *admin.Client) error {
				groups, err := c.Groups(ctx)
				if err != nil {
					return fmt.Errorf("listing groups: %w", err)
				}
				out := cmd.OutOrStdout()
				tw := newTable(out)
				if len(args) == 1 {
					l, err := c.GroupLag(ctx, args[0])
					if err != nil {
						return err
					}
					if _, ok := groups[l.Group]; !ok && len(l.Queues) == 0 {
						return fmt.Errorf("group %q not found", l.Group)
					}
					d := groupDetail{Group: l.Group, Consumers: l.Consumers, Queues: l.Queues, TotalLag: l.TotalLag}
					if output == "json" {
						return writeJSON(out, d)
					}
					fmt.Fprintf(out, "Group: %s\nConsumers: %d\n", d.Group, len(d.Consumers))
					for _, id := range d.Consumers {
						fmt.Fprintf(out, "  %s\n", id)
					}
					fmt.Fprintln(tw, "TOPIC\tQUEUE\tBROKER OFFSET\tCONSUMER OFFSET\tLAG")
					for _, s := range d.Queues {
						co := "-"
						if s.ConsumerOffset >= 0 {
							co = strconv.FormatInt(s.ConsumerOffset, 10)
						}
						fmt.Fprintf(tw, "%s\t%d\t%d\t%s\t%d\n", s.Topic, s.QueueID, s.BrokerOffset, co, s.Lag)
					}
					if err := tw.Flush(); err != nil {
						return err
					}
					_, err = fmt.Fprintf(out, "Total lag: %d\n", d.TotalLag)
					return err
				}
				rows := []groupRow{}
				for _, n := range slices.Sorted(maps.Keys(groups)) {
					l, err := c.GroupLag(ctx, n)
					if err != nil {
						return err
					}
					rows = append(rows, groupRow{Group: n, Consumers: len(l.Consumers), Topics: l.Topics, Lag: l.TotalLag})
				}
				if output == "json" {
					return writeJSON(out, rows)
				}
				fmt.Fprintln(tw, "GROUP\tCONSUMERS\tTOPICS\tLAG")
				for _, r := range rows {
					fmt.Fprintf(tw, "%s\t%d\t%s\t%d\n", r.Group, r.Consumers, dash(strings.Join(r.Topics, ",")), r.Lag)
				}
				return tw.Flush()
			})
		},
	}
	cmd.Flags().StringVarP(&output, "output", "o", "table", "output format: table or json")
	cmd.AddCommand(newMQGroupsDeleteCommand(g))
	return cmd
}

// maxGroupLength is RocketMQ's limit on group names (Java's Validators.CHARACTER_MAX_LENGTH).
const maxGroupLength = 255

// validateGroup checks a consumer group name as RocketMQ's clients do (Validators.checkGroup: letters, digits,
// %|-_, at most 255 characters), and refuses the names of a group's retry and dead-letter topics, which are topics.
func validateGroup(name string) error {
	if name == "" {
		return fmt.Errorf("group: empty")
	}
	if len(name) > maxGroupLength {
		return fmt.Errorf("group %q: longer than %d characters", name, maxGroupLength)
	}
	for _, c := range name {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '%' || c == '|' || c == '-' || c == '_') {
			return fmt.Errorf("group %q: character %q not allowed (want letters, digits, %%|-_)", name, c)
		}
	}
	for _, p := range []string{mqmeta.RetryPrefix, mqmeta.DLQPrefix} {
		if rest, ok := strings.CutPrefix(name, p); ok {
			return fmt.Errorf("group %q: that is the name of a topic of group %q, not a group (delete the group %s)", name, rest, rest)
		}
	}
	return nil
}

// newMQGroupsDeleteCommand is `tide mq groups delete GROUP`, mqadmin deleteSubGroup's counterpart.
func newMQGroupsDeleteCommand(g *mqGlobals) *cobra.Command {
	return &cobra.Command{
		Use:   "delete GROUP",
		Short: "Delete a consumer group: its subscription, committed offsets and retry topic",
		Long: "Delete consumer group GROUP as `mqadmin deleteSubGroup` does: its subscription config and committed\n" +
			"offsets on every master broker the name server lists (DELETE_SUBSCRIPTIONGROUP with cleanOffset), then\n" +
			"its retry topic %RETRY%GROUP. Its dead letters (%DLQ%GROUP) are kept; `tide mq dlq --group GROUP`\n" +
			"lists them. Stop the group's consumers first: a running consumer's heartbeat creates the group again.",
		Example: "  tide mq groups delete audit\n  tide mq groups delete tide-tail-m3x1k2 --namesrv 127.0.0.1:9876",
		Args:    exactArgs(1, "GROUP"),
		RunE: func(cmd *cobra.Command, args []string) error {
			group := args[0]
			if err := validateGroup(group); err != nil {
				return usageErr("%w", err)
			}
			addr, err := g.addr()
			if err != nil {
				return err
			}
			var consumers []string
			var dlq bool
			if err := g.withAdmin(cmd, func(ctx context.Context, c *admin.Client) error {
				groups, err := c.Groups(ctx)
				if err != nil {
					return fmt.Errorf("listing groups: %w", err)
				}
				if _, ok := groups[group]; !ok {
					// A group can be known only by its committed offsets (its config deleted, offsets not).
					stats, err := c.ConsumeStats(ctx, group, "")
					if err != nil {
						return fmt.Errorf("offsets of group %s: %w", group, err)
					}
					if len(stats) == 0 {
						return fmt.Errorf("group %q not found", group)
					}
				}
				if consumers, err = c.ConsumerIDs(ctx, group); err != nil {
					return fmt.Errorf("consumers of group %s: %w", group, err)
				}
				topics, err := c.Topics(ctx)
				if err != nil {
					return fmt.Errorf("listing topics: %w", err)
				}
				_, dlq = topics[mqmeta.DLQPrefix+group]
				return nil
			}); err != nil {
				return err
			}
			ctx, cancel := g.ctx(cmd.Context())
			defer cancel()
			masters, err := admin.MasterBrokers(ctx, []string{addr})
			if err != nil {
				return fmt.Errorf("deleting group %s: %w", group, err)
			}
			if err := admin.DeleteGroup(ctx, []string{addr}, group); err != nil {
				return aclHint(fmt.Errorf("deleting group %s: %w", group, err))
			}
			out := cmd.OutOrStdout()
			fmt.Fprintf(out, "group/%s deleted: subscription and offsets on %s; retry topic %s%s\n", group,
				strings.Join(masters, ", "), mqmeta.RetryPrefix, group)
			if dlq {
				fmt.Fprintf(out, "dead letters kept in %s%s (tide mq dlq --group %s)\n", mqmeta.DLQPrefix, group, group)
			}
			if len(consumers) > 0 {
				fmt.Fprintf(cmd.ErrOrStderr(), "warning: %d consumer(s) of %s are connected (%s); their next heartbeat "+
					"creates the group again\n", len(consumers), group, strings.Join(consumers, ", "))
			}
			return nil
		},
	}
}

// parseResetTarget reads --to: first, last or an RFC 3339 time.
func parseResetTarget(to string) (int64, error) {
	switch to {
	case "first", "earliest":
		return admin.ResetToFirst, nil
	case "last", "latest":
		return admin.ResetToLast, nil
	}
	t, err := time.Parse(time.RFC3339, to)
	if err != nil {
		return 0, fmt.Errorf("--to %q: want first, last or an RFC 3339 time like 2026-11-21T15:04:05Z", to)
	}
	if t.UnixMilli() <= 0 {
		return 0, fmt.Errorf("--to %q: want a time after 1970", to)
	}
	return t.UnixMilli(), nil
}

func newMQResetOffsetCommand(g *mqGlobals) *cobra.Command {
	var group, topic, to string
	cmd := &cobra.Command{
		Use:   "reset-offset --group G --topic T --to first|last|TIME",
		Short: "Move a group's offsets on a topic to the first or last message, or to a point in time",
		Long: "Set group G's committed offsets on topic T, per queue, to the first message, past the last one, or to\n" +
			"the first message stored at or after an RFC 3339 time (backtracking). Running consumers of the group\n" +
			"are told to switch; they pause about 10 s (client behaviour) and resume from the new offsets.",
		Example: `  tide mq reset-offset --group audit --topic orders --to first
  tide mq reset-offset --group audit --topic orders --to 2026-11-21T15:00:00Z`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if group == "" || topic == "" || to == "" {
				return usageErr("--group, --topic and --to are required")
			}
			if err := mqmeta.ValidateTopic(topic); err != nil {
				return usageErr("--topic: %w", err)
			}
			ts, err := parseResetTarget(to)
			if err != nil {
				return &exitError{code: 2, err: err}
			}
			return g.withAdmin(cmd, func(ctx context.Context, c *admin.Client) error {
				if err := requireTopic(ctx, c, topic); err != nil {
					return err
				}
				stats, err := c.ResetOffset(ctx, group, topic, ts)
				if err != nil {
					return fmt.Errorf("resetting group %s on %s: %w", group, topic, err)
				}
				tw := newTable(cmd.OutOrStdout())
				fmt.Fprintln(tw, "TOPIC\tQUEUE\tBROKER OFFSET\tNEW OFFSET\tLAG")
				for _, s := range stats {
					fmt.Fprintf(tw, "%s\t%d\t%d\t%d\t%d\n", s.Topic, s.QueueID, s.BrokerOffset, s.ConsumerOffset, s.BrokerOffset-s.ConsumerOffset)
				}
				return tw.Flush()
			})
		},
	}
	f := cmd.Flags()
	f.StringVarP(&group, "group", "g", "", "consumer group (required)")
	f.StringVar(&topic, "topic", "", "topic (required)")
	f.StringVar(&to, "to", "", "first, last, or an RFC 3339 time (required)")
	return cmd
}
