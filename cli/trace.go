package cli

import (
	"encoding/json"
	"fmt"
	"io"
	"sort"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/tide-run/tide/controlplane/client"
	"github.com/tide-run/tide/internal/tracing/traceapi"
)

func newTraceCommand(g *globals) *cobra.Command {
	var q client.TraceQuery
	var output string
	cmd := &cobra.Command{
		Use:   "trace [TRACE_ID]",
		Short: "Show a trace from tide's in-memory trace store, or list recent traces",
		Long: `With a trace ID, print the spans tide recorded for it as a tree, each with its kind, start offset, duration,
status and main attributes (the RocketMQ topic, the HTTP status, ...). Without one, list the most recent traces,
newest first; --attr KEY[=VALUE] and --name SPAN keep the traces with such a span.

tide keeps its most recent spans in memory (TIDE_TRACE_BUFFER, default 8192 spans) whether or not it also exports
them with OTLP (OTEL_EXPORTER_OTLP_ENDPOINT); see docs/observability.md. A trace ID is the 32 hexadecimal digits
in the middle of a traceparent header: 00-<trace id>-<span id>-01.`,
		Example: `  tide trace                                   # recent traces
  tide trace --attr messaging.destination.name=orders
  tide trace 4bf92f3577b34da6a3ce929d0e0e4736
  tide trace 4bf92f3577b34da6a3ce929d0e0e4736 -o json`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if output != "" && output != "json" {
				return fmt.Errorf("-o %q: expected json or nothing", output)
			}
			c, err := g.client()
			if err != nil {
				return err
			}
			out := cmd.OutOrStdout()
			if len(args) == 1 {
				id := strings.ToLower(strings.TrimSpace(args[0]))
				if parts := strings.Split(id, "-"); len(parts) == 4 {
					id = parts[1] // a whole traceparent value
				}
				t, err := c.Trace(cmd.Context(), id)
				if err != nil {
					return err
				}
				if output == "json" {
					return writeJSONIndent(out, t)
				}
				PrintTrace(out, t)
				return nil
			}
			l, err := c.Traces(cmd.Context(), q)
			if err != nil {
				return err
			}
			if output == "json" {
				return writeJSONIndent(out, l)
			}
			if !l.Enabled {
				fmt.Fprintln(out, "tracing is disabled on this tide (OTEL_SDK_DISABLED=true)")
				return nil
			}
			if len(l.Traces) == 0 {
				fmt.Fprintln(out, "no traces in memory yet")
				return nil
			}
			tw := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "TRACE ID\tSTARTED\tDURATION\tSPANS\tERRORS\tROOT")
			for _, s := range l.Traces {
				fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%d\t%s\n", s.TraceID, s.Start.Local().Format("15:04:05.000"),
					fmtDur(s.Duration), s.Spans, s.Errors, s.Root)
			}
			return tw.Flush()
		},
	}
	cmd.Flags().StringVar(&q.Attr, "attr", "", "list traces with a span carrying this attribute (KEY or KEY=VALUE)")
	cmd.Flags().StringVar(&q.Name, "name", "", "list traces with a span of this name")
	cmd.Flags().IntVar(&q.Limit, "limit", 20, "list at most this many traces")
	cmd.Flags().StringVarP(&output, "output", "o", "", "json: print the API's JSON")
	return cmd
}

