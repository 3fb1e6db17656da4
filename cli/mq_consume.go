package cli

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
	"time"
	"unicode/utf8"

	"github.com/spf13/cobra"

	"github.com/tide-run/tide/mq/admin"
	"github.com/tide-run/tide/mq/message"
	"github.com/tide-run/tide/mq/mqmeta"
)

// msgID, offsetMsgID and userProperties are admin's, named short for the printing code below.
func msgID(m *message.Message) string                     { return admin.MsgID(m) }
func offsetMsgID(m *message.Message) string               { return admin.OffsetMsgID(m) }
func userProperties(m *message.Message) map[string]string { return admin.UserProperties(m) }

// jsonMessage is the `-o json` form of a message (one object per line).
type jsonMessage struct {
	Topic          string            `json:"topic"`
	QueueID        int32             `json:"queueId"`
	QueueOffset    int64             `json:"queueOffset"`
	MsgID          string            `json:"msgId"`
	OffsetMsgID    string            `json:"offsetMsgId"`
	Tags           string            `json:"tags,omitempty"`
	Keys           string            `json:"keys,omitempty"`
	Properties     map[string]string `json:"properties,omitempty"`
	BornTimestamp  int64             `json:"bornTimestamp"`
	StoreTimestamp int64             `json:"storeTimestamp"`
	ReconsumeTimes int32             `json:"reconsumeTimes"`
	Body           *string           `json:"body,omitempty"`
	BodyBase64     string            `json:"bodyBase64,omitempty"`
}

func toJSONMessage(m *message.Message) jsonMessage {
	j := jsonMessage{Topic: m.Topic, QueueID: m.QueueID, QueueOffset: m.QueueOffset, MsgID: msgID(m), OffsetMsgID: offsetMsgID(m),
		Tags: message.Property(m.Properties, message.PropTags), Keys: message.Property(m.Properties, message.PropKeys),
		Properties: userProperties(m), BornTimestamp: m.BornTimestamp, StoreTimestamp: m.StoreTimestamp, ReconsumeTimes: m.ReconsumeTimes}
	if len(j.Properties) == 0 {
		j.Properties = nil
	}
	if m.SysFlag&message.FlagCompressed == 0 && utf8.Valid(m.Body) {
		s := string(m.Body)
		j.Body = &s
	} else {
		j.BodyBase64 = base64.StdEncoding.EncodeToString(m.Body)
	}
	return j
}

// messagePrinter writes messages in one of the output formats.
type messagePrinter struct {
	out    io.Writer
	format string
	header bool
}

func newMessagePrinter(out io.Writer, format string) (*messagePrinter, error) {
	switch format {
	case "table", "json", "body":
		return &messagePrinter{out: out, format: format}, nil
	}
	return nil, usageErr("-o %q: want table, json or body", format)
}

