package cli

import (
	"encoding/json"
	"fmt"
	"io"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/util/duration"
	"sigs.k8s.io/yaml"

	"github.com/tide-run/tide/controlplane/client"
)

func newGetCommand(g *globals) *cobra.Command {
	var output, selector string
	var all, watch bool
	cmd := &cobra.Command{
		Use:   "get [KIND [NAME...]]",
		Short: "List resources, or show some by name",
		Long: `List resources of a kind, or the named ones, with kubectl's columns. KIND is a plural, singular or short
name (ksvc, kservice, rev, route, rt, config, cfg, broker, trigger, rocketmqsource, secret, cm), optionally
qualified by its group (services.serving.knative.dev). Without a kind, lists the kinds the server knows; a
category (all, knative, serving, eventing, sources) lists every kind in it, as kubectl get all does.

-o json and -o yaml print the objects with their status exactly as the API holds them; -o name prints kind/name;
-o wide adds AGE and the Ready message.`,
		Example: `  tide get
  tide get all
  tide get ksvc
  tide get ksvc hello -o json
  tide get rev -l serving.knative.dev/service=hello
  tide get triggers -A -o wide`,
		Args: cobra.ArbitraryArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if len(args) == 0 {
				return printKinds(cmd, g)
			}
			args = splitKindName(args)
			switch output {
			case "", "wide", "yaml", "json", "name":
			default:
				return fmt.Errorf("unable to match a printer suitable for the output format %q, allowed formats are: json,name,wide,yaml", output)
			}
			if len(args) == 1 && !watch && (output == "" || output == "wide" || output == "name") {
				c, err := g.client()
				if err != nil {
					return err
				}
				cat, err := categoryKinds(cmd.Context(), c, args[0])
				if err != nil {
					return err
				}
				if len(cat) > 0 {
					return getCategory(cmd, g, c, cat, client.ListOptions{AllNamespaces: all, LabelSelector: selector}, output)
				}
			}
			c, k, err := g.clientFor(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			var objs []*unstructured.Unstructured
			var listRV string
			single := len(args) == 2
			if watch && len(args) > 2 {
				return fmt.Errorf("watch is only supported on one resource or a list")
			}
			if len(args) > 1 {
				for _, name := range args[1:] {
					o, err := c.Get(cmd.Context(), k, g.ns(), name)
					if err != nil {
						return err
					}
					objs = append(objs, o)
				}
			} else {
				objs, listRV, err = c.List(cmd.Context(), k, g.ns(), client.ListOptions{AllNamespaces: all, LabelSelector: selector})
				if err != nil {
					return err
				}
			}
			out := cmd.OutOrStdout()
			if watch {
				return watchRows(cmd, c, k, g.ns(), objs, listRV, single, client.ListOptions{AllNamespaces: all, LabelSelector: selector},
					output, all && k.Namespaced)
			}
			switch output {
			case "json", "yaml":
				var v any
				if single {
					v = objs[0].Object
				} else {
					items := make([]any, 0, len(objs))
					for _, o := range objs {
						items = append(items, o.Object)
					}
					v = map[string]any{"apiVersion": "v1", "kind": "List", "items": items, "metadata": map[string]any{"resourceVersion": ""}}
				}
				return printStructured(out, output, v)
			case "name":
				for _, o := range objs {
					fmt.Fprintf(out, "%s/%s\n", qualified(k), o.GetName())
				}
				return nil
			}
			if len(objs) == 0 {
				if all || !k.Namespaced {
					fmt.Fprintln(cmd.ErrOrStderr(), "No resources found")
				} else {
					fmt.Fprintf(cmd.ErrOrStderr(), "No resources found in %s namespace.\n", g.ns())
				}
				return nil
			}
			printTable(out, k, objs, all && k.Namespaced, output == "wide", time.Now())
			return nil
		},
	}
	cmd.Flags().StringVarP(&output, "output", "o", "", "output format: wide, yaml, json or name")
	cmd.Flags().BoolVarP(&all, "all-namespaces", "A", false, "list across all namespaces")
	cmd.Flags().StringVarP(&selector, "selector", "l", "", "label selector (e.g. serving.knative.dev/service=hello)")
	cmd.Flags().BoolVarP(&watch, "watch", "w", false, "after listing, print each change as it happens (until interrupted)")
	return cmd
}

