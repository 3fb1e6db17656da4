package cli

import (
	"context"
	"fmt"
	"time"

	"github.com/spf13/cobra"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/tide-run/tide/controlplane/client"
)

func newApplyCommand(g *globals) *cobra.Command {
	var files []string
	var recursive bool
	cmd := &cobra.Command{
		Use:   "apply -f FILE|DIR|-",
		Short: "Create or update resources from YAML or JSON manifests",
		Long: `Create or update resources from manifests, as kubectl apply does: multi-document YAML or JSON, files,
directories (their .yaml, .yml and .json files; with -R also those of every directory below) or - for stdin;
-f can be repeated.

Each object is reported on its own line: created, configured or unchanged. A document that is invalid (unknown
field, failed validation) is reported with its file, document number (from 1) and field path, is not stored, and
makes the command exit 1; the other documents are still applied. Kinds tide stores but does not act on
(ServiceAccount, ClusterRoleBinding, ...) are accepted with a warning.`,
		Example: `  tide apply -f service.yaml
  tide apply -f 200-serviceaccount.yaml -f 203-secret.yaml -f broker.yaml -f trigger.yaml
  tide apply -f ./deploy/
  tide apply -R -f ./deploy/     # and every directory below deploy/
  cat service.yaml | tide apply -f -`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if len(files) == 0 {
				return fmt.Errorf("must specify one of -f")
			}
			c, err := g.client()
			if err != nil {
				return err
			}
			docs, err := client.ReadManifestsRecursive(files, g.in, recursive)
			if err != nil {
				return err
			}
			if len(docs) == 0 {
				return fmt.Errorf("no objects passed to apply")
			}
			out, errOut := cmd.OutOrStdout(), cmd.ErrOrStderr()
			failed := 0
			for _, d := range docs {
				if d.Err != nil {
					fmt.Fprintf(errOut, "error: error parsing %q (document %d): %v\n", d.Source, d.Index, d.Err)
					failed++
					continue
				}
				if g.namespace != "" && d.Object.GetNamespace() != "" && d.Object.GetNamespace() != g.namespace {
					fmt.Fprintf(errOut, "error: %s: the namespace from the provided object %q does not match the namespace %q. You must pass '--namespace=%s' to perform this operation.\n",
						d.Where(), d.Object.GetNamespace(), g.namespace, d.Object.GetNamespace())
					failed++
					continue
				}
				annotateSourceDir(d.Object)
				res, err := c.Apply(cmd.Context(), d.Object, g.ns())
				if err != nil {
					fmt.Fprintln(errOut, formatError(fmt.Errorf("error when applying %q (document %d): %w", d.Source, d.Index, err)))
					failed++
					continue
				}
				for _, w := range res.Warnings {
					fmt.Fprintf(errOut, "Warning: %s\n", w)
				}
				fmt.Fprintf(out, "%s %s\n", res.Describe(), res.Action)
			}
			if failed > 0 {
				return silentError{failed}
			}
			return nil
		},
	}
	cmd.Flags().StringArrayVarP(&files, "filename", "f", nil, "file, directory or - (stdin) with manifests; repeatable")
	cmd.Flags().BoolVarP(&recursive, "recursive", "R", false, "also read the manifests of every directory below a -f directory")
	return cmd
}

