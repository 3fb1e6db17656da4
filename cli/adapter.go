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
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/tide-run/tide/eventing/rocketmqsource"
	"github.com/tide-run/tide/internal/tracing"
)

// newAdapterCommand is `tide adapter`, the data-plane adapters that run outside `tide up` (as Knative
// ContainerSources on a cluster, or next to any RocketMQ). getenv is nil (os.Getenv) outside tests.
func newAdapterCommand(getenv func(string) string) *cobra.Command {
	if getenv == nil {
		getenv = os.Getenv
	}
	cmd := &cobra.Command{
		Use:   "adapter",
		Short: "Run a standalone event-source adapter",
	}
	cmd.AddCommand(newRocketMQAdapterCommand(getenv))
	return cmd
}

func newRocketMQAdapterCommand(getenv func(string) string) *cobra.Command {
	var vars strings.Builder
	for _, v := range rocketmqsource.EnvVars {
		fmt.Fprintf(&vars, "  %-34s %s\n", v.Name, v.Field)
	}
	return &cobra.Command{
		Use:   "rocketmq",
		Short: "Consume RocketMQ topics and deliver the messages as CloudEvents to K_SINK",
		Long: "Runs a RocketMQSource adapter configured only from the environment, the way a Knative ContainerSource\n" +
			"runs its container: K_SINK and K_CE_OVERRIDES are injected by Knative, ROCKETMQ_* describe the source.\n" +
			"Messages are acknowledged only after delivery, dead-lettering, or hand-back to RocketMQ's retry topic.\n" +
			"SIGTERM/SIGINT stop it gracefully (30 s for deliveries under way). See docs/rocketmqsource.md.\n\n" +
			"Environment:\n" + vars.String(),
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := rocketmqsource.ConfigFromEnv(getenv)
			if err != nil {
				return &exitError{code: 2, err: err}
			}
			log := slog.New(slog.NewJSONHandler(cmd.ErrOrStderr(), nil))
			cfg.Logger = log
			// Spans of each message (exported with OTLP when OTEL_EXPORTER_OTLP_ENDPOINT is set, as in a cluster
			// with a collector); docs/observability.md#traces.
			tr, err := tracing.New(cmd.Context(), tracing.Options{ServiceName: "tide-rocketmq-adapter", Getenv: getenv, Logger: log})
			if err != nil {
				return &exitError{code: 2, err: err}
			}
			defer func() {
				sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
				defer cancel()
				_ = tr.Shutdown(sctx)
			}()
			cfg.TracerProvider = tr.Provider()
			ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			var current atomic.Pointer[rocketmqsource.Adapter]
			if addr := getenv("ROCKETMQ_ADAPTER_HTTP_ADDR"); addr != "" {
				ln, err := net.Listen("tcp", addr)
				if err != nil {
					return &exitError{code: 2, err: fmt.Errorf("ROCKETMQ_ADAPTER_HTTP_ADDR: %w", err)}
				}
				hs := &http.Server{Handler: rocketmqsource.Handler(current.Load), ReadHeaderTimeout: 5 * time.Second}
				go func() { _ = hs.Serve(ln) }()
				defer hs.Close()
				log.Info("serving /healthz and /metrics", "addr", ln.Addr().String())
			}
			return runRocketMQAdapter(ctx, cfg, log, &current)
		},
	}
}

// runRocketMQAdapter starts the adapter, retrying while RocketMQ is unreachable or the topic missing (a cluster
// restarts the pod otherwise; retrying in place keeps logs and connections), and stops it when ctx ends.
func runRocketMQAdapter(ctx context.Context, cfg rocketmqsource.Config, log *slog.Logger, current *atomic.Pointer[rocketmqsource.Adapter]) error {
	backoff := time.Second
	for {
		a, err := rocketmqsource.New(cfg)
		if err != nil {
			return &exitError{code: 2, err: err}
		}
		current.Store(a)
		if err = a.Start(ctx); err == nil {
			<-ctx.Done()
			stopCtx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			serr := a.Stop(stopCtx)
			c := a.Counters()
			log.Info("adapter exiting", "delivered", c.Delivered, "deadLettered", c.DeadLettered, "retried", c.Retried, "abandoned", c.Abandoned)
			return serr
		}
		if errors.Is(err, rocketmqsource.ErrInvalidConfig) {
			return &exitError{code: 2, err: err}
		}
		st := a.Status()
		_ = a.Stop(context.Background())
		log.Warn("adapter not started; retrying", "reason", st.Reason, "err", err, "in", backoff)
		t := time.NewTimer(backoff)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil
		case <-t.C:
		}
		backoff = min(backoff*2, 30*time.Second)
	}
}
