package main

import (
	"errors"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"runtime/pprof"
	"syscall"
	"time"

	"github.com/apache/rocketmq-client-go/v2/rlog"
	rmq "github.com/apache/rocketmq-clients/golang/v5"
	"github.com/spf13/cobra"

	"github.com/tide-run/tide/mq/bench"
)

func newMQCommand() *cobra.Command {
	var (
		o         bench.Options
		flush     string
		dataDir   string
		noStartup bool
		binary    string
		cpuProf   string
		memProf   string
	)
	cmd := &cobra.Command{
		Use:   "mq",
		Short: "Benchmark the embedded RocketMQ broker against NATS JetStream",
		Long: "Run tide's embedded broker (official RocketMQ Go client) and an embedded NATS JetStream server (file storage,\n" +
			"nats.go client) in this process, one after the other, with the same body size, number of concurrent\n" +
			"synchronous senders and flush policy. Per peer: a peak phase (messages/s, send latency p50/p99/p99.9), then\n" +
			"two phases paced at half of that peak: producers only (send latency), then with a push consumer attached\n" +
			"(send latency, produce-to-consume latency).\n" +
			"Then it execs `tide broker` (the tide binary beside tide-bench, else on PATH, or --tide-binary) on free ports to measure its ready time and idle RSS, and its RSS again after\n" +
			"--startup-load messages were sent to it and consumed. Results depend on the machine's load, which the\n" +
			"report prints.\n\n" +
			"Optional peers: rocketmq-remoting (tide's broker driven by tide's own client, one write per frame) and\n" +
			"rocketmq-null (the official client against a broker that answers every send at once and stores nothing:\n" +
			"the most any broker can reach with that client on this machine; no consumer phase).\n" +
			"With a JDK and Maven (and from a source checkout): apache (Apache RocketMQ 5.5.0 on a JVM, the official Go\n" +
			"client; its ready time and the JVMs' RSS are reported too), rocketmq-java and apache-java (tide's broker and\n" +
			"Apache with Apache's official Java client, mq/bench/java/Load.java running the same phases in a JVM).\n" +
			"RocketMQ 5 (gRPC): rocketmq5 (tide's gRPC endpoint) and, with a JDK and Maven, apache5 (Apache's proxy), both\n" +
			"with the official Go 5.x client (rocketmq-clients/golang v5.1.4) and its push consumer.",
		Example: `  tide-bench mq                                # 3 interleaved rounds of 5 s phases, 32 senders, 1 KiB bodies, async flush
  tide-bench mq --messages 200000              # a fixed count instead of a duration
  tide-bench mq --flush sync --duration 20s
  go run ./cmd/tide-bench mq --peers rocketmq --no-startup
  go build -o /tmp/tide ./cmd/tide && go run ./cmd/tide-bench mq --tide-binary /tmp/tide
  tide-bench mq --peers rocketmq-null,rocketmq,jetstream --no-startup   # with the official client's ceiling
  tide bench mq                                # the same through tide, when tide-bench is beside it or on PATH
  tide-bench mq --peers rocketmq,apache,rocketmq-java,apache-java   # tide against Apache with both official clients
  tide-bench mq --peers rocketmq5,apache5 --no-startup                # the Go 5.x client (gRPC) on tide and on Apache's proxy`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			switch flush {
			case "async":
			case "sync":
				o.Sync = true
			default:
				return usageErr("--flush %q: want async or sync", flush)
			}
			if !noStartup {
				if binary == "" {
					exe, err := findTide()
					if err != nil {
						return &exitError{code: 2, err: err}
					}
					binary = exe
				}
				o.TideBinary = binary
			}
			if dataDir == "" {
				d, err := os.MkdirTemp("", "tide-bench-mq-")
				if err != nil {
					return err
				}
				defer os.RemoveAll(d)
				dataDir = d
			}
			o.DataDir = dataDir
			if o.StartupLoad == 0 {
				o.StartupLoad = -1 // bench.Options reads 0 as the default
			}
			o.Progress = cmd.ErrOrStderr()
			rlog.SetLogLevel("error") // the RocketMQ client's logger is process-global
			quiet5xClient()
			ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			if cpuProf != "" {
				f, err := os.Create(cpuProf)
				if err != nil {
					return fmt.Errorf("--cpuprofile: %w", err)
				}
				defer f.Close()
				if err := pprof.StartCPUProfile(f); err != nil {
					return fmt.Errorf("--cpuprofile: %w", err)
				}
				defer pprof.StopCPUProfile()
			}
			rep, err := bench.Run(ctx, o)
			if memProf != "" {
				if werr := writeAllocProfile(memProf); werr != nil {
					return werr
				}
			}
			if err != nil {
				if errorsIsBadOptions(err) {
					return &exitError{code: 2, err: err}
				}
				return err
			}
			return rep.WriteText(cmd.OutOrStdout())
		},
	}
	f := cmd.Flags()
	f.DurationVar(&o.Duration, "duration", 5*time.Second, "length of each phase (ignored with --messages)")
	f.IntVar(&o.Rounds, "rounds", 3, "run the peers this many times, interleaved, and report medians")
	f.IntVar(&o.Messages, "messages", 0, "messages in the peak phase instead of a duration (the half-load phase sends half)")
	f.IntVar(&o.Senders, "senders", 32, "concurrent synchronous senders")
	f.Float64Var(&o.HalfRate, "half-rate", 0, "pace every peer's second phase at this many msgs/s (default: half of each peer's own peak)")
	f.IntVar(&o.Connections, "connections", 1, "client connections per peer (RocketMQ producer instances, NATS connections); sender i uses connection i mod N")
	f.IntVar(&o.BodySize, "body-size", 1024, "message body size in bytes")
	f.StringVar(&flush, "flush", "async", "async (fsync every 500 ms on both peers) or sync (answer after fsync on both)")
	f.StringSliceVar(&o.Peers, "peers", []string{bench.PeerRocketMQ, bench.PeerJetStream}, "peers to run, in order: rocketmq, jetstream, rocketmq-remoting, rocketmq-null, apache (Apache RocketMQ 5.5.0 on a JVM), rocketmq-java, apache-java (the official Java client), rocketmq5, apache5 (the Go 5.x client over gRPC); apache, rocketmq-java, apache-java and apache5 need a JDK and Maven")
	f.StringVar(&dataDir, "data-dir", "", "where the peers store data (default a temporary directory, removed afterwards)")
	f.BoolVar(&noStartup, "no-startup", false, "skip the tide broker ready-time and idle-RSS measurement")
	f.StringVar(&binary, "tide-binary", "", "tide binary to exec for the startup measurement (default: tide beside this executable, else on PATH)")
	f.StringVar(&memProf, "memprofile", "", "write an allocation profile of the whole run to this file (go tool pprof -sample_index=alloc_space)")
	f.StringVar(&cpuProf, "cpuprofile", "", "write a CPU profile of the whole run (clients and servers share the process) to this file")
	f.IntVar(&o.StartupRuns, "startup-runs", 5, "how many times to start tide broker for the ready time")
	f.IntVar(&o.StartupLoad, "startup-load", 20000, "messages sent to (and consumed from) the started tide broker after its idle RSS reading, then its RSS is read again (0: skip)")
	return cmd
}

func errorsIsBadOptions(err error) bool { return errors.Is(err, bench.ErrBadOptions) }

// writeAllocProfile writes the heap profile, whose alloc_space/alloc_objects samples cover every allocation since
// the process started.
func writeAllocProfile(path string) error {
	f, err := os.Create(path)
	if err != nil {
		return fmt.Errorf("--memprofile: %w", err)
	}
	defer f.Close()
	if err := pprof.Lookup("allocs").WriteTo(f, 0); err != nil {
		return fmt.Errorf("--memprofile: %w", err)
	}
	return nil
}

// quiet5xClient sends the Go 5.x client's log (process-global, written to ~/logs/rocketmq at info level from its
// init) to a temporary directory at error level, for the rocketmq5 and apache5 peers.
func quiet5xClient() {
	os.Setenv("rocketmq.client.logRoot", filepath.Join(os.TempDir(), "tide-bench-rocketmq5-logs"))
	os.Setenv("rocketmq.client.logLevel", "error")
	rmq.ResetLogger()
}
