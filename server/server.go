package server

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/tide-run/tide/controlplane/api"
	"github.com/tide-run/tide/controlplane/reconciler"
	"github.com/tide-run/tide/controlplane/registry"
	"github.com/tide-run/tide/controlplane/store"
	eventingrt "github.com/tide-run/tide/eventing/runtime"
	"github.com/tide-run/tide/internal/tracing"
	"github.com/tide-run/tide/mq/admin"
)

// Subsystem is a part of the platform the composition root starts and stops: the embedded RocketMQ, the eventing
// data plane, the serving gateway. Start returns once the subsystem listens (or fails, e.g. with a PortError);
// Ready reports whether it serves (nil = ready), and feeds /readyz; Shutdown stops it gracefully within ctx.
type Subsystem interface {
	Name() string
	Start(ctx context.Context) error
	Ready() error
	Shutdown(ctx context.Context) error
}

// EndpointReporter is implemented by subsystems that listen; `tide up` prints one line per endpoint.
type EndpointReporter interface {
	Endpoints() []Endpoint
}

// Endpoint is something the platform serves, with its actual bound address.
type Endpoint struct {
	Name string // e.g. "api", "gateway", "rocketmq name server"
	URL  string // e.g. "http://127.0.0.1:8090", "127.0.0.1:9876"
}

// PortError is a listener that could not bind; its message names the flag, as `tide up` prints it:
// "--gateway-port 8080: address already in use".
type PortError struct {
	Flag string
	Port int
	Err  error
}

func (e *PortError) Error() string {
	msg := e.Err.Error()
	if errors.Is(e.Err, syscall.EADDRINUSE) {
		msg = "address already in use"
	}
	return fmt.Sprintf("%s %d: %s", e.Flag, e.Port, msg)
}

func (e *PortError) Unwrap() error { return e.Err }

// Listen binds host:port for the endpoint configured by flag, wrapping failures in a PortError.
func Listen(host string, port int, flag string) (net.Listener, error) {
	l, err := net.Listen("tcp", net.JoinHostPort(host, strconv.Itoa(port)))
	if err != nil {
		return nil, &PortError{Flag: flag, Port: port, Err: err}
	}
	return l, nil
}

// apiDrainTimeout bounds how long Shutdown lets in-flight API requests finish before closing connections.
const apiDrainTimeout = 2 * time.Second

// Server is the running platform. mu guards subsystems, started and the listener state.
type Server struct {
	opts   Options
	log    *slog.Logger
	reg    *registry.Registry
	st     *store.Store
	api    *api.Server
	recons *reconciler.Manager
	dash   dashWiring // the dashboard at "/" (dashboard.go)
	// eventing is the eventing runtime (server/eventing.go).
	eventing *eventingrt.Runtime
	// mqCreds is the internal RocketMQ account when the embedded broker has ACL (server/mqacl.go); else empty.
	mqCreds admin.Credentials
	// tracing is this server's OpenTelemetry tracing (server/tracing.go); ownTracing: built here, shut down here.
	tracing    *tracing.Tracing
	ownTracing bool

	mu         sync.Mutex
	subsystems []Subsystem
	started    []Subsystem
	listener   net.Listener
	httpSrv    *http.Server
	baseCancel context.CancelFunc
	reconDone  chan struct{}
	reconStop  context.CancelFunc
	apiURL     string

	access          AccessInfo           // server/access.go; fixed at New
	tlsConfig       *tls.Config          // the API's certificate (Options.TLSCertFile); nil serves plain HTTP
	serving         *servingSubsystem    // server/serving.go
	pendingFallback http.Handler         // a gateway fallback set before the serving runtime existed
	promReg         *prometheus.Registry // served at /metrics (server/metrics.go)
}

// New opens the store in opts.DataDir and builds the registry, the API and the default reconcilers. Nothing
// listens until Start. Close the returned server with Shutdown.
func New(opts Options) (*Server, error) {
	opts.fill()
	// The data dir holds secrets, messages and logs: private to tide's user when tide creates it.
	if err := os.MkdirAll(opts.DataDir, 0o700); err != nil {
		return nil, fmt.Errorf("--data-dir: %w", err)
	}
	reg := registry.NewDefault()
	st, err := store.Open(store.Options{
		Path:   filepath.Join(opts.DataDir, "store.db"),
		Clock:  opts.Clock,
		Logger: opts.Logger,
		ClusterScoped: func(gk string) bool {
			k, err := reg.ForGroupKind(gk)
			return err == nil && !k.Namespaced
		},
	})
	if err != nil {
		return nil, err
	}
	access, info, err := setupAccess(opts)
	if err != nil {
		_ = st.Close()
		return nil, err
	}
	a, err := api.New(api.Options{Registry: reg, Store: st, Logger: opts.Logger, Access: access})
	if err != nil {
		_ = st.Close()
		return nil, err
	}
	s := &Server{opts: opts, log: opts.Logger.With("component", "server"), reg: reg, st: st, api: a, access: info}
	if s.tlsConfig, err = loadTLS(opts); err != nil {
		_ = st.Close()
		return nil, err
	}
	s.recons = reconciler.NewManager(reconciler.ManagerOptions{Store: st, Registry: reg, Clock: opts.Clock, Logger: opts.Logger})
	a.AddReadyCheck("reconcilers", s.recons.Ready)
	if err := s.setupTracing(); err != nil {
		_ = st.Close()
		return nil, err
	}
	s.setupMessageTrace() // msgtrace.go
	if err := s.setupDashboard(); err != nil {
		_ = st.Close()
		return nil, err
	}
	s.registerDefaultReconcilers()
	if err := s.setupServing(); err != nil {
		_ = st.Close()
		return nil, err
	}
	if err := s.setupEventing(); err != nil {
		_ = st.Close()
		return nil, err
	}
	if err := s.setupMetrics(); err != nil {
		_ = st.Close()
		return nil, err
	}
	return s, nil
}