func newDeleteCommand(g *globals) *cobra.Command {
	var files []string
	var ignoreNotFound, wait bool
	var timeout time.Duration
	cmd := &cobra.Command{
		Use:   "delete (-f FILE | KIND NAME...)",
		Short: "Delete resources (and everything they own)",
		Long: `Delete resources by kind and names, or those named in manifests. Deletion cascades to owned objects:
deleting a Service deletes its Configuration, Route and Revisions. An object with finalizers (Brokers and
Triggers carry Knative's, so their RocketMQ topic or consumer group is deleted first) is only marked with
metadata.deletionTimestamp and goes once its finalizers are removed; like kubectl, the command waits for that
(--wait=false returns at once; tide wait KIND NAME --for=delete waits later).`,
		Example: `  tide delete ksvc hello
  tide delete -f bundle/
  tide delete trigger order-trigger -n food
  tide delete broker default --wait=false`,
		RunE: func(cmd *cobra.Command, args []string) error {
			args = splitKindName(args)
			c, err := g.client()
			if err != nil {
				return err
			}
			type target struct {
				kind      client.Kind
				namespace string
				name      string
			}
			var targets []target
			switch {
			case len(files) > 0 && len(args) > 0:
				return fmt.Errorf("give either -f or KIND NAME, not both")
			case len(files) > 0:
				docs, err := client.ReadManifests(files, g.in)
				if err != nil {
					return err
				}
				for _, d := range docs {
					if d.Err != nil {
						return fmt.Errorf("%s: %w", d.Where(), d.Err)
					}
					k, err := c.KindFor(cmd.Context(), d.Object.GetAPIVersion(), d.Object.GetKind())
					if err != nil {
						return fmt.Errorf("%s: %w", d.Where(), err)
					}
					ns := d.Object.GetNamespace()
					if ns == "" {
						ns = g.ns()
					}
					targets = append(targets, target{k, ns, d.Object.GetName()})
				}
			case len(args) >= 2:
				k, err := c.ResolveKind(cmd.Context(), args[0])
				if err != nil {
					return err
				}
				for _, name := range args[1:] {
					targets = append(targets, target{k, g.ns(), name})
				}
			default:
				return fmt.Errorf("you must provide -f FILE or KIND NAME")
			}
			failed := 0
			type held struct {
				target
				obj *unstructured.Unstructured
			}
			var marked []held // deleted objects that finalizers keep for now
			for _, t := range targets {
				obj, err := c.Delete(cmd.Context(), t.kind, t.namespace, t.name)
				if client.IsNotFound(err) && ignoreNotFound {
					continue
				}
				if err != nil {
					fmt.Fprintln(cmd.ErrOrStderr(), formatError(err))
					failed++
					continue
				}
				fmt.Fprintf(cmd.OutOrStdout(), "%s %q deleted\n", qualified(t.kind), t.name)
				if obj != nil && obj.GetDeletionTimestamp() != nil {
					marked = append(marked, held{t, obj})
				}
			}
			// Like kubectl delete --wait: return once the objects are gone, that is once their finalizers ran.
			if wait {
				ctx, cancel := context.WithTimeout(cmd.Context(), timeout)
				defer cancel()
				for _, h := range marked {
					uid := h.obj.GetUID()
					gone := func(o *unstructured.Unstructured) bool { return o == nil || o.GetUID() != uid }
					if err := waitFor(ctx, c, h.kind, h.namespace, h.name, gone); err != nil {
						fmt.Fprintf(cmd.ErrOrStderr(), "error: %s %q is still being deleted after %v (finalizers %v); --wait=false returns at once\n",
							qualified(h.kind), h.name, timeout, h.obj.GetFinalizers())
						failed++
					}
				}
			}
			if failed > 0 {
				return silentError{failed}
			}
			return nil
		},
	}
	cmd.Flags().StringArrayVarP(&files, "filename", "f", nil, "file, directory or - with the manifests to delete")
	cmd.Flags().BoolVar(&ignoreNotFound, "ignore-not-found", false, "treat a missing object as deleted")
	cmd.Flags().BoolVar(&wait, "wait", true, "wait until objects held by finalizers are gone")
	cmd.Flags().DurationVar(&timeout, "timeout", 60*time.Second, "how long --wait waits")
	return cmd
}

// qualified is kubectl's singular.group spelling ("service.serving.knative.dev").
func qualified(k client.Kind) string {
	if k.Group == "" {
		return k.Singular
	}
	return k.Singular + "." + k.Group
}