// print writes a batch (a table is aligned per batch).
func (p *messagePrinter) print(msgs []*message.Message) error {
	switch p.format {
	case "json":
		enc := json.NewEncoder(p.out)
		for _, m := range msgs {
			if err := enc.Encode(toJSONMessage(m)); err != nil {
				return err
			}
		}
		return nil
	case "body":
		for _, m := range msgs {
			if _, err := fmt.Fprintf(p.out, "%s\n", m.Body); err != nil {
				return err
			}
		}
		return nil
	}
	tw := newTable(p.out)
	if !p.header {
		fmt.Fprintln(tw, "QUEUE\tOFFSET\tMSGID\tTAGS\tKEYS\tSTORED\tBODY")
		p.header = true
	}
	for _, m := range msgs {
		fmt.Fprintf(tw, "%d\t%d\t%s\t%s\t%s\t%s\t%s\n", m.QueueID, m.QueueOffset, msgID(m), dash(message.Property(m.Properties, message.PropTags)),
			dash(message.Property(m.Properties, message.PropKeys)), msTime(m.StoreTimestamp), bodyPreview(m.Body, 60))
	}
	return tw.Flush()
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func newMQConsumeCommand(g *mqGlobals) *cobra.Command {
	var (
		group, from, tag, output string
		maxMsgs                  int
		idle                     time.Duration
		noCommit                 bool
	)
	cmd := &cobra.Command{
		Use:   "consume TOPIC --group G",
		Short: "Print a topic's messages as a consumer group, then commit the group's offsets",
		Long: "Read a topic as consumer group G from the group's committed offsets (or, for queues where it has none,\n" +
			"from the first or last message as --from says), print the messages, and commit the offsets after the last\n" +
			"printed message per queue. It stops after --max messages, or when no message arrived for --timeout, or on\n" +
			"Ctrl-C (offsets are still committed). Running push consumers of the same group share the queues with it.\n" +
			"A long run reports its count and rate on stderr every 2 seconds.",
		Example: `  tide mq consume orders --group audit --from first
  tide mq consume orders --group audit --tag 'created || paid' --max 10 -o json
  tide mq consume orders --group audit --from last --timeout 1m -o body`,
		Args: exactArgs(1, "TOPIC"),
		RunE: func(cmd *cobra.Command, args []string) error {
			topic := args[0]
			if err := mqmeta.ValidateTopic(topic); err != nil {
				return usageErr("%w", err)
			}
			if group == "" {
				return usageErr("--group: required")
			}
			if err := mqmeta.ValidateTopic(group); err != nil {
				return usageErr("--group: %w", err)
			}
			if from != "first" && from != "last" {
				return usageErr("--from %q: want first or last", from)
			}
			if maxMsgs < 0 {
				return usageErr("--max %d: want 0 (no limit) or more", maxMsgs)
			}
			if idle <= 0 {
				return usageErr("--timeout %v: want a positive duration", idle)
			}
			filter, err := admin.ParseTagExpr(tag)
			if err != nil {
				return usageErr("--tag: %w", err)
			}
			pr, err := newMessagePrinter(cmd.OutOrStdout(), output)
			if err != nil {
				return err
			}
			sigCtx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			c, err := g.dial(sigCtx)
			if err != nil {
				return err
			}
			defer c.Close()
			cs := &consumeSession{c: c, g: g, group: group, topic: topic, filter: filter, expr: tag, printer: pr,
				progress: newProgress(cmd.ErrOrStderr(), "consumed", "messages", 0)}
			if err := cs.init(sigCtx, from); err != nil {
				return err
			}
			n, runErr := cs.run(sigCtx, maxMsgs, idle)
			if noCommit {
				fmt.Fprintf(cmd.ErrOrStderr(), "%s; offsets of group %s not committed (--no-commit)\n", plural(n, "message"), group)
				return runErr
			}
			// Commit even after Ctrl-C or an error: everything printed counts as consumed.
			cctx, cancel := g.ctx(context.WithoutCancel(cmd.Context()))
			defer cancel()
			if err := cs.commit(cctx); err != nil {
				return fmt.Errorf("committing offsets of group %s: %w", group, err)
			}
			fmt.Fprintf(cmd.ErrOrStderr(), "%s; offsets of group %s on %s committed\n", plural(n, "message"), group, topic)
			return runErr
		},
	}
	f := cmd.Flags()
	f.StringVarP(&group, "group", "g", "", "consumer group (required)")
	f.StringVar(&from, "from", "last", "where to start on queues where the group has no committed offset: first or last")
	f.StringVar(&tag, "tag", "*", "tag expression: * or tags separated by || (filtered by the broker)")
	f.IntVar(&maxMsgs, "max", 0, "stop after this many messages (0: no limit)")
	f.DurationVar(&idle, "timeout", 2*time.Second, "stop when no message arrived for this long")
	f.StringVarP(&output, "output", "o", "table", "output format: table, json (one object per line) or body")
	f.BoolVar(&noCommit, "no-commit", false, "print without committing the group's offsets")
	return cmd
}

// consumeSession binds admin.GroupReader (the consume loop and offset bookkeeping) to the command's printer and
// per-request --timeout.
type consumeSession struct {
	c       *admin.Client
	g       *mqGlobals
	group   string
	topic   string
	expr    string
	filter  admin.TagFilter
	printer *messagePrinter
	r       *admin.GroupReader
	// progress reports the count on stderr every few seconds of a long run (the messages go to stdout).
	progress *progress
	n        int
}

func (s *consumeSession) init(ctx context.Context, from string) error {
	s.r = &admin.GroupReader{Client: s.c, Group: s.group, Topic: s.topic, Expr: s.expr, Filter: s.filter, RequestTimeout: s.g.timeout}
	return s.r.Init(ctx, from == "first")
}

func (s *consumeSession) run(ctx context.Context, maxMsgs int, idle time.Duration) (int, error) {
	return s.r.Run(ctx, maxMsgs, idle, func(msgs []*message.Message) error {
		if err := s.printer.print(msgs); err != nil {
			return err
		}
		s.n += len(msgs)
		if s.progress != nil {
			s.progress.at(s.n)
		}
		return nil
	})
}

func (s *consumeSession) commit(ctx context.Context) error { return s.r.Commit(ctx) }
