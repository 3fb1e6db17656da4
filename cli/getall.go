package cli

import (
	"context"
	"fmt"
	"slices"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/tide-run/tide/controlplane/client"
)

// printKinds is `tide get` without a kind: the kinds the server knows, as `kubectl api-resources` lists them.
func printKinds(cmd *cobra.Command, g *globals) error {
	c, err := g.client()
	if err != nil {
		return err
	}
	kinds, err := c.Kinds(cmd.Context())
	if err != nil {
		return err
	}
	tw := tabwriter.NewWriter(cmd.OutOrStdout(), 6, 4, 3, ' ', 0)
	fmt.Fprintln(tw, "NAME\tSHORTNAMES\tAPIVERSION\tNAMESPACED\tKIND\tCATEGORIES")
	for _, k := range kinds {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%t\t%s\t%s\n", k.Plural, join(k.ShortNames), k.APIVersion(), k.Namespaced, k.Kind, join(k.Categories))
	}
	_ = tw.Flush()
	fmt.Fprintln(cmd.ErrOrStderr(), "\nUse `tide get KIND` to list the objects of one kind, `tide get all` for every Knative kind.")
	return nil
}

func join(s []string) string {
	out := ""
	for i, x := range s {
		if i > 0 {
			out += ","
		}
		out += x
	}
	return out
}

// categoryKinds returns the kinds in category name when name is a category and not a kind (all, knative,
// serving, eventing, sources), else nil.
func categoryKinds(ctx context.Context, c *client.Client, name string) ([]client.Kind, error) {
	if _, err := c.ResolveKind(ctx, name); err == nil {
		return nil, nil
	}
	kinds, err := c.Kinds(ctx)
	if err != nil {
		return nil, err
	}
	var out []client.Kind
	for _, k := range kinds {
		if slices.Contains(k.Categories, name) {
			out = append(out, k)
		}
	}
	return out, nil
}

// getCategory prints every kind of a category, one table per kind with its objects named kind.group/name, as
// `kubectl get all` does; kinds without objects are left out.
func getCategory(cmd *cobra.Command, g *globals, c *client.Client, kinds []client.Kind, opts client.ListOptions, output string) error {
	out := cmd.OutOrStdout()
	printed := false
	for _, k := range kinds {
		objs, _, err := c.List(cmd.Context(), k, g.ns(), opts)
		if err != nil {
			return err
		}
		if len(objs) == 0 {
			continue
		}
		named := make([]*unstructured.Unstructured, len(objs))
		for i, o := range objs {
			named[i] = o.DeepCopy()
			named[i].SetName(qualified(k) + "/" + o.GetName())
		}
		if output == "name" {
			for _, o := range named {
				fmt.Fprintln(out, o.GetName())
			}
			continue
		}
		if printed {
			fmt.Fprintln(out)
		}
		printTable(out, k, named, opts.AllNamespaces && k.Namespaced, output == "wide", time.Now())
		printed = true
	}
	if !printed && output != "name" {
		if opts.AllNamespaces {
			fmt.Fprintln(cmd.ErrOrStderr(), "No resources found")
		} else {
			fmt.Fprintf(cmd.ErrOrStderr(), "No resources found in %s namespace.\n", g.ns())
		}
	}
	return nil
}
