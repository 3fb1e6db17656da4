package cli

// `tide mq query` and `tide mq trace`: find messages by key, by id or by time (QUERY_MESSAGE, VIEW_MESSAGE_BY_ID,
// SEARCH_OFFSET_BY_TIMESTAMP) and follow one message's life through the official clients' trace records. The
// logic is mq/admin's (QueryByKey, FindByID, MessagesByTime, Trace); this file has flags and printing.

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"sort"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/tide-run/tide/mq/admin"
	"github.com/tide-run/tide/mq/message"
	"github.com/tide-run/tide/mq/mqmeta"
	"github.com/tide-run/tide/mq/msgtrace"
)

// parseQueryTime reads --from/--to: an RFC 3339 time, or a duration meaning that long ago ("1h", "30m").
func parseQueryTime(flag, v string, now time.Time) (time.Time, error) {
	if v == "" {
		return time.Time{}, nil
	}
	if d, err := time.ParseDuration(v); err == nil && d >= 0 {
		return now.Add(-d), nil
	}
	t, err := time.Parse(time.RFC3339, v)
	if err != nil {
		return time.Time{}, usageErr("--%s %q: want an RFC 3339 time like 2026-11-21T15:04:05Z or a duration ago like 1h", flag, v)
	}
	return t, nil
}

func newMQQueryCommand(g *mqGlobals) *cobra.Command {
	var key, id, topic, from, to, output string
	var max int
	cmd := &cobra.Command{
		Use:   "query (--key K --topic T | --id ID [--topic T] | --topic T --from TIME [--to TIME])",
		Short: "Find messages by key, by message id, or by topic and store time; print their properties and bodies",
		Long: "Find stored messages the way mqadmin queryMsgByKey, queryMsgById, queryMsgByUniqueKey and printMsg do:\n\n" +
			"  --key K --topic T   messages of T whose KEYS include K (the newest, oldest first)\n" +
			"  --id ID             a broker offset message id (OFFSET MSGID, read directly) or a producer message id\n" +
			"                      (MSGID, the UNIQ_KEY), looked up in --topic or, without it, in every topic\n" +
			"  --topic T --from F  messages of T stored between --from and --to (default now), oldest first\n\n" +
			"Times are RFC 3339 or a duration ago (1h). --from/--to also narrow --key and --id. Works against tide's\n" +
			"broker and Apache RocketMQ's.",
		Example: `  tide mq query --key order-1 --topic orders
  tide mq query --id 7F0000010000F1A2B3C4D5E6F7080910
  tide mq query --topic orders --from 1h --max 20 -o table
  tide mq query --key order-1 --topic orders -o json`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			now := time.Now()
			begin, err := parseQueryTime("from", from, now)
			if err != nil {
				return err
			}
			end, err := parseQueryTime("to", to, now)
			if err != nil {
				return err
			}
			if end.IsZero() {
				end = now.Add(time.Hour) // clocks of broker and client may differ a little
			}
			modes := 0
			for _, set := range []bool{key != "", id != "", key == "" && id == "" && topic != ""} {
				if set {
					modes++
				}
			}
			switch {
			case modes != 1:
				return usageErr("want exactly one of --key K --topic T, --id ID, or --topic T --from TIME")
			case key != "" && topic == "":
				return usageErr("--key needs --topic (the broker's index is per topic)")
			case key == "" && id == "" && from == "":
				return usageErr("--topic alone needs --from (and optionally --to); or add --key")
			case max <= 0:
				return usageErr("--max %d: want at least 1", max)
			}
			if topic != "" {
				if err := mqmeta.ValidateTopic(topic); err != nil {
					return usageErr("--topic: %v", err)
				}
			}
			if output == "" {
				output = "detail"
				if key == "" && id == "" {
					output = "table"
				}
			}
			if output != "detail" && output != "table" && output != "json" && output != "body" {
				return usageErr("-o %q: want detail, table, json or body", output)
			}
			return g.withAdmin(cmd, func(ctx context.Context, c *admin.Client) error {
				var msgs []*message.Message
				var err error
				var what string
				switch {
				case key != "":
					what = fmt.Sprintf("key %q in topic %s", key, topic)
					msgs, err = c.QueryByKey(ctx, topic, key, min(max, mqmeta.QueryMaxNum), begin, end)
				case id != "":
					what = fmt.Sprintf("id %s", id)
					msgs, err = c.FindByID(ctx, id, topic, begin, end)
				default:
					what = fmt.Sprintf("topic %s between %s and %s", topic, begin.UTC().Format(time.RFC3339), end.UTC().Format(time.RFC3339))
					msgs, err = c.MessagesByTime(ctx, topic, begin, end, max)
				}
				if err != nil {
					return fmt.Errorf("query %s: %w", what, err)
				}
				if len(msgs) > max {
					msgs = msgs[:max]
				}
				if len(msgs) == 0 {
					return fmt.Errorf("no message found for %s (retention may have removed it, or widen --from/--to)", what)
				}
				return printQueried(cmd.OutOrStdout(), output, msgs)
			})
		},
	}
	cmd.Flags().StringVar(&key, "key", "", "a message key (one word of KEYS)")
	cmd.Flags().StringVar(&id, "id", "", "a message id: the producer's (MSGID) or the broker's offset message id")
	cmd.Flags().StringVarP(&topic, "topic", "t", "", "the topic")
	cmd.Flags().StringVar(&from, "from", "", "stored at or after: RFC 3339 time or a duration ago (1h)")
	cmd.Flags().StringVar(&to, "to", "", "stored at or before: RFC 3339 time or a duration ago (default now)")
	cmd.Flags().IntVar(&max, "max", 32, "at most this many messages (a key query returns at most 64)")
	cmd.Flags().StringVarP(&output, "output", "o", "", "output: detail (default for --key/--id), table (default for a time range), json or body")
	return cmd
}

