package cli

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"

	"github.com/spf13/cobra"
)

// benchBinary is the separate binary that holds tide's benchmarks. tide does not link the benchmark peers (NATS's
// server), so `tide bench ...` runs tide-bench when it stands beside this executable or on PATH.
const benchBinary = "tide-bench"

// benchInstall tells a user without tide-bench how to get it.
const benchInstall = "tide bench runs the separate tide-bench binary (kept out of tide so that tide does not carry the\n" +
	"benchmark peers, such as NATS's server). Get it beside tide or on PATH:\n" +
	"  go build -o tide-bench ./cmd/tide-bench              # in a clone of tide, next to ./tide\n" +
	"  go install github.com/tide-run/tide/cmd/tide-bench@VERSION\n" +
	"or run it straight from a clone: go run ./cmd/tide-bench mq --help"

func newBenchCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "bench [mq ...]",
		Short: "Run benchmarks against a peer, side by side in the same run (through tide-bench)",
		Long: "Run tide's benchmarks: `tide bench mq` compares the embedded RocketMQ broker with NATS JetStream\n" +
			"(docs/BENCHMARKS.md). The benchmarks live in the separate tide-bench binary; tide bench runs it with the\n" +
			"same arguments (and this tide as --tide-binary for the startup measurement) when it stands beside tide\n" +
			"or on PATH.\n\n" + benchInstall,
		Example: `  tide bench mq --peers rocketmq,jetstream
  tide bench mq --help                 # tide-bench's flags`,
		DisableFlagParsing: true,
		RunE: func(cmd *cobra.Command, args []string) error {
			bin, err := findBenchBinary()
			if err != nil {
				if len(args) == 0 || slices.Contains(args, "--help") || slices.Contains(args, "-h") {
					return cmd.Help()
				}
				return &exitError{code: 2, err: fmt.Errorf("%w\n%s", err, benchInstall)}
			}
			if len(args) > 0 && args[0] == "mq" && !slices.ContainsFunc(args, func(a string) bool {
				return a == "--no-startup" || a == "--tide-binary" || strings.HasPrefix(a, "--tide-binary=")
			}) {
				if exe, err := os.Executable(); err == nil {
					args = append(slices.Clone(args), "--tide-binary", exe)
				}
			}
			c := exec.CommandContext(cmd.Context(), bin, args...)
			c.Stdin, c.Stdout, c.Stderr = cmd.InOrStdin(), cmd.OutOrStdout(), cmd.ErrOrStderr()
			if err := c.Run(); err != nil {
				var ee *exec.ExitError
				if errors.As(err, &ee) && ee.ExitCode() > 0 {
					return &exitError{code: ee.ExitCode(), err: silentError{n: 1}}
				}
				return fmt.Errorf("running %s: %w", bin, err)
			}
			return nil
		},
	}
}

// findBenchBinary finds tide-bench beside this executable (a release unpacks both together), else on PATH.
func findBenchBinary() (string, error) {
	if exe, err := os.Executable(); err == nil {
		p := filepath.Join(filepath.Dir(exe), benchBinary)
		if st, err := os.Stat(p); err == nil && st.Mode().IsRegular() && st.Mode()&0o111 != 0 {
			return p, nil
		}
	}
	p, err := exec.LookPath(benchBinary)
	if err != nil {
		return "", fmt.Errorf("%s not found beside tide or on PATH", benchBinary)
	}
	return p, nil
}
