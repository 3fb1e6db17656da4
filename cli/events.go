package cli

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"sort"
	"strings"

	"github.com/spf13/cobra"
)

func newEventsCommand(g *globals) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "events",
		Short: "Watch the events flowing through Brokers",
	}
	cmd.AddCommand(newEventsTailCommand(g))
	return cmd
}

func newEventsTailCommand(g *globals) *cobra.Command {
	var broker, output string
	var limit int
	cmd := &cobra.Command{
		Use:   "tail --broker NAME",
		Short: "Print the CloudEvents entering a Broker, as they arrive",
		Long: `Print every CloudEvent stored in a Broker from now on (after the ingress stamped it), one per line:
time, type, source, id and data. The tail reads the Broker's RocketMQ topic in a consumer group of its own, so it
never takes events from a Trigger. -o json prints each event in the CloudEvents JSON format. Stop with Ctrl-C, or
--limit N to exit after N events.`,
		Example: `  tide events tail --broker default
  tide events tail --broker orders -n shop -o json --limit 10`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if broker == "" {
				return errors.New("--broker is required")
			}
			if output != "" && output != "json" {
				return fmt.Errorf("-o %q: expected json or nothing", output)
			}
			c, err := g.client()
			if err != nil {
				return err
			}
			ctx, cancel := context.WithCancel(cmd.Context())
			defer cancel()
			body, err := c.TailBrokerEvents(ctx, g.ns(), broker)
			if err != nil {
				return err
			}
			defer body.Close()
			fmt.Fprintf(cmd.ErrOrStderr(), "tailing broker %s/%s\n", g.ns(), broker)
			return printEvents(cmd.OutOrStdout(), body, output == "json", limit)
		},
	}
	cmd.Flags().StringVar(&broker, "broker", "", "name of the Broker (required)")
	cmd.Flags().StringVarP(&output, "output", "o", "", "json: print each event as CloudEvents JSON")
	cmd.Flags().IntVar(&limit, "limit", 0, "exit after this many events (0: until interrupted)")
	return cmd
}

// printEvents copies the tail stream to out, one line per event.
func printEvents(out io.Writer, body io.Reader, asJSON bool, limit int) error {
	sc := bufio.NewScanner(body)
	sc.Buffer(make([]byte, 64<<10), 8<<20)
	n := 0
	for sc.Scan() {
		line := sc.Bytes()
		if len(strings.TrimSpace(string(line))) == 0 {
			continue
		}
		if asJSON {
			fmt.Fprintln(out, string(line))
		} else {
			fmt.Fprintln(out, eventLine(line))
		}
		n++
		if limit > 0 && n >= limit {
			return nil
		}
	}
	if err := sc.Err(); err != nil && !errors.Is(err, context.Canceled) {
		return err
	}
	return nil
}

// eventLine renders one structured CloudEvent as "time type source id [ext=v ...] data".
func eventLine(js []byte) string {
	var m map[string]any
	if err := json.Unmarshal(js, &m); err != nil {
		return string(js)
	}
	str := func(k string) string {
		if v, ok := m[k]; ok {
			return fmt.Sprint(v)
		}
		return "-"
	}
	when := str("time")
	if when == "-" {
		when = str("knativearrivaltime") // stamped by the ingress on every stored event
	}
	parts := []string{when, str("type"), str("source"), "id=" + str("id")}
	if s, ok := m["subject"]; ok {
		parts = append(parts, "subject="+fmt.Sprint(s))
	}
	known := map[string]bool{"specversion": true, "id": true, "type": true, "source": true, "time": true, "subject": true,
		"data": true, "data_base64": true, "datacontenttype": true, "dataschema": true}
	var exts []string
	for k, v := range m {
		if !known[k] {
			exts = append(exts, k+"="+fmt.Sprint(v))
		}
	}
	sort.Strings(exts)
	parts = append(parts, exts...)
	if d, ok := m["data"]; ok {
		b, _ := json.Marshal(d)
		parts = append(parts, string(b))
	} else if d, ok := m["data_base64"]; ok {
		parts = append(parts, "base64:"+fmt.Sprint(d))
	}
	return strings.Join(parts, "  ")
}