// Registry is the kind registry (register more kinds before Start).
func (s *Server) Registry() *registry.Registry { return s.reg }

// Store is the object store.
func (s *Server) Store() *store.Store { return s.st }

// API is the control-plane HTTP handler (mount the dashboard with API().Handle, add readiness checks).
func (s *Server) API() *api.Server { return s.api }

// Reconcilers is the reconciler manager (add or replace reconcilers before Start).
func (s *Server) Reconcilers() *reconciler.Manager { return s.recons }

// Options returns the filled options.
func (s *Server) Options() Options { return s.opts }

// AddSubsystem appends a subsystem; subsystems start in the order added and stop in reverse. Its Ready feeds
// /readyz. Call before Start.
func (s *Server) AddSubsystem(sub Subsystem) {
	s.mu.Lock()
	s.subsystems = append(s.subsystems, sub)
	s.mu.Unlock()
	s.api.AddReadyCheck(sub.Name(), sub.Ready)
	s.addReadyChecks(sub) // health.go
}

// Start listens on the API port, starts every subsystem in order and then the reconcilers. It returns once all
// listen; on error, what was started is shut down again.
func (s *Server) Start(ctx context.Context) error {
	l, err := Listen(s.opts.Host, s.opts.APIPort, "--api-port")
	if err != nil {
		return err
	}
	scheme := "http"
	if s.tlsConfig != nil {
		l, scheme = tls.NewListener(l, s.tlsConfig), "https"
	}
	baseCtx, baseCancel := context.WithCancel(context.Background())
	// net/http's own complaints (failed TLS handshakes, bad requests) come from peers, not from tide: debug level.
	srv := &http.Server{Handler: s.api, ReadHeaderTimeout: 10 * time.Second,
		ErrorLog:    slog.NewLogLogger(s.log.Handler(), slog.LevelDebug),
		BaseContext: func(net.Listener) context.Context { return baseCtx }}
	s.mu.Lock()
	s.listener, s.httpSrv, s.baseCancel = l, srv, baseCancel
	s.apiURL = scheme + "://" + l.Addr().String()
	subs := append([]Subsystem(nil), s.subsystems...)
	s.mu.Unlock()
	go func() {
		if err := srv.Serve(l); err != nil && !errors.Is(err, http.ErrServerClosed) {
			s.log.Error("api server stopped", "err", err)
		}
	}()
	for _, sub := range subs {
		if err := sub.Start(ctx); err != nil {
			shutCtx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			_ = s.Shutdown(shutCtx)
			return fmt.Errorf("start %s: %w", sub.Name(), err)
		}
		s.mu.Lock()
		s.started = append(s.started, sub)
		s.mu.Unlock()
	}
	rctx, rcancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	s.mu.Lock()
	s.reconStop, s.reconDone = rcancel, done
	s.mu.Unlock()
	go func() {
		defer close(done)
		if err := s.recons.Run(rctx); err != nil {
			s.log.Error("reconcilers stopped", "err", err)
		}
	}()
	s.log.Info("started", "api", s.apiURL, "dataDir", s.opts.DataDir)
	s.warnInsecure()
	return nil
}

// APIURL is the API's base URL once started ("http://127.0.0.1:8090").
func (s *Server) APIURL() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.apiURL
}

// Endpoints lists what the platform serves, with actual bound addresses.
func (s *Server) Endpoints() []Endpoint {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := []Endpoint{{Name: "api", URL: s.apiURL}}
	for _, sub := range s.started {
		if r, ok := sub.(EndpointReporter); ok {
			out = append(out, r.Endpoints()...)
		}
	}
	return out
}

// Ready reports whether every readiness check passes (the same as GET /readyz).
func (s *Server) Ready() bool { return s.api.CheckReady() == nil }

// Shutdown stops reconcilers, then subsystems in reverse order, then the API, then closes the store. Watches
// streaming on the API are ended. It returns the first error; it can be called once.
func (s *Server) Shutdown(ctx context.Context) error {
	s.mu.Lock()
	started := s.started
	s.started = nil
	srv, baseCancel, reconStop, reconDone := s.httpSrv, s.baseCancel, s.reconStop, s.reconDone
	s.mu.Unlock()
	var errs []error
	if reconStop != nil {
		reconStop()
		select {
		case <-reconDone:
		case <-ctx.Done():
			errs = append(errs, fmt.Errorf("reconcilers: %w", ctx.Err()))
		}
	}
	for i := len(started) - 1; i >= 0; i-- {
		if err := started[i].Shutdown(ctx); err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", started[i].Name(), err))
		}
	}
	if srv != nil {
		baseCancel() // ends watch streams so graceful shutdown does not wait for them
		// net/http waits up to 5 s for connections that were dialed but never sent a request (StateNew), e.g. a
		// client cancelled mid-dial; after a bounded drain of real requests, close whatever is left.
		drainCtx, cancel := context.WithTimeout(ctx, apiDrainTimeout)
		err := srv.Shutdown(drainCtx)
		cancel()
		if err != nil {
			_ = srv.Close()
			if ctx.Err() != nil {
				errs = append(errs, fmt.Errorf("api: %w", ctx.Err()))
			}
		}
	}
	if err := s.shutdownTracing(ctx); err != nil {
		errs = append(errs, err)
	}
	if err := s.st.Close(); err != nil {
		errs = append(errs, fmt.Errorf("store: %w", err))
	}
	return errors.Join(errs...)
}