func printQueried(out io.Writer, format string, msgs []*message.Message) error {
	switch format {
	case "table", "json", "body":
		p, err := newMessagePrinter(out, format)
		if err != nil {
			return err
		}
		return p.print(msgs)
	}
	for i, m := range msgs {
		if i > 0 {
			fmt.Fprintln(out)
		}
		if err := printDetail(out, m); err != nil {
			return err
		}
	}
	return nil
}

// printDetail writes one message as mqadmin queryMsgById does: every header field, all properties, the body.
func printDetail(out io.Writer, m *message.Message) error {
	tw := newTable(out)
	row := func(k, v string) { fmt.Fprintf(tw, "%s:\t%s\n", k, v) }
	row("Topic", m.Topic)
	row("Msg ID", msgID(m))
	row("Offset Msg ID", offsetMsgID(m))
	row("Tags", dash(message.Property(m.Properties, message.PropTags)))
	row("Keys", dash(message.Property(m.Properties, message.PropKeys)))
	row("Queue", fmt.Sprintf("%d, offset %d", m.QueueID, m.QueueOffset))
	row("Born", fmt.Sprintf("%s from %s", msTimeMS(m.BornTimestamp), m.BornHost))
	row("Stored", fmt.Sprintf("%s on %s", msTimeMS(m.StoreTimestamp), m.StoreHost))
	row("Reconsume Times", fmt.Sprint(m.ReconsumeTimes))
	props := message.ParseProperties(m.Properties)
	names := make([]string, 0, len(props))
	for k := range props {
		names = append(names, k)
	}
	sort.Strings(names)
	for i, k := range names {
		label := ""
		if i == 0 {
			label = "Properties:"
		}
		fmt.Fprintf(tw, "%s\t%s=%s\n", label, k, props[k])
	}
	body := m.Body
	note := ""
	if m.SysFlag&message.FlagCompressed != 0 {
		if b, err := admin.Body(m); err == nil {
			body, note = b, fmt.Sprintf(" (zlib-compressed, %d bytes stored)", len(m.Body))
		}
	}
	row("Body Length", fmt.Sprintf("%d%s", len(body), note))
	if err := tw.Flush(); err != nil {
		return err
	}
	_, err := fmt.Fprintf(out, "Body:\n%s\n", bodyText(body))
	return err
}

// bodyText is a body for the terminal: text as is, binary as a hex dump of its first 512 bytes.
func bodyText(b []byte) string {
	if p := bodyPreview(b, len(b)+1); !strings.HasPrefix(p, "<") || !strings.HasSuffix(p, "binary>") {
		return string(b)
	}
	n := min(len(b), 512)
	return fmt.Sprintf("<%d bytes binary>\n%x", len(b), b[:n])
}

