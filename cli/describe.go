package cli

import (
	"context"
	"fmt"
	"io"
	"maps"
	"slices"
	"sort"
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

func newDescribeCommand(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "describe KIND NAME",
		Short: "Show a resource in detail: metadata, spec, status conditions and owned resources",
		Example: `  tide describe ksvc hello
  tide describe trigger order-trigger -n food`,
		Args: func(cmd *cobra.Command, args []string) error {
			return cobra.ExactArgs(2)(cmd, splitKindName(args))
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			args = splitKindName(args)
			c, k, err := g.clientFor(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			o, err := c.Get(cmd.Context(), k, g.ns(), args[1])
			if err != nil {
				return err
			}
			describe(cmd.OutOrStdout(), k, o)
			describeRevisions(cmd.Context(), cmd.OutOrStdout(), c, k, o)
			describeEvents(cmd.Context(), cmd.OutOrStdout(), c, o, time.Now())
			return nil
		},
	}
}

func describe(out io.Writer, k client.Kind, o *unstructured.Unstructured) {
	tw := tabwriter.NewWriter(out, 0, 8, 2, ' ', 0)
	fmt.Fprintf(tw, "Name:\t%s\n", o.GetName())
	if k.Namespaced {
		fmt.Fprintf(tw, "Namespace:\t%s\n", o.GetNamespace())
	}
	fmt.Fprintf(tw, "Labels:\t%s\n", mapLines(o.GetLabels()))
	fmt.Fprintf(tw, "Annotations:\t%s\n", mapLines(o.GetAnnotations()))
	fmt.Fprintf(tw, "API Version:\t%s\n", o.GetAPIVersion())
	fmt.Fprintf(tw, "Kind:\t%s\n", o.GetKind())
	fmt.Fprintf(tw, "Created:\t%s\n", o.GetCreationTimestamp().UTC().Format("2006-01-02T15:04:05Z"))
	fmt.Fprintf(tw, "Generation:\t%d\n", o.GetGeneration())
	fmt.Fprintf(tw, "Resource Version:\t%s\n", o.GetResourceVersion())
	fmt.Fprintf(tw, "UID:\t%s\n", o.GetUID())
	for _, ref := range o.GetOwnerReferences() {
		fmt.Fprintf(tw, "Controlled By:\t%s/%s\n", ref.Kind, ref.Name)
	}
	if !k.ActedOn {
		fmt.Fprintf(tw, "Note:\ttide stores this kind but does not act on it\n")
	}
	_ = tw.Flush()

	rest := map[string]any{}
	for key, v := range o.Object {
		switch key {
		case "apiVersion", "kind", "metadata", "status":
		default:
			rest[key] = v
		}
	}
	if k.Kind == "Secret" {
		if d, ok := rest["data"].(map[string]any); ok {
			masked := map[string]any{}
			for key, v := range d {
				masked[key] = fmt.Sprintf("<%d bytes, base64>", len(fmt.Sprint(v)))
			}
			rest["data"] = masked
		}
	}
	for _, section := range slices.Sorted(maps.Keys(rest)) {
		fmt.Fprintf(out, "%s:\n", titleCase(section))
		writeIndentedYAML(out, rest[section])
	}
	status, _ := o.Object["status"].(map[string]any)
	fmt.Fprintln(out, "Status:")
	if len(status) == 0 {
		fmt.Fprintln(out, "  <none>")
		return
	}
	delete(status, "annotations")
	other := map[string]any{}
	for key, v := range status {
		if key != "conditions" {
			other[key] = v
		}
	}
	if len(other) > 0 {
		writeIndentedYAML(out, other)
	}
	conds, _ := status["conditions"].([]any)
	if len(conds) > 0 {
		fmt.Fprintln(out, "Conditions:")
		ctw := tabwriter.NewWriter(out, 0, 8, 2, ' ', 0)
		fmt.Fprintln(ctw, "  Type\tStatus\tLastTransitionTime\tReason\tMessage")
		fmt.Fprintln(ctw, "  ----\t------\t------------------\t------\t-------")
		for _, c := range conds {
			m, _ := c.(map[string]any)
			fmt.Fprintf(ctw, "  %v\t%v\t%v\t%v\t%v\n", m["type"], m["status"], orEmpty(m["lastTransitionTime"]), orEmpty(m["reason"]), orEmpty(m["message"]))
		}
		_ = ctw.Flush()
	}
}

func orEmpty(v any) string {
	if v == nil {
		return ""
	}
	return fmt.Sprint(v)
}

func writeIndentedYAML(out io.Writer, v any) {
	b, err := yaml.Marshal(v)
	if err != nil {
		fmt.Fprintf(out, "  <%v>\n", err)
		return
	}
	for _, line := range strings.Split(strings.TrimRight(string(b), "\n"), "\n") {
		fmt.Fprintf(out, "  %s\n", line)
	}
}

func titleCase(s string) string {
	if s == "" {
		return s
	}
	return strings.ToUpper(s[:1]) + s[1:]
}

func mapLines(m map[string]string) string {
	if len(m) == 0 {
		return "<none>"
	}
	keys := slices.Sorted(maps.Keys(m))
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = k + "=" + m[k]
	}
	return strings.Join(parts, "\n\t")
}

