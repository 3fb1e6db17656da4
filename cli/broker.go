package cli

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/spf13/cobra"

	"github.com/tide-run/tide/internal/metrics"
	"github.com/tide-run/tide/internal/residency"
	"github.com/tide-run/tide/mq"
	"github.com/tide-run/tide/mq/acl"
)

// newBrokerCommand runs only the messaging part: the RocketMQ name server and broker.
func newBrokerCommand() *cobra.Command {
	var (
		host       string
		nsPort     int
		brokerPort int
		grpcPort   int
		dataDir    string
		flush      string
		retention  time.Duration
		maxDisk    int64
		aclFile    string
		insecure   bool
		maxConns   int
		idle       time.Duration
		frameWait  time.Duration
		healthAddr string
	)
	cmd := &cobra.Command{
		Use:   "broker",
		Short: "Run only the embedded RocketMQ name server and broker",
		Long: "Run tide's RocketMQ-compatible name server and broker, for a fast local RocketMQ in development and CI.\n" +
			"Point any RocketMQ client at the printed name-server address; RocketMQ 5 (gRPC) clients use the printed grpc\n" +
			"address as their endpoint (TLS and plaintext on one port). Port 0 picks a free port.\n\n" +
			"--acl FILE turns on RocketMQ ACL (Apache's plain_acl.yml format; clients sign with their access and secret\n" +
			"keys, e.g. producer.WithCredentials); the file is re-read when it changes. Listening beyond loopback\n" +
			"(--host 0.0.0.0) needs --acl, or --insecure-no-auth to accept that anyone reaching the port can read,\n" +
			"write and delete every topic. See docs/security.md.",
		Example: `  tide broker
  tide broker --namesrv-port 0 --broker-port 0 --grpc-port 0
  tide broker --host 0.0.0.0 --acl /etc/tide/plain_acl.yml`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			mode, err := mq.ParseFlushMode(flush)
			if err != nil {
				return &exitError{code: 2, err: fmt.Errorf("--flush: %w", err)}
			}
			if dataDir == "" {
				dataDir = os.Getenv("TIDE_DATA_DIR")
			}
			if dataDir == "" {
				dataDir = ".tide"
			}
			logger := slog.New(slog.NewTextHandler(cmd.ErrOrStderr(), &slog.HandlerOptions{Level: slog.LevelInfo}))
			srv, err := mq.New(mq.Options{DataDir: dataDir + "/mq", Host: host, NameServerPort: nsPort, BrokerPort: brokerPort,
				GRPCPort: max(grpcPort, 0), DisableGRPC: grpcPort < 0,
				FlushMode: mode, RetentionAge: retention, MaxDiskBytes: maxDisk, Logger: logger,
				ACLFile: aclFile, InsecureNoAuth: insecure,
				MaxConnections: maxConns, IdleTimeout: idle, FrameTimeout: frameWait})
			if err != nil {
				return &exitError{code: 2, err: err}
			}
			reg := metrics.NewRegistry() // served on --health-addr's /metrics
			if err := srv.RegisterMetrics(reg); err != nil {
				return err
			}
			ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			if insecure && aclFile == "" {
				logger.Warn("INSECURE: --insecure-no-auth: the broker has no ACL; anyone who can reach "+host+
					" can read, write and delete every topic", "component", "mq")
			}
			if err := srv.Start(ctx); err != nil {
				if errors.Is(err, acl.ErrConfig) {
					return &exitError{code: 2, err: err}
				}
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "name server %s\nbroker %s\n", srv.NameServerAddr(), srv.BrokerAddr())
			if a := srv.GRPCAddr(); a != "" {
				fmt.Fprintf(cmd.OutOrStdout(), "grpc %s\n", a)
			}
			if healthAddr != "" {
				stopHealth, url, err := serveHealth(healthAddr, srv, reg, logger)
				if err != nil {
					sctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
					defer cancel()
					_ = srv.Shutdown(sctx)
					return &exitError{code: 1, err: fmt.Errorf("--health-addr %s: %w", healthAddr, err)}
				}
				defer stopHealth()
				fmt.Fprintf(cmd.OutOrStdout(), "health %s\n", url)
			}
			releaseStartupPages(logger)
			<-ctx.Done()
			sctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			return srv.Shutdown(sctx)
		},
	}
	f := cmd.Flags()
	f.StringVar(&host, "host", "127.0.0.1", "IP address to listen on and advertise (a literal IP)")
	f.IntVar(&nsPort, "namesrv-port", 9876, "name server port (0: any free port)")
	f.IntVar(&brokerPort, "broker-port", 10911, "broker port (0: any free port)")
	f.IntVar(&grpcPort, "grpc-port", 8081, "gRPC endpoint for RocketMQ 5 clients, TLS and plaintext on one port (0: any free port; -1: none)")
	f.StringVar(&dataDir, "data-dir", "", "state directory (default $TIDE_DATA_DIR or ./.tide); messages go in <data-dir>/mq")
	f.StringVar(&flush, "flush", "async", "commit-log flush: async (fsync every 500ms) or sync (answer sends after fsync)")
	f.DurationVar(&retention, "retention", 72*time.Hour, "delete commit-log segments older than this")
	f.Int64Var(&maxDisk, "max-disk-bytes", 0, "cap the commit log's size in bytes, deleting the oldest segments first (0: no cap)")
	f.StringVar(&aclFile, "acl", "", "RocketMQ ACL file (plain_acl.yml format): every remoting and gRPC (RocketMQ 5) request must be signed by an account it allows")
	f.BoolVar(&insecure, "insecure-no-auth", false, "allow --host beyond loopback without --acl (anyone reaching the broker can do anything)")
	f.IntVar(&maxConns, "max-connections", 0, "connections each listener accepts at most; more are closed at once (0: 10000, less under a low open-file limit; -1: no cap)")
	f.DurationVar(&idle, "idle-timeout", 0, "close a connection after this long with nothing sent either way (0: 120s; -1s: never)")
	f.StringVar(&healthAddr, "health-addr", "", "serve GET /readyz, /livez and /metrics (Prometheus) on this host:port (e.g. 127.0.0.1:10912; port 0: any free port; empty: off)")
	f.DurationVar(&frameWait, "frame-timeout", 0, "close a connection whose request has not arrived whole this long after its first byte (0: 30s; -1s: never)")
	return cmd
}

