package mq

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"strconv"
	"sync/atomic"
	"time"

	"k8s.io/utils/clock"

	"github.com/tide-run/tide/internal/ratelog"
	"github.com/tide-run/tide/mq/acl"
	"github.com/tide-run/tide/mq/internal/broker"
	"github.com/tide-run/tide/mq/internal/commitlog"
	"github.com/tide-run/tide/mq/internal/grpcproxy"
	"github.com/tide-run/tide/mq/internal/namesrv"
	"github.com/tide-run/tide/mq/internal/store"
	"github.com/tide-run/tide/mq/remoting"
)

// FlushMode names the commit log's flush policy.
type FlushMode = commitlog.FlushMode

// Flush modes.
const (
	FlushAsync = commitlog.FlushAsync
	FlushSync  = commitlog.FlushSync
)

// ParseFlushMode reads a flush policy by name ("async" or "sync"), for flags.
func ParseFlushMode(s string) (FlushMode, error) { return commitlog.ParseFlushMode(s) }

// Options configure a Server. The zero value (plus DataDir) is a working server on ephemeral loopback ports.
type Options struct {
	// DataDir holds the commit log, consume queues, checkpoint and config. Required.
	DataDir string
	// Host is the interface to listen on and the address advertised in routes and message ids. Default
	// "127.0.0.1". Clients need a literal IP here (the Go client does not resolve names).
	Host string
	// NameServerPort and BrokerPort: 0 picks a free port (tests); tide uses 9876 and 10911.
	NameServerPort, BrokerPort int
	// GRPCPort is the RocketMQ 5 gRPC endpoint's port (TLS and plaintext on one port): 0 picks a free port; tide
	// uses 8081, as Apache's proxy. DisableGRPC serves no gRPC endpoint.
	GRPCPort    int
	DisableGRPC bool
	// GRPCMinInvisible, GRPCMinPolling and GRPCMaxPolling change the gRPC endpoint's minimum invisible duration of
	// a receive (default 10s) and its long-polling bounds (default 5s..20s; a push consumer polls for the maximum),
	// for tests.
	GRPCMinInvisible, GRPCMinPolling, GRPCMaxPolling time.Duration
	// GRPCAutoRenewInvisible is the invisible duration of a push consumer's receives, which the endpoint renews
	// while the consumer is connected (default 60s, as Apache), for tests.
	GRPCAutoRenewInvisible time.Duration
	// FlushMode: FlushAsync (default; fsync every FlushInterval) or FlushSync (answer sends after fsync, group commit).
	FlushMode FlushMode
	// FlushInterval for async flushing. Default 500ms.
	FlushInterval time.Duration
	// SegmentSize of commit-log files. Default 256 MiB.
	SegmentSize int64
	// RetentionAge deletes commit-log segments older than this. Default 72h.
	RetentionAge time.Duration
	// MaxDiskBytes caps the commit log's size (oldest segments are deleted first). Default 0: no cap.
	MaxDiskBytes int64
	// DelayLevels overrides the 18 delay levels (1s ... 2h). Tests shorten them.
	DelayLevels []time.Duration
	// LockLease for ordered consumption. Default 60s.
	LockLease time.Duration
	// TransactionImmunity and TransactionCheckInterval: a half message is checked with its producer group after
	// TransactionImmunity (default 6s) without END_TRANSACTION, then every TransactionCheckInterval (default 30s),
	// 15 times at most.
	TransactionImmunity, TransactionCheckInterval time.Duration
	// DisableAutoCreateTopics: sends to unknown topics fail instead of creating them.
	DisableAutoCreateTopics bool
	// DisableZeroOffsetForNewGroups: see broker.Options.
	DisableZeroOffsetForNewGroups bool
	// FS is the file layer (tests inject faults). Default the OS.
	FS commitlog.FS
	// Clock for store timestamps, leases and delays. Default the real clock.
	Clock clock.WithTicker
	// Logger. Default slog.Default(). Repeated warnings and errors (bad peers, refused sends, failing
	// checkpoints) are rate-limited: one line per LogRepeatInterval for each kind, with a count of the repeats
	// (internal/ratelog).
	Logger *slog.Logger
	// ACLFile is a plain_acl.yml (RocketMQ ACL 1.0; docs/security-acl.md). Set: every broker request must pass
	// it; the file is re-read every ACLReloadInterval (default 5s) and a bad edit keeps the last good policy.
	// Empty: no ACL (only allowed on a loopback Host unless InsecureNoAuth).
	ACLFile string
	// ACLReloadInterval is how often ACLFile is looked at (on Clock). Default 5s.
	ACLReloadInterval time.Duration
	// ACLAccounts are accounts added to ACLFile's (tide up's internal account); they survive reloads. A file
	// account with the same access key is an error.
	ACLAccounts []acl.Account
	// InsecureNoAuth allows a non-loopback Host without ACLFile.
	InsecureNoAuth bool
	// LogRepeatInterval spaces repeated log lines of one kind. Default 10s.
	LogRepeatInterval time.Duration

	// IdleTimeout closes a connection on which nothing was sent either way for this long (RocketMQ's channel idle
	// time). Default 120s (the official clients heartbeat every 30 s); negative: never.
	IdleTimeout time.Duration
	// FrameTimeout closes a connection whose frame has not arrived whole this long after its first byte. Default
	// 30s; negative: never.
	FrameTimeout time.Duration
	// MaxConnections caps the connections of each listener (name server, broker, gRPC endpoint); more are closed at once and
	// counted. Default remoting.DefaultMaxConns(): 10,000, less under a low open-file limit; negative: no cap.
	MaxConnections int
}

