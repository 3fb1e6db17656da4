package cli

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/tide-run/tide/controlplane/client"
)

func newLogsCommand(g *globals) *cobra.Command {
	var opts client.LogOptions
	var prefix bool
	cmd := &cobra.Command{
		Use:   "logs SERVICE",
		Short: "Print the output of a Knative Service's instances",
		Long: `Print what the instances (processes) of a Knative Service wrote to stdout and stderr, oldest first, from
every revision or only --revision. -f keeps following new lines (also of instances and revisions started later)
until interrupted. The lines come from the API (GET .../services/SERVICE/log); tide keeps the newest 1000 lines
per revision in memory and every line in DATA_DIR/logs/<namespace>/<revision>/<instance>.log.`,
		Example: `  tide logs hello
  tide logs hello -f
  tide logs hello --revision hello-00002 --tail 20
  tide logs order-service -n food --prefix`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := g.client()
			if err != nil {
				return err
			}
			out := cmd.OutOrStdout()
			return c.ServiceLogs(cmd.Context(), g.ns(), args[0], opts, func(l client.LogLine) {
				if prefix {
					fmt.Fprintf(out, "[%s] %s\n", l.Instance, l.Text)
				} else {
					fmt.Fprintln(out, l.Text)
				}
			})
		},
	}
	f := cmd.Flags()
	f.BoolVarP(&opts.Follow, "follow", "f", false, "stream new lines until interrupted")
	f.StringVar(&opts.Revision, "revision", "", "only this revision's instances")
	f.StringVar(&opts.Instance, "instance", "", "only the instance `NAME` (as listed by tide get rev -o wide)")
	f.IntVar(&opts.TailLines, "tail", 0, "only the newest N lines (default: all kept, up to 1000)")
	f.BoolVar(&prefix, "prefix", false, "prefix each line with its instance")
	return cmd
}
