package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/tide-run/tide/server"
)

func newUpCommand(_ *globals) *cobra.Command {
	opts := server.DefaultOptions()
	var logLevel string
	cmd := &cobra.Command{
		Use:   "up",
		Short: "Run the whole platform in the foreground",
		Long: `Run the whole tide platform in this process: the control-plane API (and dashboard), and, as they are
built in, the embedded RocketMQ name server and broker, the eventing data plane and the serving gateway.

When everything is ready, tide prints one line per endpoint ("api: http://127.0.0.1:8090"), then logs to stderr.
SIGINT or SIGTERM shuts down gracefully; a second signal exits at once. Port 0 picks a free port.

The first start creates the API token in <data-dir>/api-token (mode 0600) and prints it once. On 127.0.0.1 the
API serves callers without the token too, except Secrets' values; on any other --host (or with --require-token)
every API and dashboard request needs it: tide --token or $TIDE_TOKEN, kubectl with a kubeconfig token, the
dashboard through the link with ?token=. Browsers on other sites can neither write nor read (Host, Origin and
Content-Type checks). See docs/security.md.`,
		Example: `  tide up
  tide up --data-dir /var/lib/tide --api-port 9090
  TIDE_DATA_DIR=/tmp/tide tide up --host 0.0.0.0 --acl /etc/tide/plain_acl.yml   # the API then requires the token in /tmp/tide/api-token
  tide up --require-token                          # require it on 127.0.0.1 too (shared machines)`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			var level slog.Level
			if err := level.UnmarshalText([]byte(logLevel)); err != nil {
				return fmt.Errorf("--log-level %q: %w", logLevel, err)
			}
			opts.Logger = slog.New(slog.NewTextHandler(cmd.ErrOrStderr(), &slog.HandlerOptions{Level: level}))
			sigs := make(chan os.Signal, 2)
			signal.Notify(sigs, syscall.SIGINT, syscall.SIGTERM)
			defer signal.Stop(sigs)
			return runUp(cmd, opts, upHooks{signals: sigs, build: server.New, exit: os.Exit})
		},
	}
	f := cmd.Flags()
	f.StringVar(&opts.Host, "host", opts.Host, "listen address of every endpoint")
	f.IntVar(&opts.APIPort, "api-port", opts.APIPort, "control-plane API and dashboard port")
	f.IntVar(&opts.GatewayPort, "gateway-port", opts.GatewayPort, "HTTP gateway port for services and broker ingress")
	f.IntVar(&opts.NameServerPort, "namesrv-port", opts.NameServerPort, "embedded RocketMQ name server port")
	f.IntVar(&opts.BrokerPort, "broker-port", opts.BrokerPort, "embedded RocketMQ broker port")
	f.IntVar(&opts.GRPCPort, "grpc-port", opts.GRPCPort, "embedded RocketMQ's gRPC endpoint for RocketMQ 5 clients, TLS and plaintext (-1: none)")
	f.IntVar(&opts.Eventing.MQMaxConnections, "rocketmq-max-connections", 0, "connections each embedded RocketMQ listener accepts at most (0: 10000, less under a low open-file limit; -1: no cap)")
	f.DurationVar(&opts.Eventing.MQIdleTimeout, "rocketmq-idle-timeout", 0, "close an embedded RocketMQ connection after this long with nothing sent either way (0: 120s; -1s: never)")
	f.DurationVar(&opts.Eventing.MQFrameTimeout, "rocketmq-frame-timeout", 0, "close an embedded RocketMQ connection whose request has not arrived whole this long after its first byte (0: 30s; -1s: never)")
	f.StringSliceVar(&opts.RocketMQNameServers, "rocketmq-name-servers", nil,
		"use an external Apache RocketMQ cluster (name servers host:port,...) instead of the embedded broker")
	f.StringVar(&opts.DataDir, "data-dir", opts.DataDir, "directory holding all state (env "+server.DataDirEnv+")")
	f.StringVar(&opts.ACLFile, "acl", "", "RocketMQ ACL file for the embedded broker's remoting and gRPC ports (plain_acl.yml format; re-read when it changes)")
	f.StringVar(&opts.Serving.InstanceUser, "instance-user", "nobody",
		"when tide runs as root, the user service instances run as (name, uid or uid:gid; \"root\" keeps root)")
	f.BoolVar(&opts.Serving.PublicBrokerIngress, "public-broker-ingress", false,
		"let any caller reach Broker ingress on the gateway (default: loopback callers only, as Knative's is cluster-local)")
	f.StringVar(&logLevel, "log-level", "info", "log level: debug, info, warn, error")
	f.BoolVar(&opts.RequireToken, "require-token", false,
		"require the API token (<data-dir>/"+server.TokenFile+") on loopback too (always required on other addresses)")
	f.BoolVar(&opts.InsecureNoAuth, "insecure-no-auth", false,
		"serve the API and dashboard WITHOUT the token on a non-loopback --host: anyone who reaches the port controls tide")
	f.StringSliceVar(&opts.AllowedHosts, "allowed-host", nil,
		"more host names the API answers to (besides 127.0.0.1, localhost, *.localhost and --host), e.g. this machine's DNS name")
	f.StringVar(&opts.TLSCertFile, "tls-cert-file", "", "serve the API and dashboard over HTTPS with this certificate (PEM; with --tls-key-file)")
	f.StringVar(&opts.TLSKeyFile, "tls-key-file", "", "the private key of --tls-cert-file (PEM)")
	f.StringSliceVar(&opts.CORSOrigins, "cors-origin", nil,
		"browser origins allowed to call the API (CORS), e.g. https://tools.example.com (default none)")
	return cmd
}

