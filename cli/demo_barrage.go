package cli

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/tide-run/tide/demo/barrage/play"
	"github.com/tide-run/tide/server"
)

func newBarrageDemoCommand(g *globals) *cobra.Command {
	opts := play.Options{}
	platform := server.DefaultOptions()
	platform.DataDir = play.DefaultDataDir
	var logLevel string
	cmd := &cobra.Command{
		Use:   "barrage",
		Short: "Run seed 003's bullet-comment service: a page, RocketMQ, a Broker and a processor that scales to zero",
		Long: `Run seed 003's barrage (bullet-comment) service end to end.

Uses the tide at --server when its /readyz answers; otherwise starts one in this process on the default ports with
its data in --data-dir (default ./.tide-demo). Creates the RocketMQ topic barrage-info, applies examples/barrage (the
seed's two Services with only their images changed to ko:// paths, a RocketMQSource, a Broker and a Trigger, plus a
short config-autoscaler) through the API, waits for every resource to be Ready (the first build of the two programs
takes a minute or two) and prints the page's URL.

With --send it drives the page's own send path headlessly (what its Send button does): --concurrency senders
publish --count comments (default one per sender per second) over --duration, while it follows the page's event
stream as the page does. It prints the summary: comments sent, processed, shown, dead-lettered, lost, end-to-end
latency p50/p99, the processor's peak instances and whether it went back to zero; and writes summary.txt in --out.
Exit status 0 only when no comment was lost.

With --kafka host:port the queue is that Kafka cluster, as in the seed: the demo creates the topic there, the page
publishes to Kafka, and a KafkaSource (examples/barrage/kafka) reads it into the Broker instead of the RocketMQSource.

Without --send, or with --keep, a tide the demo started keeps running until Ctrl-C, so the page can be used in a
browser. Run it inside the tide source tree: the programs are built from their ko:// import paths there.`,
		Example: `  tide demo barrage                                  # then open the printed page URL and press Send
  tide demo barrage --send hello --concurrency 20 --duration 30s
  tide demo barrage --send "弹幕 hello" --concurrency 10 --duration 10s --count 200
  tide demo barrage --kafka 127.0.0.1:9092 --send hello   # the seed's queue: Kafka and a KafkaSource`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			logger, err := demoLogger(cmd, logLevel)
			if err != nil {
				return err
			}
			switch {
			case opts.Concurrency < 1 || opts.Concurrency > 100:
				return fmt.Errorf("--concurrency %d: between 1 and 100", opts.Concurrency)
			case opts.Duration <= 0 || opts.Duration > 4*time.Minute:
				return fmt.Errorf("--duration %v: more than 0 and at most 4m", opts.Duration)
			case opts.Count < 0:
				return fmt.Errorf("--count %d: must not be negative", opts.Count)
			}
			opts.Server = g.server
			if opts.Server == "" {
				opts.Server = os.Getenv(ServerEnv)
			}
			opts.Token = g.token
			if opts.Token == "" {
				opts.Token = os.Getenv(server.TokenEnv)
			}
			if opts.Send == "" {
				opts.Keep = true // nothing to show without the page staying up
			}
			platform.Logger = logger
			opts.Platform = &platform
			opts.Logger = logger
			opts.Progress = cmd.OutOrStdout()
			ctx, stop := signal.NotifyContext(cmd.Context(), syscall.SIGINT, syscall.SIGTERM)
			defer stop()
			return runBarrageDemo(ctx, cmd, opts)
		},
	}
	f := cmd.Flags()
	f.StringVar(&opts.Send, "send", "", "comment text to send through the page (without it the demo only deploys and prints the page URL)")
	f.IntVar(&opts.Concurrency, "concurrency", 10, "senders at once (1-100)")
	f.DurationVar(&opts.Duration, "duration", 10*time.Second, "how long the send lasts (at most 4m)")
	f.IntVar(&opts.Count, "count", 0, "comments to send over the duration (default one per sender per second)")
	f.StringVar(&opts.OutDir, "out", play.DefaultOutDir, "directory for summary.txt and the table's barrage.db")
	f.BoolVar(&opts.Keep, "keep", false, "leave a tide the demo started running after the send, until Ctrl-C")
	f.StringVar(&opts.Kafka, "kafka", "", "put the queue on this Kafka (host:port,...), as the seed does: the page publishes to Kafka and a KafkaSource feeds the Broker")
	f.StringSliceVar(&opts.NameServers, "namesrv", nil, "RocketMQ name server of a running tide (default "+play.DefaultNameServer+")")
	f.DurationVar(&opts.ReadyTimeout, "ready-timeout", play.DefaultReadyWait, "how long to wait for the bundle to be Ready")
	demoPlatformFlags(f, &platform, &logLevel)
	return cmd
}

func runBarrageDemo(ctx context.Context, cmd *cobra.Command, opts play.Options) error {
	out := cmd.OutOrStdout()
	res, err := play.Run(ctx, opts)
	if err != nil {
		return err
	}
	if res.Sent {
		fmt.Fprintln(out)
		if err := res.Summary.WriteText(out); err != nil {
			return err
		}
		fmt.Fprintf(out, "\nsummary: %s\n", rel(res.SummaryPath))
	}
	if !res.Started || res.Platform != nil {
		fmt.Fprintf(out, "page: %s\n", res.PageURL)
	}
	if res.Platform != nil {
		fmt.Fprintln(out, "tide keeps running; Ctrl-C stops it")
		<-ctx.Done()
		sctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if err := res.Platform.Shutdown(sctx); err != nil {
			return fmt.Errorf("shutdown: %w", err)
		}
	}
	if res.Sent && res.Summary.Sent == 0 {
		return &exitError{code: 1, err: fmt.Errorf("barrage demo: the page could not publish any comment (%d failed)", res.Summary.NotSent)}
	}
	if res.Sent && !res.Summary.OK() {
		return &exitError{code: 1, err: fmt.Errorf("barrage demo: %d comments lost", res.Summary.Lost)}
	}
	return nil
}
