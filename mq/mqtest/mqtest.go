package mqtest

import (
	"context"
	"log/slog"
	"net"
	"strconv"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/tide-run/tide/internal/tailbuf"
	"github.com/tide-run/tide/mq"
)

// maxLog bounds the log kept for a failing test; older lines are dropped first.
const maxLog = 256 << 10

// Option changes what RunServer does around the server.
type Option func(*config)

type config struct {
	skipCheck bool
	metrics   prometheus.Registerer
}

// WithMetrics registers the server's metrics on reg before it starts (mq.Server.RegisterMetrics), so a test can
// serve reg and scrape it. A Restart with it registers again: give the restart a fresh registry.
func WithMetrics(reg prometheus.Registerer) Option {
	return func(c *config) { c.metrics = reg }
}

// SkipInvariantCheck leaves out the store check at the end of the test. why is for the reader: say which invariant
// the test's operations knowingly break (e.g. a topic deleted and created again: its old records stay in the commit
// log without an index entry).
func SkipInvariantCheck(why string) Option {
	_ = why
	return func(c *config) { c.skipCheck = true }
}

// RunServer starts an embedded broker with opts and stops it when the test ends. Zero fields get test defaults:
// DataDir a t.TempDir(), ports 0 (free ports), Logger one that keeps the broker's log (the last 256 KiB) and writes
// it to t.Log only if the test failed. At the end, if the server still runs, it checks the store's invariants
// (mq.Server.Check; a violation fails the test) unless SkipInvariantCheck says otherwise, then shuts the server down
// within 10 s (a test may shut it down earlier itself).
func RunServer(t testing.TB, opts mq.Options, options ...Option) *mq.Server {
	t.Helper()
	var cfg config
	for _, o := range options {
		o(&cfg)
	}
	var logs *tailbuf.Buffer
	if opts.Logger == nil {
		logs = &tailbuf.Buffer{Max: maxLog}
		opts.Logger = slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	if opts.DataDir == "" {
		opts.DataDir = t.TempDir()
	}
	srv, err := mq.New(opts)
	if err != nil {
		t.Fatalf("mqtest: %v", err)
	}
	if cfg.metrics != nil {
		if err := srv.RegisterMetrics(cfg.metrics); err != nil {
			t.Fatalf("mqtest: %v", err)
		}
	}
	if err := srv.Start(context.Background()); err != nil {
		t.Fatalf("mqtest: %v", err)
	}
	t.Cleanup(func() {
		if !cfg.skipCheck && srv.Ready() { // a test that shut the server down itself (a restart) has no store open
			if err := srv.Check(); err != nil {
				t.Errorf("mqtest: store invariants after the test: %v", err)
			}
		}
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := srv.Shutdown(ctx); err != nil {
			t.Errorf("mqtest: shutdown: %v", err)
		}
		if logs != nil && t.Failed() {
			t.Logf("mqtest: broker log:\n%s", logs.String())
		}
	})
	return srv
}

// Restart stops srv as tide stops and starts a server with opts on srv's ports, as a restart of tide does: clients
// that cached the name server's or the broker's address find the new one there. opts.DataDir must be the directory
// srv used (pass the same one to RunServer: its default is a fresh directory each call); NameServerPort and
// BrokerPort left 0 take srv's. srv may be shut down already (a test that looks at what happens while the broker is
// away). Before stopping srv it checks the store's invariants, unless SkipInvariantCheck; the
// new server is RunServer's (checked and shut down when the test ends). Another process can take a port in the
// moment between the two servers; the test then fails with "address already in use".
func Restart(t testing.TB, srv *mq.Server, opts mq.Options, options ...Option) *mq.Server {
	t.Helper()
	if opts.DataDir == "" {
		t.Fatal("mqtest: Restart needs the data dir the first server used")
	}
	var cfg config
	for _, o := range options {
		o(&cfg)
	}
	if !cfg.skipCheck && srv.Ready() {
		if err := srv.Check(); err != nil {
			t.Errorf("mqtest: store invariants before the restart: %v", err)
		}
	}
	if opts.NameServerPort == 0 {
		opts.NameServerPort = port(t, srv.NameServerAddr())
	}
	if opts.BrokerPort == 0 {
		opts.BrokerPort = port(t, srv.BrokerAddr())
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := srv.Shutdown(ctx); err != nil {
		t.Fatalf("mqtest: shutdown before the restart: %v", err)
	}
	return RunServer(t, opts, options...)
}

func port(t testing.TB, addr string) int {
	t.Helper()
	_, p, err := net.SplitHostPort(addr)
	n, err2 := strconv.Atoi(p)
	if err != nil || err2 != nil {
		t.Fatalf("mqtest: address %q has no port", addr)
	}
	return n
}

// DelayLevels returns RocketMQ's 18 delay levels all set to d, so redeliveries through %RETRY% come back fast.
func DelayLevels(d time.Duration) []time.Duration {
	levels := make([]time.Duration, 18)
	for i := range levels {
		levels[i] = d
	}
	return levels
}