// watchRows prints the current objects, then one row (or object) per change, as kubectl get -w does.
func watchRows(cmd *cobra.Command, c *client.Client, k client.Kind, ns string, objs []*unstructured.Unstructured,
	rv string, single bool, opts client.ListOptions, output string, withNamespace bool) error {
	out := cmd.OutOrStdout()
	name := ""
	if single {
		name = objs[0].GetName()
		rv = objs[0].GetResourceVersion()
	}
	emit := func(list []*unstructured.Unstructured, header bool) error {
		switch output {
		case "json", "yaml":
			for _, o := range list {
				if err := printStructured(out, output, o.Object); err != nil {
					return err
				}
			}
		case "name":
			for _, o := range list {
				fmt.Fprintf(out, "%s/%s\n", qualified(k), o.GetName())
			}
		default:
			printRows(out, k, list, withNamespace, output == "wide", time.Now(), header)
		}
		return nil
	}
	if err := emit(objs, true); err != nil {
		return err
	}
	opts.ResourceVersion = rv
	ch, err := c.Watch(cmd.Context(), k, ns, opts)
	if err != nil {
		return err
	}
	for e := range ch {
		if name != "" && e.Object.GetName() != name {
			continue
		}
		if err := emit([]*unstructured.Unstructured{e.Object}, false); err != nil {
			return err
		}
	}
	return nil
}

func printStructured(out io.Writer, format string, v any) error {
	if format == "json" {
		b, err := json.MarshalIndent(v, "", "    ")
		if err != nil {
			return err
		}
		_, err = fmt.Fprintln(out, string(b))
		return err
	}
	b, err := yaml.Marshal(v)
	if err != nil {
		return err
	}
	_, err = out.Write(b)
	return err
}

type column struct {
	header string
	value  func(o *unstructured.Unstructured, now time.Time) string
}

// fieldColumn shows the field at path, or nothing where it is unset.
func fieldColumn(header string, path ...string) column {
	return column{header, func(o *unstructured.Unstructured, _ time.Time) string { return str(o, path...) }}
}

// jsonColumn shows the JSON of the value at path, as kubectl prints a list in a printer column (["a","b"]).
func jsonColumn(header string, path ...string) column {
	return column{header, func(o *unstructured.Unstructured, _ time.Time) string {
		v, found, err := unstructured.NestedFieldNoCopy(o.Object, path...)
		if !found || err != nil {
			return ""
		}
		b, err := json.Marshal(v)
		if err != nil {
			return ""
		}
		return string(b)
	}}
}

// labelColumn shows the value of label key.
func labelColumn(header, key string) column {
	return column{header, func(o *unstructured.Unstructured, _ time.Time) string { return o.GetLabels()[key] }}
}

func str(o *unstructured.Unstructured, path ...string) string {
	v, found, err := unstructured.NestedFieldNoCopy(o.Object, path...)
	if !found || err != nil || v == nil {
		return ""
	}
	return fmt.Sprint(v)
}

// condition returns the status, reason and message of the condition of type t.
func condition(o *unstructured.Unstructured, t string) (status, reason, message string, ok bool) {
	conds, _, _ := unstructured.NestedSlice(o.Object, "status", "conditions")
	for _, c := range conds {
		m, _ := c.(map[string]any)
		if m["type"] == t {
			s, _ := m["status"].(string)
			r, _ := m["reason"].(string)
			msg, _ := m["message"].(string)
			return s, r, msg, true
		}
	}
	return "", "", "", false
}