// Server is an embedded name server plus broker.
type Server struct {
	opts    Options
	log     *slog.Logger
	st      *store.Store
	broker  *broker.Broker
	ns      *namesrv.Server
	nsSrv   *remoting.Server
	brSrv   *remoting.Server
	grpc    *grpcproxy.Server // the RocketMQ 5 gRPC endpoint; nil when disabled (grpc.go)
	ready   atomic.Bool
	nsAddr  string
	brAddr  string
	stopACL context.CancelFunc // ends the ACL file watcher; nil without ACLFile
	logs    *ratelog.Handler   // the rate-limited handler behind every component's logger
	metrics *metrics           // set by RegisterMetrics before Start; nil: nothing is counted (metrics.go)
}

// ErrOptions reports invalid options.
var ErrOptions = errors.New("mq: invalid options")

// New validates options; nothing listens or touches the disk until Start.
func New(opts Options) (*Server, error) {
	if opts.DataDir == "" {
		return nil, fmt.Errorf("%w: DataDir is required", ErrOptions)
	}
	if opts.Host == "" {
		opts.Host = "127.0.0.1"
	}
	if net.ParseIP(opts.Host) == nil {
		return nil, fmt.Errorf("%w: Host %q: want a literal IP address (RocketMQ clients do not resolve names)", ErrOptions, opts.Host)
	}
	for name, p := range map[string]int{"NameServerPort": opts.NameServerPort, "BrokerPort": opts.BrokerPort, "GRPCPort": opts.GRPCPort} {
		if p < 0 || p > 65535 {
			return nil, fmt.Errorf("%w: %s %d: want 0..65535", ErrOptions, name, p)
		}
	}
	if err := checkExposure(opts); err != nil {
		return nil, err
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	// Warnings and errors are what floods (bad peers, refused sends, failing checkpoints); Info lines are events.
	logs := ratelog.New(opts.Logger.Handler(), ratelog.Options{Interval: opts.LogRepeatInterval, MinLevel: slog.LevelWarn})
	opts.Logger = slog.New(logs)
	return &Server{opts: opts, log: opts.Logger.With("component", "mq"), logs: logs}, nil
}

// Start opens the store (recovering after a crash) and listens; it returns once both ports accept connections.
func (s *Server) Start(ctx context.Context) error {
	var handlerACL *acl.Watcher
	if s.opts.ACLFile != "" {
		w, err := acl.Load(s.opts.ACLFile, acl.WatchOptions{Interval: s.opts.ACLReloadInterval, Extra: s.opts.ACLAccounts,
			Clock: s.opts.Clock, Logger: s.opts.Logger})
		if err != nil {
			return fmt.Errorf("mq: %w", err)
		}
		handlerACL = w
	}
	var lc net.ListenConfig
	nsLn, err := lc.Listen(ctx, "tcp", net.JoinHostPort(s.opts.Host, strconv.Itoa(s.opts.NameServerPort)))
	if err != nil {
		return fmt.Errorf("mq: name server listen: %w", err)
	}
	brLn, err := lc.Listen(ctx, "tcp", net.JoinHostPort(s.opts.Host, strconv.Itoa(s.opts.BrokerPort)))
	if err != nil {
		nsLn.Close()
		return fmt.Errorf("mq: broker listen: %w", err)
	}
	grpcLn, err := s.listenGRPC(ctx)
	if err != nil {
		nsLn.Close()
		brLn.Close()
		return err
	}
	closeGRPC := func() {
		if grpcLn != nil {
			grpcLn.Close()
		}
	}
	s.nsAddr = nsLn.Addr().String()
	s.brAddr = brLn.Addr().String()
	hostPort, _ := netipAddrPort(s.brAddr)
	var clk clock.WithTicker = clock.RealClock{}
	if s.opts.Clock != nil {
		clk = s.opts.Clock
	}
	var (
		counters *broker.Counters
		onFlush  func(time.Duration, int64)
	)
	if s.metrics != nil {
		counters, onFlush = s.metrics.counters, s.metrics.onFlush
	}
	st, err := store.Open(store.Options{OnFlush: onFlush, Dir: s.opts.DataDir, SegmentSize: s.opts.SegmentSize, FlushMode: s.opts.FlushMode,
		FlushInterval: s.opts.FlushInterval, RetentionAge: s.opts.RetentionAge, MaxDiskBytes: s.opts.MaxDiskBytes,
		StoreHost: hostPort, FS: s.opts.FS, Clock: clk, Logger: s.opts.Logger})
	if err != nil {
		nsLn.Close()
		brLn.Close()
		closeGRPC()
		return fmt.Errorf("mq: %w", err)
	}
	b, err := broker.New(broker.Options{Store: st, DataDir: s.opts.DataDir, FS: s.opts.FS, Addr: s.brAddr,
		DisableAutoCreateTopics: s.opts.DisableAutoCreateTopics, DelayLevels: s.opts.DelayLevels, LockLease: s.opts.LockLease,
		DisableZeroOffsetForNewGroups: s.opts.DisableZeroOffsetForNewGroups, TransactionImmunity: s.opts.TransactionImmunity,
		TransactionCheckInterval: s.opts.TransactionCheckInterval, Clock: clk, Logger: s.opts.Logger, Counters: counters})
	if err != nil {
		st.Close()
		nsLn.Close()
		brLn.Close()
		closeGRPC()
		return fmt.Errorf("mq: %w", err)
	}
	if err := s.startGRPC(b, grpcLn, handlerACL); err != nil {
		st.Close()
		nsLn.Close()
		brLn.Close()
		return err
	}
	s.st, s.broker = st, b
	s.ns = namesrv.New(s.opts.Logger)
	s.ns.Register(nsBroker{b})
	handler := remoting.Handler(b.Handle)
	if handlerACL != nil {
		handler = aclHandler(handlerACL, handler, s.opts.Logger.With("component", "mq.acl"), clk)
		var actx context.Context
		actx, s.stopACL = context.WithCancel(context.Background())
		go handlerACL.Run(actx)
	}
	brOpts := s.remotingOptions("mq.broker")
	nsOpts := s.remotingOptions("mq.namesrv")
	if s.grpc != nil {
		brOpts.HTTP2Hint = "RocketMQ 5 (gRPC) clients connect to the gRPC endpoint " + s.grpc.Addr()
		nsOpts.HTTP2Hint = brOpts.HTTP2Hint
	}
	brOpts.OnClose, brOpts.OnIdle = b.ConnClosed, b.ConnIdle
	if s.metrics != nil {
		brOpts.OnReply = s.metrics.onReply
	}
	s.nsSrv = remoting.NewServer(nsLn, s.ns.Handle, nsOpts)
	s.brSrv = remoting.NewServer(brLn, handler, brOpts)
	b.Start()
	go s.nsSrv.Serve()
	go s.brSrv.Serve()
	s.ready.Store(true)
	s.log.Info("messaging ready", "nameServer", s.nsAddr, "broker", s.brAddr, "dataDir", s.opts.DataDir, "flush", s.opts.FlushMode.String(),
		"acl", s.opts.ACLFile, "grpc", s.GRPCAddr())
	return nil
}

// Ready reports whether Start completed and Shutdown has not begun.
func (s *Server) Ready() bool { return s.ready.Load() }

// NameServerAddr is the name server's "ip:port" (give it to clients).
func (s *Server) NameServerAddr() string { return s.nsAddr }

// BrokerAddr is the broker's "ip:port".
func (s *Server) BrokerAddr() string { return s.brAddr }

// Shutdown stops listening, answers suspended pulls, persists offsets and closes the store.
func (s *Server) Shutdown(ctx context.Context) error {
	if !s.ready.Swap(false) {
		return nil
	}
	// Order: answer parked pulls while connections are open, close connections (no request runs after this), stop
	// the broker's loops and persist offsets, then close the store.
	var errs []error
	errs = append(errs, s.nsSrv.Shutdown(ctx))
	errs = append(errs, s.shutdownGRPC(ctx))
	s.broker.DrainPolls()
	errs = append(errs, s.brSrv.Shutdown(ctx))
	errs = append(errs, s.broker.Close(ctx))
	errs = append(errs, s.st.Close())
	if s.stopACL != nil {
		s.stopACL()
	}
	s.logs.Flush() // the counts of lines still held back
	return errors.Join(errs...)
}

// now is the server's clock.
func (s *Server) now() time.Time {
	if s.opts.Clock != nil {
		return s.opts.Clock.Now()
	}
	return time.Now()
}

func (s *Server) remotingOptions(component string) remoting.ServerOptions {
	return remoting.ServerOptions{Logger: s.opts.Logger.With("component", component), IdleTimeout: s.opts.IdleTimeout,
		FrameTimeout: s.opts.FrameTimeout, MaxConns: s.opts.MaxConnections}
}

type nsBroker struct{ b *broker.Broker }

func (n nsBroker) BrokerName() string  { return n.b.BrokerName() }
func (n nsBroker) ClusterName() string { return n.b.ClusterName() }
func (n nsBroker) Addr() string        { return n.b.Addr() }
func (n nsBroker) TopicNames() []string {
	var out []string
	for name := range n.b.Topics() {
		out = append(out, name)
	}
	return out
}
func (n nsBroker) TopicRoute(topic string) (namesrv.Route, bool) {
	t, ok := n.b.RouteTopic(topic)
	if !ok {
		return namesrv.Route{}, false
	}
	return namesrv.Route{ReadQueueNums: t.ReadQueueNums, WriteQueueNums: t.WriteQueueNums, Perm: t.Perm}, true
}

func netipAddrPort(s string) (netip.AddrPort, error) { return netip.ParseAddrPort(s) }
