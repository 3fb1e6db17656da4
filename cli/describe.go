package cli

import (
	"fmt"
	"io"
	"sort"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/yaml"

	"github.com/tide-run/tide/controlplane/client"
)

func newDescribeCommand(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "describe KIND NAME",
		Short: "Show a resource in detail: metadata, spec, status conditions and owned resources",
		Example: `  tide describe ksvc hello
  tide describe trigger order-trigger -n food`,
		Args: cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := g.client()
			if err != nil {
				return err
			}
			k, err := c.ResolveKind(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			o, err := c.Get(cmd.Context(), k, g.ns(), args[1])
			if err != nil {
				return err
			}
			describe(cmd.OutOrStdout(), k, o)
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
	for _, section := range sortedKeys(rest) {
		fmt.Fprintf(out, "%s:\n", titleCase(section))
		writeIndentedYAML(out, rest[section])
	}
	status, _ := o.Object["status"].(map[string]any)
	fmt.Fprintln(out, "Status:")
	if len(status) == 0 {
		fmt.Fprintln(out, "  <none>")
		return
	}
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
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = k + "=" + m[k]
	}
	return strings.Join(parts, "\n\t")
}

func sortedKeys(m map[string]any) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
