package cli

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/tide-run/tide/mq/admin"
	"github.com/tide-run/tide/mq/broker"
)

func newMQGroupsCommand(g *mqGlobals) *cobra.Command {
	return &cobra.Command{
		Use:   "groups [GROUP]",
		Short: "List consumer groups with their lag, or one group's offsets and lag per queue",
		Long: "Without GROUP: every subscription group with its connected consumers, topics and total lag.\n" +
			"With GROUP: per topic and queue the broker's offset, the group's committed offset and the lag.\n" +
			"A CONSUMER OFFSET of - means the group never committed one there (lag counts the whole queue).",
		Example: "  tide mq groups\n  tide mq groups audit",
		Args: func(cmd *cobra.Command, args []string) error {
			if len(args) > 1 {
				return usageErr("%s: want at most one GROUP, got %d arguments", cmd.CommandPath(), len(args))
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := g.dial(cmd.Context())
			if err != nil {
				return err
			}
			defer c.Close()
			ctx, cancel := g.ctx(cmd.Context())
			defer cancel()
			groups, err := c.Groups(ctx)
			if err != nil {
				return fmt.Errorf("listing groups: %w", err)
			}
			tw := newTable(cmd.OutOrStdout())
			if len(args) == 1 {
				name := args[0]
				stats, err := c.ConsumeStats(ctx, name, "")
				if err != nil {
					return fmt.Errorf("offsets of group %s: %w", name, err)
				}
				if _, ok := groups[name]; !ok && len(stats) == 0 {
					return fmt.Errorf("group %q not found", name)
				}
				ids, err := c.ConsumerIDs(ctx, name)
				if err != nil {
					return fmt.Errorf("consumers of group %s: %w", name, err)
				}
				fmt.Fprintf(cmd.OutOrStdout(), "Group: %s\nConsumers: %d\n", name, len(ids))
				for _, id := range ids {
					fmt.Fprintf(cmd.OutOrStdout(), "  %s\n", id)
				}
				fmt.Fprintln(tw, "TOPIC\tQUEUE\tBROKER OFFSET\tCONSUMER OFFSET\tLAG")
				var total int64
				for _, s := range stats {
					co := "-"
					if s.ConsumerOffset >= 0 {
						co = strconv.FormatInt(s.ConsumerOffset, 10)
					}
					fmt.Fprintf(tw, "%s\t%d\t%d\t%s\t%d\n", s.Topic, s.QueueID, s.BrokerOffset, co, s.Lag)
					total += s.Lag
				}
				if err := tw.Flush(); err != nil {
					return err
				}
				_, err = fmt.Fprintf(cmd.OutOrStdout(), "Total lag: %d\n", total)
				return err
			}
			names := make([]string, 0, len(groups))
			for n := range groups {
				names = append(names, n)
			}
			slices.Sort(names)
			fmt.Fprintln(tw, "GROUP\tCONSUMERS\tTOPICS\tLAG")
			for _, n := range names {
				stats, err := c.ConsumeStats(ctx, n, "")
				if err != nil {
					return fmt.Errorf("offsets of group %s: %w", n, err)
				}
				ids, err := c.ConsumerIDs(ctx, n)
				if err != nil {
					return fmt.Errorf("consumers of group %s: %w", n, err)
				}
				var lag int64
				var topics []string
				for _, s := range stats {
					lag += s.Lag
					if !slices.Contains(topics, s.Topic) {
						topics = append(topics, s.Topic)
					}
				}
				fmt.Fprintf(tw, "%s\t%d\t%s\t%d\n", n, len(ids), dash(strings.Join(topics, ",")), lag)
			}
			return tw.Flush()
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
			if err := broker.ValidateTopic(topic); err != nil {
				return usageErr("--topic: %v", err)
			}
			ts, err := parseResetTarget(to)
			if err != nil {
				return &exitError{code: 2, err: err}
			}
			c, err := g.dial(cmd.Context())
			if err != nil {
				return err
			}
			defer c.Close()
			ctx, cancel := g.ctx(cmd.Context())
			defer cancel()
			topics, err := c.Topics(ctx)
			if err != nil {
				return fmt.Errorf("listing topics: %w", err)
			}
			if _, ok := topics[topic]; !ok {
				return fmt.Errorf("topic %q not found", topic)
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
		},
	}
	f := cmd.Flags()
	f.StringVarP(&group, "group", "g", "", "consumer group (required)")
	f.StringVar(&topic, "topic", "", "topic (required)")
	f.StringVar(&to, "to", "", "first, last, or an RFC 3339 time (required)")
	return cmd
}
