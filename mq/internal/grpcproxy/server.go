package grpcproxy

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	v2 "github.com/apache/rocketmq-clients/golang/v5/protocol/v2"
	"google.golang.org/grpc"
	"google.golang.org/grpc/keepalive"
	"google.golang.org/grpc/metadata"

	"github.com/tide-run/tide/mq/acl"
	"github.com/tide-run/tide/mq/internal/broker"
)

// Options configure the endpoint.
type Options struct {
	// Broker is the embedded broker whose topics, groups and store are served. Required.
	Broker *broker.Broker
	// DataDir holds grpc/ (TLS certificate and key, the POP in-flight table). Required.
	DataDir string
	// Host is advertised in routes when the listener's address is unspecified. Default "127.0.0.1".
	Host string
	// Logger. Default slog.Default().
	Logger *slog.Logger
	// MinInvisible is the shortest invisible duration a receive may ask for (Apache: 10s). ChangeInvisibleDuration
	// has no minimum, as in Apache.
	MinInvisible time.Duration
	// MaxInvisible is the longest (Apache: 12h).
	MaxInvisible time.Duration
	// MinPolling and MaxPolling clamp a receive's long-polling time (Apache: 5s and 20s).
	MinPolling, MaxPolling time.Duration
	// AutoRenewInvisible is the invisible duration of a push consumer's receives (auto_renew; Apache: 60s).
	AutoRenewInvisible time.Duration
	// MaxConns caps open connections (more are closed at once and logged); 0: no cap.
	MaxConns int
	// PersistInterval is how often a changed in-flight table is written. Default 1s.
	PersistInterval time.Duration
	// ACL, when set, decides every request with the remoting port's accounts (acl.go); nil: no ACL.
	ACL *acl.Watcher
}

// Server is the gRPC MessagingService endpoint.
type Server struct {
	v2.UnimplementedMessagingServiceServer

	opts    Options
	b       *broker.Broker
	log     *slog.Logger
	gs      *grpc.Server
	ln      *sniffListener
	addr    string
	clients *clientTable
	pop     *popState
	notify  *notifier
	pending pendingTable  // commands sent to clients, waiting for their answers (commands.go)
	rr      atomic.Uint64 // round-robin queue choice for sends without a message group

	stop     chan struct{}
	stopOnce sync.Once
	wg       sync.WaitGroup
}

