package cli

// `tide mq ...`: operator commands that talk RocketMQ's remoting protocol (through mq/admin) to a name server and
// the broker it lists, so they work against `tide up`, `tide broker` or an Apache RocketMQ 4.x/5.x broker.
//
// Exit codes: 0 success, 1 a failed operation (unreachable server, broker error, nothing found), 2 bad input
// (flags or arguments), before anything is sent.

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"os"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/spf13/cobra"

	"github.com/tide-run/tide/mq/admin"
	"github.com/tide-run/tide/mq/message"
	"github.com/tide-run/tide/mq/mqmeta"
)

const (
	// NameSrvEnv names the environment variable that overrides the default name-server address of `tide mq`.
	NameSrvEnv     = "TIDE_NAMESRV"
	defaultNameSrv = "127.0.0.1:9876"
)

// mqGlobals are the flags shared by every `tide mq` command.
type mqGlobals struct {
	namesrv string
	timeout time.Duration
	// accessKey and secretKey sign requests for a broker with ACL (mq_credentials.go).
	accessKey, secretKey string
}

// usageErr marks bad input: exit code 2, nothing was sent.
func usageErr(format string, args ...any) error {
	return &exitError{code: 2, err: fmt.Errorf(format, args...)}
}

// addr resolves --namesrv / $TIDE_NAMESRV and checks it is IP:port (the RocketMQ Go client does not resolve names,
// and neither do we, so what works here works in an application).
func (g *mqGlobals) addr() (string, error) {
	a := g.namesrv
	if a == "" {
		a = os.Getenv(NameSrvEnv)
	}
	if a == "" {
		a = defaultNameSrv
	}
	if _, err := netip.ParseAddrPort(a); err != nil {
		return "", usageErr("--namesrv %q: want IP:port with a literal IP, e.g. 127.0.0.1:9876 (%w)", a, err)
	}
	return a, nil
}

// dial connects to the name server and its broker, turning connection failures into advice.
func (g *mqGlobals) dial(ctx context.Context) (*admin.Client, error) {
	a, err := g.addr()
	if err != nil {
		return nil, err
	}
	if _, err := g.credentials(); err != nil {
		return nil, err
	}
	dctx, cancel := context.WithTimeout(g.signed(ctx), g.timeout)
	defer cancel()
	c, err := admin.Dial(dctx, a)
	if err != nil {
		if errors.Is(err, admin.ErrResponse) {
			return nil, fmt.Errorf("name server %s: %w", a, err)
		}
		return nil, fmt.Errorf("cannot reach the RocketMQ name server at %s or the broker it lists (%w); "+
			"start one with `tide broker` (or `tide up`), or point --namesrv / $%s at yours", a, err, NameSrvEnv)
	}
	return c, nil
}

// ctx bounds one command's requests by --request-timeout.
func (g *mqGlobals) ctx(parent context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(g.signed(parent), g.timeout)
}

// withAdmin dials the broker, runs fn with a context bounded by --timeout, and closes the connection after fn
// returns. The timeout starts after the dial, which has its own.
func (g *mqGlobals) withAdmin(cmd *cobra.Command, fn func(ctx context.Context, c *admin.Client) error) error {
	c, err := g.dial(cmd.Context())
	if err != nil {
		return err
	}
	defer c.Close()
	ctx, cancel := g.ctx(cmd.Context())
	defer cancel()
	return aclHint(fn(ctx, c))
}

// requireTopic fails with "topic not found" unless the broker's route table has topic.
func requireTopic(ctx context.Context, c *admin.Client, topic string) error {
	topics, err := c.Topics(ctx)
	if err != nil {
		return fmt.Errorf("listing topics: %w", err)
	}
	if _, ok := topics[topic]; !ok {
		return fmt.Errorf("topic %q not found", topic)
	}
	return nil
}

