package cli

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/tide-run/tide/controlplane/client"
)

func newWaitCommand(g *globals) *cobra.Command {
	var forCond string
	var timeout time.Duration
	cmd := &cobra.Command{
		Use:   "wait KIND NAME --for=condition=Ready",
		Short: "Wait until a resource has a condition, or is deleted",
		Long: `Wait until a resource has a condition (--for=condition=Ready, --for=condition=Ready=False) or is gone
(--for=delete), following changes with a watch. Exits 1 when --timeout passes first.`,
		Example: `  tide wait ksvc hello --for=condition=Ready --timeout=60s
  tide wait ksvc/hello --for=condition=Ready
  tide wait broker default --for=delete`,
		Args: cobra.RangeArgs(1, 2),
		RunE: func(cmd *cobra.Command, args []string) error {
			kindName, name := args[0], ""
			if len(args) == 2 {
				name = args[1]
			} else if k, n, ok := strings.Cut(kindName, "/"); ok {
				kindName, name = k, n
			} else {
				return fmt.Errorf("give KIND NAME or KIND/NAME")
			}
			check, err := parseFor(forCond)
			if err != nil {
				return err
			}
			c, k, err := g.clientFor(cmd.Context(), kindName)
			if err != nil {
				return err
			}
			ctx, cancel := context.WithTimeout(cmd.Context(), timeout)
			defer cancel()
			if err := waitFor(ctx, c, k, g.ns(), name, check); err != nil {
				if errors.Is(err, context.DeadlineExceeded) {
					return fmt.Errorf("timed out waiting for the condition on %s/%s", k.Plural, name)
				}
				return err
			}
			msg := "condition met"
			if forCond == "delete" {
				msg = "deleted"
			}
			fmt.Fprintf(cmd.OutOrStdout(), "%s/%s %s\n", qualified(k), name, msg)
			return nil
		},
	}
	cmd.Flags().StringVar(&forCond, "for", "", "condition=TYPE[=STATUS] or delete")
	cmd.Flags().DurationVar(&timeout, "timeout", 30*time.Second, "how long to wait")
	_ = cmd.MarkFlagRequired("for")
	return cmd
}

// check reports whether the object (nil when it does not exist) satisfies the wait.
type check func(o *unstructured.Unstructured) bool

func parseFor(s string) (check, error) {
	if s == "delete" {
		return func(o *unstructured.Unstructured) bool { return o == nil }, nil
	}
	rest, ok := strings.CutPrefix(s, "condition=")
	if !ok || rest == "" {
		return nil, fmt.Errorf("--for must be condition=TYPE[=STATUS] or delete, got %q", s)
	}
	typ, want, ok := strings.Cut(rest, "=")
	if !ok {
		want = "True"
	}
	return func(o *unstructured.Unstructured) bool {
		if o == nil {
			return false
		}
		st, _, _, found := condition(o, typ)
		return found && strings.EqualFold(st, want)
	}, nil
}

// waitFor gets the object and then follows its changes until ok holds or ctx ends. A watch that ends early is
// resumed with a fresh get.
func waitFor(ctx context.Context, c *client.Client, k client.Kind, ns, name string, ok check) error {
	for {
		o, err := c.Get(ctx, k, ns, name)
		switch {
		case client.IsNotFound(err):
			o = nil
		case err != nil:
			if ctx.Err() != nil {
				return ctx.Err()
			}
			return err
		}
		if ok(o) {
			return nil
		}
		rv := ""
		if o != nil {
			rv = o.GetResourceVersion()
		}
		ch, err := c.Watch(ctx, k, ns, client.ListOptions{ResourceVersion: rv})
		if client.IsGone(err) && rv != "" {
			// The object's version predates the server's watch history (it was last written before a restart):
			// watch from now, which starts with the current objects.
			ch, err = c.Watch(ctx, k, ns, client.ListOptions{})
			if err == nil {
				// That watch starts with the objects as they are now, so a change between the get above and the
				// watch (the object deleted, its last finalizer gone) would never show: look again now that the
				// watch is open, and follow the watch only if that still does not satisfy ok.
				o, err := c.Get(ctx, k, ns, name)
				if client.IsNotFound(err) {
					o, err = nil, nil
				}
				if err == nil && ok(o) {
					return nil
				}
			}
		}
		if err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			return err
		}
		for e := range ch {
			if e.Object.GetName() != name {
				continue
			}
			obj := e.Object
			if e.Type == "DELETED" {
				obj = nil
			}
			if ok(obj) {
				return nil
			}
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
	}
}