func msTimeMS(ms int64) string {
	return time.UnixMilli(ms).UTC().Format("2006-01-02T15:04:05.000Z")
}

func newMQTraceCommand(g *mqGlobals) *cobra.Command {
	var traceTopic, from, to, output string
	cmd := &cobra.Command{
		Use:   "trace ID|KEY",
		Short: "Show one message's life from the clients' trace records: produced, stored, consumed by each group",
		Long: "Read the message-trace records the official RocketMQ clients write when tracing is on (Go:\n" +
			"producer.WithTrace / consumer.WithTrace; Java: enableMsgTrace) from " + mqmeta.TraceTopic + " and show\n" +
			"the message's timeline: who produced it, when, to which broker and how long the send took; where it is\n" +
			"stored (queue, offset); and, per consumer group, each delivery: when, on which client, the how-many-th\n" +
			"attempt, the result and how long the listener took. ID is the message id (MSGID), the broker's offset\n" +
			"message id, or one of the message's keys (then every message with that key is shown).",
		Example: `  tide mq trace 7F0000010000F1A2B3C4D5E6F7080910
  tide mq trace order-1
  tide mq trace order-1 -o json`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			now := time.Now()
			begin, err := parseQueryTime("from", from, now)
			if err != nil {
				return err
			}
			end, err := parseQueryTime("to", to, now)
			if err != nil {
				return err
			}
			if end.IsZero() {
				end = now.Add(time.Hour)
			}
			if output != "text" && output != "json" {
				return usageErr("-o %q: want text or json", output)
			}
			return g.withAdmin(cmd, func(ctx context.Context, c *admin.Client) error {
				traces, err := c.Trace(ctx, args[0], traceTopic, begin, end)
				if err != nil {
					return fmt.Errorf("trace %s: %w", args[0], err)
				}
				if len(traces) == 0 {
					return fmt.Errorf("no message and no trace records found for %q (is it a message id or key? was it sent with tracing on?)", args[0])
				}
				out := cmd.OutOrStdout()
				if output == "json" {
					enc := json.NewEncoder(out)
					for _, t := range traces {
						if err := enc.Encode(traceJSON(t)); err != nil {
							return err
						}
					}
					return nil
				}
				for i, t := range traces {
					if i > 0 {
						fmt.Fprintln(out)
					}
					printTrace(out, t)
				}
				return nil
			})
		},
	}
	cmd.Flags().StringVar(&traceTopic, "trace-topic", mqmeta.TraceTopic, "the topic the clients write trace records to")
	cmd.Flags().StringVar(&from, "from", "", "trace records stored at or after: RFC 3339 time or a duration ago")
	cmd.Flags().StringVar(&to, "to", "", "trace records stored at or before (default now)")
	cmd.Flags().StringVarP(&output, "output", "o", "text", "output: text or json (one object per message)")
	return cmd
}