func newMQCommand() *cobra.Command {
	g := &mqGlobals{}
	cmd := &cobra.Command{
		Use:   "mq",
		Short: "Operate the RocketMQ broker: topics, send, consume, groups, offsets, dead letters",
		Long: "Operator commands that speak RocketMQ's own protocol to a name server and its broker: the one inside\n" +
			"`tide up` or `tide broker`, or an Apache RocketMQ cluster.\n\n" +
			"Exit codes: 0 success, 1 the operation failed (server unreachable, broker error, not found), 2 bad input.",
		Example: `  tide mq topic create orders --queues 4
  tide mq send orders '{"id":1}' --tag created --keys order-1
  tide mq consume orders --group audit --from first --max 10
  tide mq groups audit
  TIDE_NAMESRV=10.0.0.5:9876 tide mq topic list
  TIDE_MQ_ACCESS_KEY=ops-admin TIDE_MQ_SECRET_KEY=... tide mq topic list   # a broker with ACL`,
		Args: cobra.ArbitraryArgs,
		RunE: helpOrUnknown,
	}
	cmd.PersistentFlags().StringVar(&g.namesrv, "namesrv", "", "name server IP:port (default $"+NameSrvEnv+" or "+defaultNameSrv+")")
	cmd.PersistentFlags().DurationVar(&g.timeout, "request-timeout", 10*time.Second, "time limit for connecting and for each request")
	mqCredentialFlags(cmd, g)
	cmd.AddCommand(newMQTopicCommand(g), newMQSendCommand(g), newMQConsumeCommand(g), newMQGroupsCommand(g),
		newMQResetOffsetCommand(g), newMQDLQCommand(g), newMQQueryCommand(g), newMQTraceCommand(g))
	return cmd
}

func checkOutput(o string) error {
	if o != "table" && o != "json" {
		return usageErr("-o %q: want table or json", o)
	}
	return nil
}

// writeJSON prints v indented, kubectl -o json style.
func writeJSON(out io.Writer, v any) error {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return err
	}
	_, err = fmt.Fprintf(out, "%s\n", b)
	return err
}

// helpOrUnknown runs a command that only groups subcommands: help without arguments, a usage error for an unknown
// subcommand (cobra only reports unknown commands at the root).
func helpOrUnknown(cmd *cobra.Command, args []string) error {
	if len(args) > 0 {
		return usageErr("unknown command %q for %q (see %s --help)", args[0], cmd.CommandPath(), cmd.CommandPath())
	}
	return cmd.Help()
}

func newTable(out io.Writer) *tabwriter.Writer { return tabwriter.NewWriter(out, 0, 8, 3, ' ', 0) }