func age(o *unstructured.Unstructured, now time.Time) string {
	ts := o.GetCreationTimestamp()
	if ts.IsZero() {
		return "<unknown>"
	}
	return duration.HumanDuration(now.Sub(ts.Time))
}

var (
	colName          = column{"NAME", func(o *unstructured.Unstructured, _ time.Time) string { return o.GetName() }}
	colAge           = column{"AGE", age}
	colURL           = fieldColumn("URL", "status", "url")
	colReady         = column{"READY", func(o *unstructured.Unstructured, _ time.Time) string { s, _, _, _ := condition(o, "Ready"); return s }}
	colReason        = column{"REASON", func(o *unstructured.Unstructured, _ time.Time) string { _, r, _, _ := condition(o, "Ready"); return r }}
	colLatestCreated = fieldColumn("LATESTCREATED", "status", "latestCreatedRevisionName")
	colLatestReady   = fieldColumn("LATESTREADY", "status", "latestReadyRevisionName")
	colAddress       = fieldColumn("URL", "status", "address", "url")
	colData          = column{"DATA", func(o *unstructured.Unstructured, _ time.Time) string {
		d, _, _ := unstructured.NestedMap(o.Object, "data")
		b, _, _ := unstructured.NestedMap(o.Object, "binaryData")
		return fmt.Sprint(len(d) + len(b))
	}}
)

// columnsFor returns kubectl's columns for a kind (the additionalPrinterColumns of Knative's CRDs).
func columnsFor(k client.Kind) []column {
	switch k.Group + "/" + k.Kind {
	case "serving.knative.dev/Service":
		return []column{colName, colURL, colLatestCreated, colLatestReady, colReady, colReason}
	case "serving.knative.dev/Configuration":
		return []column{colName, colLatestCreated, colLatestReady, colReady, colReason}
	case "serving.knative.dev/Revision":
		return []column{colName,
			labelColumn("CONFIG NAME", "serving.knative.dev/configuration"),
			labelColumn("GENERATION", "serving.knative.dev/configurationGeneration"),
			colReady, colReason,
			fieldColumn("ACTUAL REPLICAS", "status", "actualReplicas"),
			fieldColumn("DESIRED REPLICAS", "status", "desiredReplicas")}
	case "serving.knative.dev/Route":
		return []column{colName, colURL, colReady, colReason}
	case "eventing.knative.dev/Broker":
		return []column{colName, colAddress, colAge, colReady, colReason}
	case "eventing.knative.dev/Trigger":
		return []column{colName,
			fieldColumn("BROKER", "spec", "broker"),
			fieldColumn("SUBSCRIBER_URI", "status", "subscriberUri"),
			colAge, colReady, colReason}
	case "sources.knative.dev/RocketMQSource", "sources.eventing.knative.dev/RocketMQSource":
		return []column{colName,
			fieldColumn("SINK", "status", "sinkUri"),
			colAge, colReady, colReason}
	case "sources.knative.dev/KafkaSource":
		return []column{colName, jsonColumn("TOPICS", "spec", "topics"), jsonColumn("BOOTSTRAPSERVERS", "spec", "bootstrapServers"),
			colReady, colReason, colAge}
	case "/Secret":
		return []column{colName,
			fieldColumn("TYPE", "type"),
			colData, colAge}
	case "/Event":
		return []column{
			{"LAST SEEN", func(o *unstructured.Unstructured, now time.Time) string {
				t, err := time.Parse(time.RFC3339, str(o, "lastTimestamp"))
				if err != nil {
					return "<unknown>"
				}
				return duration.HumanDuration(now.Sub(t))
			}},
			fieldColumn("TYPE", "type"),
			fieldColumn("REASON", "reason"),
			{"OBJECT", func(o *unstructured.Unstructured, _ time.Time) string {
				return strings.ToLower(str(o, "involvedObject", "kind")) + "/" + str(o, "involvedObject", "name")
			}},
			fieldColumn("MESSAGE", "message"),
		}
	case "/ConfigMap":
		return []column{colName, colData, colAge}
	}
	return []column{colName, colAge}
}