// describeEvents prints the events recorded about o, oldest first, kubectl style.
func describeEvents(ctx context.Context, out io.Writer, c *client.Client, o *unstructured.Unstructured, now time.Time) {
	ns := o.GetNamespace()
	if ns == "" {
		ns = "default"
	}
	evKind, err := c.ResolveKind(ctx, "events")
	if err != nil {
		return
	}
	evs, _, err := c.List(ctx, evKind, ns, client.ListOptions{})
	if err != nil {
		return
	}
	var mine []*unstructured.Unstructured
	for _, e := range evs {
		if uid, _, _ := unstructured.NestedString(e.Object, "involvedObject", "uid"); uid == string(o.GetUID()) {
			mine = append(mine, e)
		}
	}
	if len(mine) == 0 {
		fmt.Fprintln(out, "Events:  <none>")
		return
	}
	sort.SliceStable(mine, func(i, j int) bool {
		ti, tj := str(mine[i], "lastTimestamp"), str(mine[j], "lastTimestamp")
		if ti != tj {
			return ti < tj
		}
		ri, _ := strconv.ParseUint(mine[i].GetResourceVersion(), 10, 64)
		rj, _ := strconv.ParseUint(mine[j].GetResourceVersion(), 10, 64)
		return ri < rj
	})
	fmt.Fprintln(out, "Events:")
	tw := tabwriter.NewWriter(out, 0, 8, 2, ' ', 0)
	fmt.Fprintln(tw, "  Type\tReason\tAge\tFrom\tMessage")
	fmt.Fprintln(tw, "  ----\t------\t---\t----\t-------")
	for _, e := range mine {
		when := "<unknown>"
		if t, err := time.Parse(time.RFC3339, str(e, "lastTimestamp")); err == nil {
			when = duration.HumanDuration(now.Sub(t))
		}
		if n, _, _ := unstructured.NestedInt64(e.Object, "count"); n > 1 {
			if first, err := time.Parse(time.RFC3339, str(e, "firstTimestamp")); err == nil {
				when = fmt.Sprintf("%s (x%d over %s)", when, n, duration.HumanDuration(now.Sub(first)))
			}
		}
		fmt.Fprintf(tw, "  %s\t%s\t%s\t%s\t%s\n", str(e, "type"), str(e, "reason"), when, str(e, "source", "component"), str(e, "message"))
	}
	_ = tw.Flush()
}

// describeRevisions lists the Revisions of a Service or Configuration, newest first, with their readiness.
func describeRevisions(ctx context.Context, out io.Writer, c *client.Client, k client.Kind, o *unstructured.Unstructured) {
	var selector string
	switch {
	case k.Group == "serving.knative.dev" && k.Kind == "Service":
		selector = "serving.knative.dev/service=" + o.GetName()
	case k.Group == "serving.knative.dev" && k.Kind == "Configuration":
		selector = "serving.knative.dev/configuration=" + o.GetName()
	default:
		return
	}
	revKind, err := c.ResolveKind(ctx, "revisions.serving.knative.dev")
	if err != nil {
		return
	}
	revs, _, err := c.List(ctx, revKind, o.GetNamespace(), client.ListOptions{LabelSelector: selector})
	if err != nil || len(revs) == 0 {
		return
	}
	sort.SliceStable(revs, func(i, j int) bool { return revs[i].GetName() > revs[j].GetName() })
	fmt.Fprintln(out, "Revisions:")
	tw := tabwriter.NewWriter(out, 0, 8, 2, ' ', 0)
	fmt.Fprintln(tw, "  Name\tGeneration\tReady\tReason")
	for _, r := range revs {
		st, reason, _, _ := condition(r, "Ready")
		fmt.Fprintf(tw, "  %s\t%s\t%s\t%s\n", r.GetName(), r.GetLabels()["serving.knative.dev/configurationGeneration"], st, reason)
	}
	_ = tw.Flush()
}