// New checks options and loads the persisted in-flight table; Serve starts serving.
func New(opts Options) (*Server, error) {
	if opts.Broker == nil || opts.DataDir == "" {
		return nil, errors.New("grpcproxy: Broker and DataDir are required")
	}
	if opts.Host == "" {
		opts.Host = "127.0.0.1"
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	if opts.MinInvisible == 0 {
		opts.MinInvisible = 10 * time.Second
	}
	if opts.MaxInvisible == 0 {
		opts.MaxInvisible = 12 * time.Hour
	}
	if opts.MinPolling == 0 {
		opts.MinPolling = 5 * time.Second
	}
	if opts.MaxPolling == 0 {
		opts.MaxPolling = 20 * time.Second
	}
	if opts.AutoRenewInvisible == 0 {
		opts.AutoRenewInvisible = 60 * time.Second
	}
	if opts.PersistInterval == 0 {
		opts.PersistInterval = time.Second
	}
	s := &Server{opts: opts, b: opts.Broker, log: opts.Logger.With("component", "mq.grpc"), clients: newClientTable(),
		notify: newNotifier(), stop: make(chan struct{})}
	pop, err := newPopState(s, filepath.Join(opts.DataDir, "grpc", "pop.json"))
	if err != nil {
		return nil, err
	}
	s.pop = pop
	return s, nil
}

// Serve listens on ln (TLS and plaintext, sniffed per connection) until Shutdown.
func (s *Server) Serve(ln net.Listener) error {
	cert, err := loadOrCreateCert(filepath.Join(s.opts.DataDir, "grpc"), s.opts.Host)
	if err != nil {
		return err
	}
	tcfg := &tls.Config{Certificates: []tls.Certificate{cert}, NextProtos: []string{"h2"}, MinVersion: tls.VersionTLS12}
	s.addr = ln.Addr().String()
	if h, p, err := net.SplitHostPort(s.addr); err == nil && net.ParseIP(h).IsUnspecified() {
		s.addr = net.JoinHostPort(s.opts.Host, p)
	}
	s.ln = newSniffListener(ln, tcfg, s.opts.MaxConns, s.log)
	s.gs = grpc.NewServer(append([]grpc.ServerOption{
		grpc.MaxRecvMsgSize(s.b.MaxMessageSize() + 1<<20),
		grpc.MaxConcurrentStreams(1024),
		grpc.KeepaliveEnforcementPolicy(keepalive.EnforcementPolicy{MinTime: 5 * time.Second, PermitWithoutStream: true}),
		grpc.KeepaliveParams(keepalive.ServerParameters{MaxConnectionIdle: 120 * time.Second}),
	}, s.aclServerOptions()...)...)
	v2.RegisterMessagingServiceServer(s.gs, s)
	s.b.SetArrivalHook(s.notify.arrived)
	s.b.SetTxChecker(s.checkTransaction)
	s.b.SetGRPCConsumers(s.consumerIDs)
	s.wg.Add(1)
	go s.persistLoop()
	go func() {
		if err := s.gs.Serve(s.ln); err != nil && !errors.Is(err, grpc.ErrServerStopped) {
			s.log.Error("grpc endpoint stopped", "err", err)
		}
	}()
	s.log.Info("RocketMQ 5 gRPC endpoint ready", "addr", s.addr)
	return nil
}

// Addr is the endpoint's "ip:port" (advertised in routes).
func (s *Server) Addr() string { return s.addr }

// Shutdown ends streams and connections and persists the in-flight table.
func (s *Server) Shutdown(ctx context.Context) error {
	s.stopOnce.Do(func() { close(s.stop) })
	if s.gs != nil {
		done := make(chan struct{})
		go func() { s.gs.GracefulStop(); close(done) }()
		select {
		case <-done:
		case <-ctx.Done():
			s.gs.Stop()
		case <-time.After(2 * time.Second): // receives long-poll up to 20 s: do not wait for them
			s.gs.Stop()
		}
	}
	s.wg.Wait()
	return s.pop.persist(true)
}

func (s *Server) persistLoop() {
	defer s.wg.Done()
	t := time.NewTicker(s.opts.PersistInterval)
	defer t.Stop()
	for {
		select {
		case <-s.stop:
			return
		case now := <-t.C:
			s.clients.expire(now.Add(-clientExpiry))
			s.renew()
			if err := s.pop.persist(false); err != nil {
				s.log.Error("persisting the gRPC in-flight table failed", "err", err)
			}
		}
	}
}

// status builds a v2 Status.
func status(code v2.Code, format string, args ...any) *v2.Status {
	msg := code.String()
	if format != "" {
		msg = fmt.Sprintf(format, args...)
	}
	return &v2.Status{Code: code, Message: msg}
}

var statusOK = &v2.Status{Code: v2.Code_OK, Message: v2.Code_OK.String()}

// clientIDOf reads the client id every 5.x SDK sends in its metadata.
func clientIDOf(ctx context.Context) string {
	md, _ := metadata.FromIncomingContext(ctx)
	if v := md.Get("x-mq-client-id"); len(v) > 0 {
		return v[0]
	}
	return ""
}

// Health is nil while the endpoint serves.
func (s *Server) Health() error {
	select {
	case <-s.stop:
		return errors.New("grpc endpoint stopped")
	default:
	}
	if s.gs == nil {
		return errors.New("grpc endpoint not started")
	}
	return nil
}

// clientExpiry forgets a client whose Telemetry stream ended this long ago without a heartbeat since (Apache's
// grpcClientIdleTimeMills).
const clientExpiry = 120 * time.Second