func printTable(out io.Writer, k client.Kind, objs []*unstructured.Unstructured, withNamespace, wide bool, now time.Time) {
	printRows(out, k, objs, withNamespace, wide, now, true)
}

// printRows prints objs as a table, with the header line when header is set. Column widths are computed per call,
// so a watch's rows align only with themselves, as kubectl's do.
func printRows(out io.Writer, k client.Kind, objs []*unstructured.Unstructured, withNamespace, wide bool, now time.Time, header bool) {
	cols := columnsFor(k)
	if withNamespace {
		cols = append([]column{{"NAMESPACE", func(o *unstructured.Unstructured, _ time.Time) string { return o.GetNamespace() }}}, cols...)
	}
	if wide {
		cols = append(cols, wideColumnsFor(k)...)
		hasAge := false
		for _, c := range cols {
			hasAge = hasAge || c.header == "AGE"
		}
		if !hasAge {
			cols = append(cols, colAge)
		}
		if k.Kind == "Trigger" || k.Kind == "RocketMQSource" || k.Kind == "KafkaSource" {
			// Delivery counters the eventing runtime keeps in status.deliveryStats (this process's lifetime).
			cols = append(cols, statsColumn("DELIVERED", "delivered"), statsColumn("RETRIED", "retried"),
				statsColumn("DEAD-LETTERED", "deadLettered"))
		}
		cols = append(cols, column{"MESSAGE", func(o *unstructured.Unstructured, _ time.Time) string {
			_, _, m, _ := condition(o, "Ready")
			return m
		}})
	}
	tw := tabwriter.NewWriter(out, 6, 4, 3, ' ', 0)
	headers := make([]string, len(cols))
	for i, c := range cols {
		headers[i] = c.header
	}
	if header {
		fmt.Fprintln(tw, strings.Join(headers, "\t"))
	}
	for _, o := range objs {
		vals := make([]string, len(cols))
		for i, c := range cols {
			vals[i] = c.value(o, now)
		}
		fmt.Fprintln(tw, strings.Join(vals, "\t"))
	}
	_ = tw.Flush()
}

func statsColumn(header, field string) column {
	return column{header, func(o *unstructured.Unstructured, _ time.Time) string {
		v, _, _ := unstructured.NestedFieldNoCopy(o.Object, "status", "deliveryStats", field)
		switch n := v.(type) {
		case float64: // JSON numbers decode as float64; print 1000000, not 1e+06
			return strconv.FormatInt(int64(n), 10)
		case int64:
			return strconv.FormatInt(n, 10)
		}
		return "0"
	}}
}

// wideColumnsFor adds what -o wide shows beyond the default columns (which for Revisions end with Knative's actual
// and desired replicas, as its CRD prints them): for Revisions, tide's status.tide (processes running or starting, observed concurrency / per-instance target,
// containerConcurrency, whether the activator is in the request path).
func wideColumnsFor(k client.Kind) []column {
	if k.Group+"/"+k.Kind != "serving.knative.dev/Revision" {
		return nil
	}
	return []column{
		{"PROCESSES", func(o *unstructured.Unstructured, _ time.Time) string {
			return dash(str(o, "status", "tide", "processes"))
		}},
		{"CONCURRENCY", func(o *unstructured.Unstructured, _ time.Time) string {
			c, t := str(o, "status", "tide", "concurrency"), str(o, "status", "tide", "target")
			if c == "" {
				return "-"
			}
			return c + "/" + t
		}},
		{"CC", func(o *unstructured.Unstructured, _ time.Time) string {
			return dash(str(o, "status", "tide", "containerConcurrency"))
		}},
		{"ACTIVATOR", func(o *unstructured.Unstructured, _ time.Time) string {
			switch str(o, "status", "tide", "activatorInPath") {
			case "true":
				return "in-path"
			case "false":
				return "-"
			}
			return ""
		}},
	}
}