func newMQTopicCommand(g *mqGlobals) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "topic",
		Short: "List, create and delete topics",
		Example: `  tide mq topic list
  tide mq topic create orders --queues 8
  tide mq topic delete orders`,
		Args: cobra.ArbitraryArgs,
		RunE: helpOrUnknown,
	}
	var all bool
	var output string
	list := &cobra.Command{
		Use:     "list",
		Aliases: []string{"ls"},
		Short:   "List topics with their queue counts and permissions",
		Long:    "List topics. System topics (TBW102, SCHEDULE_TOPIC_XXXX, rmq_sys_wheel_timer, %RETRY%..., %DLQ%..., RMQ_SYS_..., <cluster>_REPLY_TOPIC,\n" + admin.ReplayTopic + ") are shown with --all.",
		Example: "  tide mq topic list\n  tide mq topic list --all -o json",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := checkOutput(output); err != nil {
				return err
			}
			return g.withAdmin(cmd, func(ctx context.Context, c *admin.Client) error {
				topics, err := c.Topics(ctx)
				if err != nil {
					return fmt.Errorf("listing topics: %w", err)
				}
				names := make([]string, 0, len(topics))
				for n := range topics {
					if all || !isSystemTopic(n) {
						names = append(names, n)
					}
				}
				slices.Sort(names)
				type topicRow struct {
					Name        string `json:"name"`
					ReadQueues  int    `json:"readQueues"`
					WriteQueues int    `json:"writeQueues"`
					Perm        string `json:"perm"`
					Messages    int64  `json:"messages"`
					Type        string `json:"type"`
				}
				out := []topicRow{}
				for _, n := range names {
					t := topics[n]
					var total int64
					for q := 0; q < max(t.ReadQueueNums, t.WriteQueueNums); q++ {
						hi, err := c.MaxOffset(ctx, n, int32(q))
						if err != nil {
							return fmt.Errorf("topic %s queue %d: %w", n, q, err)
						}
						lo, err := c.MinOffset(ctx, n, int32(q))
						if err != nil {
							return fmt.Errorf("topic %s queue %d: %w", n, q, err)
						}
						total += hi - lo
					}
					out = append(out, topicRow{n, t.ReadQueueNums, t.WriteQueueNums, permString(t.Perm), total, t.MessageType()})
				}
				if output == "json" {
					return writeJSON(cmd.OutOrStdout(), out)
				}
				tw := newTable(cmd.OutOrStdout())
				fmt.Fprintln(tw, "NAME\tREAD QUEUES\tWRITE QUEUES\tPERM\tMESSAGES\tTYPE")
				for _, r := range out {
					fmt.Fprintf(tw, "%s\t%d\t%d\t%s\t%d\t%s\n", r.Name, r.ReadQueues, r.WriteQueues, r.Perm, r.Messages, r.Type)
				}
				return tw.Flush()
			})
		},
	}
	list.Flags().BoolVarP(&all, "all", "A", false, "include system topics")
	list.Flags().StringVarP(&output, "output", "o", "table", "output format: table or json")
	var queues int
	var msgType string
	create := &cobra.Command{
		Use:   "create NAME",
		Short: "Create a topic (or change its queue count or message type)",
		Long: "Create a topic, or change an existing one's queue count. --type sets RocketMQ 5's message.type attribute\n" +
			"(NORMAL, FIFO, DELAY or TRANSACTION; mqadmin's updateTopic -a +message.type=...): 5.x clients may only send\n" +
			"that kind of message to the topic. Without --type an existing topic keeps its type.",
		Example: "  tide mq topic create orders\n  tide mq topic create orders --queues 8\n  tide mq topic create reminders --type DELAY",
		Args:    exactArgs(1, "NAME"),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := mqmeta.ValidateTopic(args[0]); err != nil {
				return usageErr("%w", err)
			}
			if queues < 1 || queues > 1024 {
				return usageErr("--queues %d: want 1..1024", queues)
			}
			attrs := ""
			if msgType != "" {
				t := strings.ToUpper(msgType)
				if !slices.Contains(mqmeta.MessageTypes, t) {
					return usageErr("--type %s: want one of %s", msgType, strings.Join(mqmeta.MessageTypes, ", "))
				}
				attrs = "+" + mqmeta.AttrMessageType + "=" + t
			}
			return g.withAdmin(cmd, func(ctx context.Context, c *admin.Client) error {
				if err := c.CreateTopicWithAttributes(ctx, args[0], queues, attrs); err != nil {
					return fmt.Errorf("creating topic %s: %w", args[0], err)
				}
				if attrs != "" {
					fmt.Fprintf(cmd.OutOrStdout(), "topic/%s created (%d queues, type %s)\n", args[0], queues, strings.ToUpper(msgType))
				} else {
					fmt.Fprintf(cmd.OutOrStdout(), "topic/%s created (%d queues)\n", args[0], queues)
				}
				return nil
			})
		},
	}
	create.Flags().IntVar(&queues, "queues", 4, "read and write queue count")
	create.Flags().StringVar(&msgType, "type", "", "message type (message.type attribute): NORMAL, FIFO, DELAY or TRANSACTION")
	del := &cobra.Command{
		Use:     "delete NAME",
		Short:   "Delete a topic and its route",
		Example: "  tide mq topic delete orders",
		Args:    exactArgs(1, "NAME"),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := mqmeta.ValidateTopic(args[0]); err != nil {
				return usageErr("%w", err)
			}
			return g.withAdmin(cmd, func(ctx context.Context, c *admin.Client) error {
				if err := requireTopic(ctx, c, args[0]); err != nil {
					return err
				}
				if err := c.DeleteTopic(ctx, args[0]); err != nil {
					return fmt.Errorf("deleting topic %s: %w", args[0], err)
				}
				fmt.Fprintf(cmd.OutOrStdout(), "topic/%s deleted\n", args[0])
				return nil
			})
		},
	}
	cmd.AddCommand(list, create, del)
	return cmd
}

// exactArgs is cobra.ExactArgs with a usage exit code and the argument's name in the message.
func exactArgs(n int, names string) cobra.PositionalArgs {
	return func(cmd *cobra.Command, args []string) error {
		if len(args) != n {
			return usageErr("%s: want %s, got %d arguments (see %s --help)", cmd.CommandPath(), names, len(args), cmd.CommandPath())
		}
		return nil
	}
}

func isSystemTopic(n string) bool { return n == admin.ReplayTopic || mqmeta.IsSystemTopic(n) }

func permString(p int) string {
	s := ""
	if p&mqmeta.PermRead != 0 {
		s += "R"
	} else {
		s += "-"
	}
	if p&mqmeta.PermWrite != 0 {
		s += "W"
	} else {
		s += "-"
	}
	return s
}