// serveHealth serves the broker's /readyz, /livez and /metrics (reg) on addr and returns how to stop it and its
// base URL.
func serveHealth(addr string, srv *mq.Server, reg *prometheus.Registry, logger *slog.Logger) (func(), string, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, "", err
	}
	mux := http.NewServeMux()
	mux.Handle("/", srv.HealthHandler())
	mux.Handle("GET /metrics", metrics.Handler(reg, logger))
	hs := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	go func() {
		if err := hs.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			logger.Error("health endpoint stopped", "component", "broker", "err", err)
		}
	}()
	return func() { _ = hs.Close() }, "http://" + ln.Addr().String(), nil
}

// releaseStartupPages drops the executable's pages that only start-up touched (package initialisation of
// everything linked into tide) from the resident set, once the process is serving; see internal/residency.
// TIDE_RELEASE_STARTUP_PAGES=off keeps them.
func releaseStartupPages(logger *slog.Logger) {
	if !residency.Enabled() {
		return
	}
	log := logger.With("component", "residency")
	res, err := residency.ReleaseStartupPages()
	if err != nil {
		log.Debug("start-up pages not released", "err", err)
		return
	}
	log.Debug("released start-up pages", "rss_before", res.Before.Total, "rss_after", res.After.Total,
		"file_before", res.Before.File, "file_after", res.After.File, "mappings", res.Mappings)
}
