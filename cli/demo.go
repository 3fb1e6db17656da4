package cli

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"
	"time"

	"github.com/apache/rocketmq-client-go/v2/rlog"
	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/tide-run/tide/demo/fooddelivery/play"
	"github.com/tide-run/tide/server"
)

func newDemoCommand(g *globals) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "demo",
		Short: "Run a demonstration application end to end",
	}
	cmd.AddCommand(newFoodDeliveryDemoCommand(g))
	cmd.AddCommand(newBarrageDemoCommand(g))
	return cmd
}

func newFoodDeliveryDemoCommand(g *globals) *cobra.Command {
	opts := play.Options{}
	platform := server.DefaultOptions()
	platform.DataDir = play.DefaultDataDir
	var logLevel string
	cmd := &cobra.Command{
		Use:   "food-delivery",
		Short: "Play a compressed day of food orders through RocketMQ, a Broker and an autoscaled order service",
		Long: `Run the seed's food-delivery application end to end and show the effect.

Uses the tide at --server when its /readyz answers; otherwise starts one in this process on the default ports with
its data in --data-dir (default ./.tide-demo, apart from tide up's ./.tide). Applies the bundle of
examples/food-delivery (and a short config-autoscaler) through the API, waits for every resource to be Ready
(the first build of the ko:// order service takes a minute or two), then produces a compressed day of orders
(breakfast, lunch and dinner peaks) into RocketMQ and waits until every order is stored or dead-lettered and the
order service has scaled to zero.

It prints the summary (orders sent, processed, duplicates ignored, dead-lettered, lost, latency, peak instances,
seconds to scale to zero) and writes summary.txt and effect.svg (instances against orders per second) into --out.
Exit status 0 only when no order was lost. A tide the demo started is stopped at the end, unless --keep leaves it
running for the dashboard (then Ctrl-C stops it). Run it inside the tide source tree: the order service is built
from its ko:// import path there.`,
		Example: `  tide demo food-delivery
  tide demo food-delivery --day 1m --peak-rate 100 --out /tmp/fd
  tide demo food-delivery --keep          # then open the printed dashboard URL`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			logger, err := demoLogger(cmd, logLevel)
			if err != nil {
				return err
			}
			if opts.DayLength < 0 {
				return fmt.Errorf("--day %v: must be positive", opts.DayLength)
			}
			if opts.PeakRate < 0 {
				return fmt.Errorf("--peak-rate %v: must be positive", opts.PeakRate)
			}
			opts.Server = g.server
			if opts.Server == "" {
				opts.Server = os.Getenv(ServerEnv)
			}
			opts.Token = g.token
			if opts.Token == "" {
				opts.Token = os.Getenv(server.TokenEnv)
			}
			platform.Logger = logger
			opts.Platform = &platform
			opts.Logger = logger
			opts.Progress = cmd.OutOrStdout()
			ctx, stop := signal.NotifyContext(cmd.Context(), syscall.SIGINT, syscall.SIGTERM)
			defer stop()
			return runFoodDeliveryDemo(ctx, cmd, opts)
		},
	}
	f := cmd.Flags()
	f.DurationVar(&opts.DayLength, "day", 0, "wall time of the compressed day (default 3m)")
	f.Float64Var(&opts.PeakRate, "peak-rate", 0, "orders per second at the lunch peak (default 200)")
	f.IntVar(&opts.MalformedEvery, "malformed-every", 0, "make every n-th order malformed, to show dead-lettering")
	f.StringVar(&opts.OutDir, "out", play.DefaultOutDir, "directory for summary.txt, effect.svg and orders.db")
	f.BoolVar(&opts.Keep, "keep", false, "leave a tide the demo started running (for the dashboard) until Ctrl-C")
	f.StringSliceVar(&opts.NameServers, "namesrv", nil, "RocketMQ name server of a running tide (default "+play.DefaultNameServer+")")
	f.DurationVar(&opts.ReadyTimeout, "ready-timeout", play.DefaultReadyWait, "how long to wait for the bundle to be Ready")
	demoPlatformFlags(f, &platform, &logLevel)
	return cmd
}

func runFoodDeliveryDemo(ctx context.Context, cmd *cobra.Command, opts play.Options) error {
	out := cmd.OutOrStdout()
	res, err := play.Run(ctx, opts)
	if err != nil {
		return err
	}
	fmt.Fprintln(out)
	if err := res.Report.Summary.WriteText(out); err != nil {
		return err
	}
	if res.Report.SummaryPath != "" {
		fmt.Fprintf(out, "\nsummary: %s\nchart:   %s\n", rel(res.Report.SummaryPath), rel(res.Report.ChartPath))
	}
	if !res.Started || res.Platform != nil { // a tide the demo started and stopped has no dashboard left to visit
		fmt.Fprintf(out, "dashboard: %s\n", res.DashboardURL)
	}
	if res.Platform != nil {
		fmt.Fprintln(out, "tide keeps running (--keep); Ctrl-C stops it")
		<-ctx.Done()
		sctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if err := res.Platform.Shutdown(sctx); err != nil {
			return fmt.Errorf("shutdown: %w", err)
		}
	}
	if !res.Report.Summary.OK() {
		return &exitError{code: 1, err: fmt.Errorf("food-delivery demo: %d orders lost", res.Report.Summary.Lost)}
	}
	return nil
}

// rel shortens path relative to the working directory when it is below it.
func rel(path string) string {
	wd, err := os.Getwd()
	if err != nil {
		return path
	}
	if r, err := filepath.Rel(wd, path); err == nil && !filepath.IsAbs(r) && len(r) < len(path) && r[0] != '.' {
		return r
	}
	return path
}

// demoPlatformFlags are the flags of a tide a demo starts itself (when none answers at --server).
func demoPlatformFlags(f *pflag.FlagSet, platform *server.Options, logLevel *string) {
	f.StringVar(&platform.DataDir, "data-dir", platform.DataDir, "data directory of a tide the demo starts")
	f.IntVar(&platform.APIPort, "api-port", platform.APIPort, "API and dashboard port of a tide the demo starts")
	f.IntVar(&platform.GatewayPort, "gateway-port", platform.GatewayPort, "gateway port of a tide the demo starts")
	f.IntVar(&platform.NameServerPort, "namesrv-port", platform.NameServerPort, "RocketMQ name server port of a tide the demo starts")
	f.IntVar(&platform.BrokerPort, "broker-port", platform.BrokerPort, "RocketMQ broker port of a tide the demo starts")
	f.IntVar(&platform.GRPCPort, "grpc-port", platform.GRPCPort, "RocketMQ 5 gRPC endpoint port of a tide the demo starts (-1: none)")
	f.StringVar(logLevel, "log-level", "warn", "log level of a tide the demo starts: debug, info, warn, error")
}

// demoLogger is the logger of a tide a demo starts, at --log-level.
func demoLogger(cmd *cobra.Command, logLevel string) (*slog.Logger, error) {
	var level slog.Level
	if err := level.UnmarshalText([]byte(logLevel)); err != nil {
		return nil, fmt.Errorf("--log-level %q: %w", logLevel, err)
	}
	if level > slog.LevelDebug {
		// The official RocketMQ client logs route changes and client shutdowns at info level to stdout; the demo's
		// progress lines are what it shows. (The client's logger is process-wide.)
		rlog.SetLogLevel("error")
	}
	return slog.New(slog.NewTextHandler(cmd.ErrOrStderr(), &slog.HandlerOptions{Level: level})), nil
}
