package cli

import (
	"errors"
	"fmt"
	"io"
	"runtime/debug"

	"github.com/spf13/cobra"
)

// Version is the release version printed by `tide version`; release builds set it with -ldflags. Left at "dev",
// `tide version` prints the module version and VCS stamp the go command recorded instead (see versionLine).
var Version = "dev"

// exitError carries a process exit code through cobra, the way kubectl distinguishes usage errors (1) from others.
type exitError struct {
	code int
	err  error
}

func (e *exitError) Error() string { return e.err.Error() }
func (e *exitError) Unwrap() error { return e.err }

// NewRootCommand builds the whole command tree with the given streams, so tests can run it in-process.
func NewRootCommand(in io.Reader, out, errOut io.Writer) *cobra.Command {
	root := &cobra.Command{
		Use:   "tide",
		Short: "Event-driven serverless on RocketMQ and Knative, in one binary",
		Long: "tide runs Knative Services, Brokers, Triggers and RocketMQSources on one machine, with an embedded RocketMQ broker.\n\n" +
			"Environment:\n" +
			"  TIDE_SERVER                  address of the tide API for the client commands\n" +
			"  TIDE_TOKEN                   the API token (in <data-dir>/api-token) for the client commands\n" +
			"  TIDE_CA_FILE                 CA certificate of a tide API served over https (tide up --tls-cert-file)\n" +
			"  TIDE_GC_FLOOR                heap size before the Go garbage collector first runs (default 256MiB, at\n" +
			"                               most a quarter of a container memory limit; off: collect as GOGC says);\n" +
			"                               fewer collections keep event latency low. GOGC or GOMEMLIMIT in the\n" +
			"                               environment turn the floor off\n" +
			"  TIDE_RELEASE_STARTUP_PAGES   off: keep the executable's start-up pages resident in tide up / tide broker",
		Example: `  tide up                                   # run the platform in the foreground
  tide apply -f service.yaml -f trigger.yaml  # in another terminal
  tide get ksvc
  tide wait ksvc hello --for=condition=Ready --timeout=60s
  TIDE_SERVER=http://10.0.0.5:8090 tide get triggers -A`,
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.SetIn(in)
	root.SetOut(out)
	root.SetErr(errOut)
	g := &globals{in: in}
	root.PersistentFlags().StringVar(&g.server, "server", "", "address of the tide API (default $TIDE_SERVER or "+defaultServer+")")
	root.PersistentFlags().StringVar(&g.token, "token", "",
		"the tide API's token (default $TIDE_TOKEN, else the token file of a local tide's data dir, $TIDE_DATA_DIR or ./.tide)")
	root.PersistentFlags().StringVar(&g.caFile, "certificate-authority", "",
		"CA certificate (PEM) of a tide API served over https (default $"+CAFileEnv+")")
	root.PersistentFlags().StringVarP(&g.namespace, "namespace", "n", "", "namespace of the request (default \"default\")")
	root.AddCommand(newVersionCommand())
	root.AddCommand(newUpCommand(g), newApplyCommand(g), newGetCommand(g), newDescribeCommand(g), newDeleteCommand(g),
		newPatchCommand(g), newWaitCommand(g), newLogsCommand(g))
	root.AddCommand(newBrokerCommand(), newEventsCommand(g), newTraceCommand(g))
	root.AddCommand(newMQCommand(), newBenchCommand())
	root.AddCommand(newDemoCommand(g))
	root.AddCommand(newAdapterCommand(nil))
	root.AddCommand(newControllerCommand())
	return root
}

func newVersionCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "Print the tide version",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			info, ok := debug.ReadBuildInfo()
			_, err := fmt.Fprintln(cmd.OutOrStdout(), versionLine(Version, info, ok))
			return err
		},
	}
}

// Main runs the command line and returns the process exit code.
func Main(args []string, in io.Reader, out, errOut io.Writer) int {
	root := NewRootCommand(in, out, errOut)
	root.SetArgs(args)
	if err := root.Execute(); err != nil {
		if msg := formatError(err); msg != "" {
			fmt.Fprintln(errOut, msg)
		}
		var ee *exitError
		if errors.As(err, &ee) {
			return ee.code
		}
		return 1
	}
	return 0
}