func newMQSendCommand(g *mqGlobals) *cobra.Command {
	var (
		tag   string
		keys  []string
		props []string
		queue int
	)
	cmd := &cobra.Command{
		Use:   "send TOPIC [BODY|-]",
		Short: "Send one message (body from the argument, or stdin when it is - or missing)",
		Long: "Send one message synchronously and print its message id, queue and offset. An unknown topic is\n" +
			"auto-created by the broker (4 queues), as a client's first send does.",
		Example: `  tide mq send orders '{"id":1}' --tag created --keys order-1
  echo hello | tide mq send greetings --property source=cli --property env=dev
  tide mq send orders - < order.json`,
		Args: func(cmd *cobra.Command, args []string) error {
			if len(args) < 1 || len(args) > 2 {
				return usageErr("%s: want TOPIC [BODY|-], got %d arguments", cmd.CommandPath(), len(args))
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			req := admin.SendRequest{Topic: args[0], Tag: tag, Keys: keys, QueueID: int32(queue), Properties: map[string]string{}}
			if err := mqmeta.ValidateTopic(req.Topic); err != nil {
				return usageErr("%w", err)
			}
			if strings.ContainsAny(tag, "|*") || strings.TrimSpace(tag) != tag {
				return usageErr("--tag %q: a tag cannot contain '|', '*' or surrounding spaces", tag)
			}
			for _, k := range keys {
				if k == "" || strings.ContainsAny(k, " \x01\x02") {
					return usageErr("--keys %q: a key cannot be empty or contain spaces", k)
				}
			}
			for _, p := range props {
				k, v, ok := strings.Cut(p, "=")
				if !ok {
					return usageErr("--property %q: want key=value", p)
				}
				if err := admin.ValidateProperty(k, v); err != nil {
					return usageErr("--property %q: %w", p, err)
				}
				req.Properties[k] = v
			}
			if len(args) == 2 && args[1] != "-" {
				req.Body = []byte(args[1])
			} else {
				b, err := io.ReadAll(io.LimitReader(cmd.InOrStdin(), message.MaxBodySize+1))
				if err != nil {
					return fmt.Errorf("reading the body from stdin: %w", err)
				}
				req.Body = b
			}
			if len(req.Body) > message.MaxBodySize {
				return usageErr("body: over the broker's limit of %d bytes", message.MaxBodySize)
			}
			return g.withAdmin(cmd, func(ctx context.Context, c *admin.Client) error {
				res, err := c.Send(ctx, req)
				if err != nil {
					return fmt.Errorf("sending to %s: %w", req.Topic, err)
				}
				tw := newTable(cmd.OutOrStdout())
				// OFFSETMSGID is RocketMQ's offsetMsgId (store host and commit-log offset), the id `tide mq dlq` and
				// the broker's viewMessage use; one word, so no header repeats another's.
				fmt.Fprintln(tw, "MSGID\tTOPIC\tQUEUE\tOFFSET\tOFFSETMSGID")
				fmt.Fprintf(tw, "%s\t%s\t%d\t%d\t%s\n", res.MsgID, res.Topic, res.QueueID, res.QueueOffset, res.OffsetMsgID)
				return tw.Flush()
			})
		},
	}
	f := cmd.Flags()
	f.StringVar(&tag, "tag", "", "message tag (consumers filter on it)")
	f.StringSliceVar(&keys, "keys", nil, "message keys (comma-separated or repeated)")
	f.StringArrayVar(&props, "property", nil, "user property key=value (repeatable)")
	f.IntVar(&queue, "queue", -1, "queue id (default: round robin over the topic's queues)")
	return cmd
}

// bodyPreview renders a body for a table cell: text as received (only characters that would break the table, such
// as newlines, tabs and other control characters, are escaped; cut at n runes), binary as its size.
func bodyPreview(b []byte, n int) string {
	if !utf8.Valid(b) {
		return fmt.Sprintf("<%d bytes binary>", len(b))
	}
	var sb strings.Builder
	i := 0
	for _, r := range string(b) {
		if i == n {
			sb.WriteString("...")
			break
		}
		i++
		if r == ' ' || (unicode.IsPrint(r) && !unicode.IsSpace(r)) {
			sb.WriteRune(r)
			continue
		}
		q := strconv.QuoteRune(r)
		sb.WriteString(q[1 : len(q)-1])
	}
	return sb.String()
}

// plural is n and the noun, with an s unless n is 1.
func plural(n int, noun string) string {
	if n == 1 {
		return "1 " + noun
	}
	return fmt.Sprintf("%d %ss", n, noun)
}

func msTime(ms int64) string { return time.UnixMilli(ms).UTC().Format(time.RFC3339) }