func printTrace(out io.Writer, t admin.MessageTrace) {
	fmt.Fprintf(out, "message %s\n", t.MsgID)
	tw := newTable(out)
	if m := t.Stored; m != nil {
		fmt.Fprintf(tw, "  stored\t%s\ttopic %s queue %d offset %d on %s (offset msg id %s), tags %s, keys %s\n",
			msTimeMS(m.StoreTimestamp), m.Topic, m.QueueID, m.QueueOffset, m.StoreHost, offsetMsgID(m),
			dash(message.Property(m.Properties, message.PropTags)), dash(message.Property(m.Properties, message.PropKeys)))
	} else {
		fmt.Fprintf(tw, "  stored\t-\tnot found on this broker (removed by retention, or stored elsewhere)\n")
	}
	if id := admin.TraceID(t.Stored); id != "" {
		fmt.Fprintf(tw, "  traced\t-\tOpenTelemetry trace %s (tide trace %s)\n", id, id)
	}
	if len(t.Published) == 0 && len(t.Groups) == 0 {
		fmt.Fprintf(tw, "  trace\t-\tno trace records: the producer and consumers did not have tracing on\n")
	}
	for _, p := range t.Published {
		status := "sent"
		if !p.Success {
			status = "send FAILED"
		}
		from := ""
		if p.ClientHost != "" {
			from = " from " + p.ClientHost
		}
		fmt.Fprintf(tw, "  produced\t%s\tby group %s%s to %s, topic %s, %d bytes, %s in %d ms\n",
			msTimeMS(p.Timestamp), p.Group, from, p.StoreHost, p.Topic, p.BodyLength, status, p.CostMS)
	}
	for _, x := range t.Transactions {
		checked := ""
		if x.FromTransactionCheck {
			checked = ", after a check-back"
		}
		fmt.Fprintf(tw, "  transaction\t%s\tby group %s: %s (transaction %s%s)\n", msTimeMS(x.Timestamp), x.Group,
			x.TransactionState, x.TransactionID, checked)
	}
	for _, gc := range t.Groups {
		ok := 0
		for _, a := range gc.Attempts {
			if a.Done && a.Success {
				ok++
			}
		}
		deliveries := "1 delivery"
		if len(gc.Attempts) != 1 {
			deliveries = fmt.Sprintf("%d deliveries", len(gc.Attempts))
		}
		fmt.Fprintf(tw, "  consumed\tgroup %s\t%s, %d succeeded\n", gc.Group, deliveries, ok)
		for i, a := range gc.Attempts {
			when := "-"
			if a.Start != 0 {
				when = msTimeMS(a.Start)
			} else if a.End != 0 {
				when = msTimeMS(a.End)
			}
			host := ""
			if a.ClientHost != "" {
				host = " on " + a.ClientHost
			}
			result := "no result recorded yet (still consuming, or the client stopped)"
			if a.Done {
				result = fmt.Sprintf("%s in %d ms", a.Result, a.CostMS)
				if !a.Success && a.Result == "SUCCESS" {
					result = fmt.Sprintf("failed in %d ms", a.CostMS)
				}
			}
			fmt.Fprintf(tw, "    #%d\t%s\tattempt %d%s: %s%s\n", i+1, when, a.RetryTimes+1, host, result, deliveryText(a))
		}
	}
	for _, r := range t.Recalls {
		fmt.Fprintf(tw, "  recalled\t%s\tby group %s, success %v\n", msTimeMS(r.Timestamp), r.Group, r.Success)
	}
	tw.Flush()
	if t.Skipped > 0 {
		fmt.Fprintf(out, "  (%d trace records did not parse and were skipped)\n", t.Skipped)
	}
}

// deliveryText is what tide's consumers add to an attempt (the records' extension): the event, where it went,
// the sink's answer and the OpenTelemetry trace.
func deliveryText(a msgtrace.Attempt) string {
	var b strings.Builder
	if a.Event != "" {
		fmt.Fprintf(&b, "; event %s", a.Event)
	}
	if a.Sink != "" {
		fmt.Fprintf(&b, " to %s", a.Sink)
	}
	if a.Outcome != "" {
		fmt.Fprintf(&b, ": %s", a.Outcome)
		if a.Status != 0 {
			fmt.Fprintf(&b, ", status %d", a.Status)
		}
		if a.Attempts > 1 {
			fmt.Fprintf(&b, " after %d attempts", a.Attempts)
		}
		fmt.Fprintf(&b, " in %d ms", a.DeliveryMS)
	}
	switch a.Then {
	case "retry":
		b.WriteString("; back to RocketMQ for redelivery")
	case "dlq":
		b.WriteString("; moved to the group's dead-letter queue (%DLQ%)")
	}
	if a.TraceID != "" {
		fmt.Fprintf(&b, "; trace %s", a.TraceID)
	}
	return b.String()
}

type traceOut struct {
	MsgID        string                      `json:"msgId"`
	TraceID      string                      `json:"traceId,omitempty"` // the OpenTelemetry trace the stored message names
	Stored       *jsonMessage                `json:"stored,omitempty"`
	Published    []msgtrace.Record           `json:"published,omitempty"`
	Transactions []msgtrace.Record           `json:"transactions,omitempty"`
	Recalls      []msgtrace.Record           `json:"recalls,omitempty"`
	Consumed     []msgtrace.GroupConsumption `json:"consumed,omitempty"`
	Skipped      int                         `json:"skippedRecords,omitempty"`
}

func traceJSON(t admin.MessageTrace) traceOut {
	o := traceOut{MsgID: t.MsgID, TraceID: admin.TraceID(t.Stored), Published: t.Published, Transactions: t.Transactions, Recalls: t.Recalls, Consumed: t.Groups, Skipped: t.Skipped}
	if t.Stored != nil {
		j := toJSONMessage(t.Stored)
		o.Stored = &j
	}
	return o
}
