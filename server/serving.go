package server

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"time"

	"github.com/tide-run/tide/serving/process"
	"github.com/tide-run/tide/serving/runtime"
)

// ServingOptions tunes the serving runtime; zero values take the documented defaults.
type ServingOptions struct {
	// BuildCacheDir holds ko:// binaries, cached by content. Default DataDir/build.
	BuildCacheDir string
	// SourceDir resolves ko:// images of revisions without a tide.dev/source-dir annotation (`tide apply` adds
	// one). Default: the server's working directory.
	SourceDir string
	// AutoscalerTick is the interval between autoscaling decisions. Default 2s, as Knative.
	AutoscalerTick time.Duration
	// InstanceUser is the user instances run as when tide runs as root: a name, a uid or uid:gid (flag
	// --instance-user, default "nobody" there). "" (the zero value), "root" or "0" keep tide's own user; when tide
	// is not root it is ignored (only root can switch users).
	InstanceUser string
	// PublicBrokerIngress lets every caller reach the Broker ingress on the gateway (flag --public-broker-ingress);
	// by default only loopback callers do, as a Knative Broker's ingress is cluster-local. Knative Services are
	// public unless labelled networking.knative.dev/visibility: cluster-local.
	PublicBrokerIngress bool
}

// instanceRunAs resolves ServingOptions.InstanceUser for this process (nil: instances run as tide's own user).
func instanceRunAs(spec string) (*process.RunAs, error) {
	if os.Geteuid() != 0 {
		return nil, nil
	}
	switch spec {
	case "", "root", "0", "0:0":
		return nil, nil
	}
	return process.LookupRunAs(spec)
}

// servingSubsystem runs Knative Serving: the gateway listener on --gateway-port, the autoscaler and the revision
// processes (serving/runtime).
type servingSubsystem struct {
	host string
	port int
	rt   *runtime.Runtime
}

// setupServing builds the serving runtime, replaces the default serving reconcilers with the runtime's, mounts
// the log endpoints on the API and adds the gateway as a subsystem.
func (s *Server) setupServing() error {
	runAs, err := instanceRunAs(s.opts.Serving.InstanceUser)
	if err != nil {
		return fmt.Errorf("--instance-user: %w", err)
	}
	if os.Geteuid() == 0 && runAs == nil {
		s.log.Warn("tide runs as root and so will every service instance; use --instance-user to run them unprivileged")
	}
	if runAs != nil {
		// Instances run as another user: they must not read the store (Secrets), messages or logs.
		if st, err := os.Stat(s.opts.DataDir); err == nil && st.Mode().Perm()&0o007 != 0 {
			if err := os.Chmod(s.opts.DataDir, st.Mode().Perm()&^0o007); err != nil {
				return fmt.Errorf("closing --data-dir %s to other users (instances run as %s): %w", s.opts.DataDir, runAs, err)
			}
			s.log.Debug("closed the data dir to other users, since instances run as another user", "dataDir", s.opts.DataDir, "instanceUser", runAs.String())
		}
	}
	rt, err := runtime.New(runtime.Options{
		RunAs:               runAs,
		PublicBrokerIngress: s.opts.Serving.PublicBrokerIngress,
		Store:               s.st,
		DataDir:             s.opts.DataDir,
		BuildCacheDir:       s.opts.Serving.BuildCacheDir,
		SourceDir:           s.opts.Serving.SourceDir,
		Host:                s.opts.Host,
		Port:                s.opts.GatewayPort,
		Clock:               s.opts.Clock,
		AutoscalerTick:      s.opts.Serving.AutoscalerTick,
		Logger:              s.opts.Logger,
		TracerProvider:      s.tracing.Provider(),
	})
	if err != nil {
		return err
	}
	rt.Register(s.recons)
	if err := runtime.RegisterKinds(s.reg); err != nil {
		return err
	}
	s.api.Handle(runtime.RevisionLogPattern, rt.LogsHandler())
	s.api.Handle(runtime.ServiceLogPattern, rt.LogsHandler())
	s.serving = &servingSubsystem{host: s.opts.Host, port: s.opts.GatewayPort, rt: rt}
	if s.pendingFallback != nil {
		rt.SetFallback(s.pendingFallback)
	}
	s.AddSubsystem(s.serving)
	return nil
}

// SetGatewayFallback mounts h for gateway requests whose Host matches no Knative Service (the broker ingress).
// Call before Start (it may also be called before the serving runtime is set up: it is applied then).
func (s *Server) SetGatewayFallback(h http.Handler) {
	if s.serving == nil {
		s.pendingFallback = h
		return
	}
	s.serving.rt.SetFallback(h)
}

// Serving is the serving runtime (tests and benchmarks reach the gateway through it).
func (s *Server) Serving() *runtime.Runtime { return s.serving.rt }

// GatewayURL is the gateway's base URL once started ("http://127.0.0.1:8080"), "" before.
func (s *Server) GatewayURL() string {
	if s.serving == nil || s.serving.rt.Addr() == "" {
		return ""
	}
	return "http://" + s.serving.rt.Addr()
}

func (g *servingSubsystem) Name() string { return "gateway" }

func (g *servingSubsystem) Start(context.Context) error {
	l, err := Listen(g.host, g.port, "--gateway-port")
	if err != nil {
		return err
	}
	g.rt.Serve(l)
	return nil
}

func (g *servingSubsystem) Ready() error { return g.rt.Ready() }

func (g *servingSubsystem) Shutdown(ctx context.Context) error { return g.rt.Shutdown(ctx) }

func (g *servingSubsystem) Endpoints() []Endpoint {
	return []Endpoint{{Name: "gateway", URL: "http://" + g.rt.Addr()}}
}
