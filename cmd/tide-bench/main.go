// Command tide-bench runs tide's benchmarks against their peers, side by side in the same run: `tide-bench mq` drives
// the embedded RocketMQ broker and an embedded NATS JetStream server with the same load (docs/BENCHMARKS.md).
//
// It is a binary of its own so that the shipping binary, tide, does not carry the peers (NATS's server alone is
// 16 packages): `go list -deps ./cmd/tide` has no NATS package, and internal/archtest checks it. `tide bench ...`
// runs this binary when it stands beside tide or on PATH. Like tide, it installs the garbage collector's heap floor
// (internal/gcfloor), because its in-process broker peer should behave as tide's does.
package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"

	"github.com/spf13/cobra"

	"github.com/tide-run/tide/internal/gcfloor"
)

// exitError carries a process exit code through cobra: 2 for usage errors, as tide's commands do.
type exitError struct {
	code int
	err  error
}

func (e *exitError) Error() string { return e.err.Error() }
func (e *exitError) Unwrap() error { return e.err }

func usageErr(format string, args ...any) error {
	return &exitError{code: 2, err: fmt.Errorf(format, args...)}
}

func main() {
	if _, err := gcfloor.InstallFromEnv(); err != nil {
		fmt.Fprintf(os.Stderr, "tide-bench: %v\n", err)
		os.Exit(2)
	}
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

// run runs the command line with the given streams (tests run it in-process) and returns the exit code.
func run(args []string, out, errOut io.Writer) int {
	root := newRootCommand(out, errOut)
	root.SetArgs(args)
	if err := root.Execute(); err != nil {
		fmt.Fprintln(errOut, "error: "+err.Error())
		var ee *exitError
		if errors.As(err, &ee) {
			return ee.code
		}
		return 1
	}
	return 0
}

func newRootCommand(out, errOut io.Writer) *cobra.Command {
	root := &cobra.Command{
		Use:   "tide-bench",
		Short: "Run tide's benchmarks against a peer, side by side in the same run",
		Long: "tide-bench runs tide's benchmarks against their peers in one process and one run, so the numbers are\n" +
			"comparable on the machine they were measured on. `tide bench ...` runs it when it stands beside tide or on PATH.",
		Example: `  tide-bench mq --peers rocketmq,jetstream
  go run ./cmd/tide-bench mq --help`,
		Args: cobra.ArbitraryArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if len(args) > 0 {
				return usageErr("unknown command %q for %q (see %s --help)", args[0], cmd.CommandPath(), cmd.CommandPath())
			}
			return cmd.Help()
		},
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.SetOut(out)
	root.SetErr(errOut)
	root.AddCommand(newMQCommand())
	return root
}

// findTide finds the tide binary whose `tide broker` the startup measurement execs: the one beside this executable
// (a release unpacks both together; `tide bench` passes its own path), else the first on PATH.
func findTide() (string, error) {
	if exe, err := os.Executable(); err == nil {
		p := filepath.Join(filepath.Dir(exe), "tide")
		if st, err := os.Stat(p); err == nil && st.Mode().IsRegular() && st.Mode()&0o111 != 0 {
			return p, nil
		}
	}
	if p, err := exec.LookPath("tide"); err == nil {
		return p, nil
	}
	return "", errors.New("the startup measurement execs `tide broker`, and no tide binary stands beside tide-bench or on PATH: " +
		"build one (go build -o /tmp/tide ./cmd/tide) and pass --tide-binary /tmp/tide, or skip it with --no-startup")
}