func writeJSONIndent(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

// mainAttrs are shown next to a span, in this order, when it has them.
var mainAttrs = []string{"messaging.destination.name", "messaging.consumer.group.name", "http.response.status_code",
	"server.address", "url.full", "url.path", "tide.delivery.outcome", "error.type"}

// PrintTrace writes a trace as an indented span tree: children under their parent in start order, spans whose
// parent is not held at the top level.
func PrintTrace(w io.Writer, t traceapi.Trace) {
	if len(t.Spans) == 0 {
		fmt.Fprintf(w, "trace %s: no spans\n", t.TraceID)
		return
	}
	held := map[string]bool{}
	children := map[string][]traceapi.Span{}
	var roots []traceapi.Span
	start, end := t.Spans[0].Start, t.Spans[0].End
	for _, s := range t.Spans {
		held[s.SpanID] = true
		if s.Start.Before(start) {
			start = s.Start
		}
		if s.End.After(end) {
			end = s.End
		}
	}
	for _, s := range t.Spans {
		if s.ParentSpanID != "" && held[s.ParentSpanID] && s.ParentSpanID != s.SpanID {
			children[s.ParentSpanID] = append(children[s.ParentSpanID], s)
		} else {
			roots = append(roots, s)
		}
	}
	byStart := func(ss []traceapi.Span) {
		sort.SliceStable(ss, func(i, j int) bool { return ss[i].Start.Before(ss[j].Start) })
	}
	byStart(roots)
	fmt.Fprintf(w, "trace %s  %d spans  %s\n", t.TraceID, len(t.Spans), fmtDur(end.Sub(start)))
	printTraceMessages(w, t.Spans)
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "SPAN\tKIND\tSERVICE\tSTART\tDURATION\tSTATUS\tATTRIBUTES")
	visited := map[string]bool{}
	var walk func(s traceapi.Span, prefix string, last, top bool)
	walk = func(s traceapi.Span, prefix string, last, top bool) {
		if visited[s.SpanID] {
			return // a cycle in hostile input: print each span once
		}
		visited[s.SpanID] = true
		branch, next := "", prefix
		if !top {
			if last {
				branch, next = prefix+"└─ ", prefix+"   "
			} else {
				branch, next = prefix+"├─ ", prefix+"│  "
			}
		}
		status := s.Status
		if s.StatusMessage != "" {
			status += ": " + truncateRunes(s.StatusMessage, 60)
		}
		fmt.Fprintf(tw, "%s%s\t%s\t%s\t+%s\t%s\t%s\t%s\n", branch, s.Name, s.Kind, s.Service,
			fmtDur(s.Start.Sub(start)), fmtDur(s.Duration()), status, attrSummary(s.Attributes))
		kids := children[s.SpanID]
		byStart(kids)
		for i, k := range kids {
			walk(k, next, i == len(kids)-1, false)
		}
	}
	for _, r := range roots {
		walk(r, "", true, true)
	}
	// Spans whose parents form a cycle (hostile or broken input) are reachable from no root: print them at the top.
	for _, s := range t.Spans {
		if !visited[s.SpanID] {
			walk(s, "", true, true)
		}
	}
	_ = tw.Flush()
}

func attrSummary(a map[string]string) string {
	var parts []string
	for _, k := range mainAttrs {
		if v, ok := a[k]; ok {
			parts = append(parts, k+"="+truncateRunes(v, 80))
		}
	}
	return strings.Join(parts, " ")
}

func truncateRunes(s string, n int) string {
	r := []rune(s)
	if len(r) <= n {
		return s
	}
	return string(r[:n]) + "…"
}

// fmtDur prints a duration with a precision that suits spans (µs below a millisecond, 0.1 ms below a second).
func fmtDur(d time.Duration) string {
	switch {
	case d < time.Millisecond:
		return fmt.Sprintf("%dµs", d.Microseconds())
	case d < time.Second:
		return fmt.Sprintf("%.1fms", float64(d.Microseconds())/1000)
	default:
		return d.Round(time.Millisecond).String()
	}
}

// printTraceMessages lists the RocketMQ messages the trace's consumer spans processed (messaging.message.id, with
// the topic and keys), in start order, so the message trace of each is one `tide mq trace ID` away.
func printTraceMessages(w io.Writer, spans []traceapi.Span) {
	ss := append([]traceapi.Span(nil), spans...)
	sort.SliceStable(ss, func(i, j int) bool { return ss[i].Start.Before(ss[j].Start) })
	seen := map[string]bool{}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	n := 0
	for _, s := range ss {
		id := s.Attributes["messaging.message.id"]
		if id == "" || seen[id] {
			continue
		}
		seen[id] = true
		if n == 0 {
			fmt.Fprintln(w, "messages (their RocketMQ message trace: tide mq trace ID)")
		}
		n++
		line := "  message " + truncateRunes(id, 64) + "\ttopic " + truncateRunes(s.Attributes["messaging.destination.name"], 80)
		if k := s.Attributes["messaging.rocketmq.message.keys"]; k != "" {
			var ks []string // a string-slice attribute is held as its JSON array
			if json.Unmarshal([]byte(k), &ks) == nil {
				k = strings.Join(ks, " ")
			}
			line += "\tkeys " + truncateRunes(k, 80)
		} else {
			line += "\t-"
		}
		fmt.Fprintln(tw, line)
	}
	_ = tw.Flush()
}