// upHooks are what `tide up` takes from the process: signals, the composition root and exit (tests substitute them).
type upHooks struct {
	signals <-chan os.Signal
	build   func(server.Options) (*server.Server, error)
	exit    func(code int)
}

func runUp(cmd *cobra.Command, opts server.Options, h upHooks) error {
	sigs := h.signals
	ctx, cancel := context.WithCancel(cmd.Context())
	defer cancel()

	srv, err := h.build(opts)
	if err != nil {
		return err
	}
	if err := srv.Start(ctx); err != nil {
		var pe *server.PortError
		if errors.As(err, &pe) {
			return pe // "--api-port 8090: address already in use"
		}
		return err
	}
	log := opts.Logger.With("component", "up")
	lastReport := time.Now()
	for !srv.Ready() {
		if time.Since(lastReport) > 10*time.Second {
			lastReport = time.Now()
			if err := srv.API().CheckReady(); err != nil {
				log.Warn("still waiting for readiness", "failing", err.Error())
			}
		}
		select {
		case sig := <-sigs:
			log.Info("signal before ready, shutting down", "signal", sig.String())
			return shutdown(srv, log, sigs, h.exit)
		case <-time.After(50 * time.Millisecond):
		}
	}
	out := cmd.OutOrStdout()
	for _, e := range srv.Endpoints() {
		fmt.Fprintf(out, "%s: %s\n", e.Name, e.URL)
	}
	fmt.Fprintf(out, "metrics: %s%s\n", srv.APIURL(), server.MetricsPath)
	fmt.Fprintf(out, "data dir: %s\n", strings.TrimSpace(srv.Options().DataDir))
	printAccess(out, cmd.ErrOrStderr(), srv)
	fmt.Fprintln(out, "ready")
	releaseStartupPages(opts.Logger)
	sig := <-sigs
	log.Info("shutting down", "signal", sig.String())
	return shutdown(srv, log, sigs, h.exit)
}

// shutdown stops gracefully; a second signal exits at once.
func shutdown(srv *server.Server, log *slog.Logger, sigs <-chan os.Signal, exit func(int)) error {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- srv.Shutdown(ctx) }()
	select {
	case err := <-done:
		if err != nil {
			return fmt.Errorf("shutdown: %w", err)
		}
		log.Info("stopped")
		return nil
	case sig := <-sigs:
		log.Warn("second signal, exiting now", "signal", sig.String())
		exit(130)
		return fmt.Errorf("interrupted during shutdown")
	}
}

// printAccess tells how to reach the API: the token once (the start that created it), then its file; and, at
// every start, the warning for --insecure-no-auth.
func printAccess(out, errOut io.Writer, srv *server.Server) {
	a := srv.Access()
	if a.TokenCreated {
		fmt.Fprintf(out, "api token: %s (saved in %s; shown only this once)\n", a.Token, a.TokenPath)
	}
	if a.TokenRequired {
		fmt.Fprintf(out, "api requires the token in %s: export %s=$(cat %s); dashboard: open %s/?token=$%s\n",
			a.TokenPath, server.TokenEnv, a.TokenPath, srv.APIURL(), server.TokenEnv)
	}
	if a.Insecure {
		fmt.Fprintln(errOut, server.InsecureWarning(srv.Options().Host))
	}
}
