package cli

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/signal"
	"sort"
	"strings"
	"syscall"
	"time"
	"unicode/utf8"

	"github.com/spf13/cobra"

	"github.com/tide-run/tide/mq/admin"
	"github.com/tide-run/tide/mq/broker"
	"github.com/tide-run/tide/mq/message"
)

// pollInterval is how long consume waits between passes over empty queues. It is a polling period, not a wait for
// an event: the idle --timeout decides when to stop.
const pollInterval = 100 * time.Millisecond

// tagFilter is a parsed tag expression: "*" (or empty) accepts everything, "a || b" accepts those tags.
type tagFilter map[string]bool

func parseTagExpr(expr string) (tagFilter, error) {
	expr = strings.TrimSpace(expr)
	if expr == "" || expr == "*" {
		return nil, nil
	}
	f := tagFilter{}
	for _, t := range strings.Split(expr, "||") {
		t = strings.TrimSpace(t)
		if t == "" || strings.Contains(t, "*") {
			return nil, fmt.Errorf("tag expression %q: want * or tags separated by ||", expr)
		}
		f[t] = true
	}
	return f, nil
}

// match checks a message's tag again on this side: the broker filters by tag hash, which can collide.
func (f tagFilter) match(m *message.Message) bool {
	return f == nil || f[message.Property(m.Properties, message.PropTags)]
}

// msgID is what a consumer sees as the message id: the producer's UNIQ_KEY, else the broker's offset id.
func msgID(m *message.Message) string {
	if id := message.Property(m.Properties, message.PropUniqKey); id != "" {
		return id
	}
	return offsetMsgID(m)
}

func offsetMsgID(m *message.Message) string {
	return message.OffsetMsgID(m.StoreHost, m.PhysicalOffset)
}

// userProperties drops the properties the broker and clients manage.
func userProperties(m *message.Message) map[string]string {
	p := message.ParseProperties(m.Properties)
	for k := range p {
		if admin.IsSystemProperty(k) {
			delete(p, k)
		}
	}
	return p
}

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
			"Ctrl-C (offsets are still committed). Running push consumers of the same group share the queues with it.",
		Example: `  tide mq consume orders --group audit --from first
  tide mq consume orders --group audit --tag 'created || paid' --max 10 -o json
  tide mq consume orders --group audit --from last --timeout 1m -o body`,
		Args: exactArgs(1, "TOPIC"),
		RunE: func(cmd *cobra.Command, args []string) error {
			topic := args[0]
			if err := broker.ValidateTopic(topic); err != nil {
				return usageErr("%v", err)
			}
			if group == "" {
				return usageErr("--group: required")
			}
			if err := broker.ValidateTopic(group); err != nil {
				return usageErr("--group: %v", err)
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
			filter, err := parseTagExpr(tag)
			if err != nil {
				return usageErr("--tag: %v", err)
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
			cs := &consumeSession{c: c, g: g, group: group, topic: topic, filter: filter, expr: tag, printer: pr}
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

// consumeSession reads one topic's queues as a group. offsets[q] is the next offset to read on queue q; it only
// moves past a message once that message is printed (or skipped by the filter), so committing it never loses one.
type consumeSession struct {
	c       *admin.Client
	g       *mqGlobals
	group   string
	topic   string
	expr    string
	filter  tagFilter
	printer *messagePrinter
	queues  []int32
	offsets map[int32]int64
}

func (s *consumeSession) init(ctx context.Context, from string) error {
	rctx, cancel := s.g.ctx(ctx)
	defer cancel()
	topics, err := s.c.Topics(rctx)
	if err != nil {
		return fmt.Errorf("listing topics: %w", err)
	}
	t, ok := topics[s.topic]
	if !ok {
		return fmt.Errorf("topic %q not found (create it with `tide mq topic create %s`)", s.topic, s.topic)
	}
	groups, err := s.c.Groups(rctx)
	if err != nil {
		return fmt.Errorf("listing groups: %w", err)
	}
	if _, ok := groups[s.group]; !ok {
		// Register the group so `tide mq groups` lists it, with the broker's defaults.
		if err := s.c.CreateGroup(rctx, broker.GroupConfig{GroupName: s.group, ConsumeEnable: true, ConsumeBroadcastEnable: true,
			RetryQueueNums: 1, RetryMaxTimes: 16}); err != nil {
			return fmt.Errorf("creating group %s: %w", s.group, err)
		}
	}
	stats, err := s.c.ConsumeStats(rctx, s.group, s.topic)
	if err != nil {
		return fmt.Errorf("offsets of group %s: %w", s.group, err)
	}
	stored := map[int32]int64{}
	for _, st := range stats {
		if st.ConsumerOffset >= 0 {
			stored[st.QueueID] = st.ConsumerOffset
		}
	}
	s.offsets = map[int32]int64{}
	for q := int32(0); int(q) < t.ReadQueueNums; q++ {
		s.queues = append(s.queues, q)
		if off, ok := stored[q]; ok {
			s.offsets[q] = off
			continue
		}
		var off int64
		if from == "first" {
			off, err = s.c.MinOffset(rctx, s.topic, q)
		} else {
			off, err = s.c.MaxOffset(rctx, s.topic, q)
		}
		if err != nil {
			return fmt.Errorf("queue %d of %s: %w", q, s.topic, err)
		}
		s.offsets[q] = off
	}
	return nil
}

// run pulls round robin over the queues until maxMsgs messages (0: no limit) were printed, nothing arrived for idle,
// or ctx ends (not an error: Ctrl-C is how a user stops a follow).
func (s *consumeSession) run(ctx context.Context, maxMsgs int, idle time.Duration) (int, error) {
	n := 0
	last := time.Now()
	for {
		got := false
		for _, q := range s.queues {
			want := 32
			if maxMsgs > 0 {
				want = min(want, maxMsgs-n)
			}
			rctx, cancel := s.g.ctx(ctx)
			msgs, next, err := s.c.PullExpr(rctx, s.group, s.topic, q, s.offsets[q], want, s.expr)
			cancel()
			if err != nil {
				if ctx.Err() != nil {
					return n, nil
				}
				return n, fmt.Errorf("pulling %s queue %d at offset %d: %w", s.topic, q, s.offsets[q], err)
			}
			var show []*message.Message
			for _, m := range msgs {
				if s.filter.match(m) {
					show = append(show, m)
				}
			}
			if len(show) > 0 {
				if err := s.printer.print(show); err != nil {
					return n, err
				}
				n += len(show)
				got = true
			}
			// next is past every message of this answer (or past filtered ones); all of them were handled.
			if next > s.offsets[q] {
				s.offsets[q] = next
			}
			if maxMsgs > 0 && n >= maxMsgs {
				return n, nil
			}
		}
		if got {
			last = time.Now()
			continue
		}
		if time.Since(last) >= idle {
			return n, nil
		}
		select {
		case <-ctx.Done():
			return n, nil
		case <-time.After(pollInterval):
		}
	}
}

func (s *consumeSession) commit(ctx context.Context) error {
	qs := make([]int32, 0, len(s.offsets))
	for q := range s.offsets {
		qs = append(qs, q)
	}
	sort.Slice(qs, func(i, j int) bool { return qs[i] < qs[j] })
	for _, q := range qs {
		if err := s.c.UpdateOffset(ctx, s.group, s.topic, q, s.offsets[q]); err != nil {
			return fmt.Errorf("queue %d: %w", q, err)
		}
	}
	return nil
}
