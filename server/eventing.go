package server

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	eventingrt "github.com/tide-run/tide/eventing/runtime"
	"github.com/tide-run/tide/mq"
)

// EventingOptions tune the eventing runtime; zero values mean the documented defaults of eventingrt.Options.
type EventingOptions struct {
	// StatsInterval is how often changed delivery counters are written to Trigger/RocketMQSource status.
	StatsInterval time.Duration
	// MaxReconsumeTimes bounds RocketMQ redeliveries of an event no one accepted (Triggers).
	MaxReconsumeTimes int32
	// SourceRetryDelayLevel is the RocketMQ delay level for a RocketMQSource message that goes back to RocketMQ.
	SourceRetryDelayLevel int
	// MQDelayLevels overrides the embedded broker's 18 delay levels (tests shorten them).
	MQDelayLevels []time.Duration
	// MQFS is the embedded broker's file layer (tests inject faults, e.g. a full disk). Default the OS.
	MQFS mq.FS
	// MQMaxConnections, MQIdleTimeout and MQFrameTimeout are the embedded broker's connection defences (flags
	// --rocketmq-max-connections, --rocketmq-idle-timeout, --rocketmq-frame-timeout); zero values are mq.Options'
	// defaults (10,000 per listener or less under a low open-file limit, 120s, 30s), negative ones turn them off.
	MQMaxConnections              int
	MQIdleTimeout, MQFrameTimeout time.Duration
	// BusClient is the data plane's RocketMQ client: "native" (tide's remoting client) or "official"
	// (rocketmq-client-go); "" is eventingrt.DefaultBusClient. The environment variable TIDE_EVENTING_BUS sets it
	// when this is empty.
	BusClient string
}

// Eventing is the eventing runtime (nil before New returns).
func (s *Server) Eventing() *eventingrt.Runtime { return s.eventing }

// setupEventing wires messaging and eventing: the embedded RocketMQ (unless external name servers are given) and
// the eventing runtime (Broker/Trigger/RocketMQSource reconcilers, the ingress as the serving gateway's fallback,
// the tail endpoint). It runs after setupServing.
func (s *Server) setupEventing() error {
	var nameServers func() []string
	if len(s.opts.RocketMQNameServers) > 0 {
		fixed := append([]string(nil), s.opts.RocketMQNameServers...)
		nameServers = func() []string { return fixed }
	} else {
		mopts := mq.Options{DataDir: filepath.Join(s.opts.DataDir, "mq"), Host: s.opts.Host,
			NameServerPort: s.opts.NameServerPort, BrokerPort: s.opts.BrokerPort,
			GRPCPort: max(s.opts.GRPCPort, 0), DisableGRPC: s.opts.GRPCPort < 0,
			DelayLevels: s.opts.Eventing.MQDelayLevels, FS: s.opts.Eventing.MQFS, Logger: s.opts.Logger,
			MaxConnections: s.opts.Eventing.MQMaxConnections, IdleTimeout: s.opts.Eventing.MQIdleTimeout,
			FrameTimeout: s.opts.Eventing.MQFrameTimeout}
		if err := s.setupMQACL(&mopts); err != nil {
			return err
		}
		m, err := mq.New(mopts)
		if err != nil {
			return fmt.Errorf("rocketmq: %w", err)
		}
		sub := &mqSubsystem{srv: m, nsPort: s.opts.NameServerPort, brPort: s.opts.BrokerPort, grpcPort: s.opts.GRPCPort}
		s.AddSubsystem(sub)
		nameServers = func() []string { return []string{m.NameServerAddr()} }
	}
	// The serving gateway owns --gateway-port; requests whose Host names no Knative Service (the Broker addresses
	// http://<host>:<port>/<namespace>/<broker>) fall through to the ingress.
	rt, err := eventingrt.New(eventingrt.Options{Store: s.st, NameServers: nameServers, GatewayURL: s.GatewayURL,
		Clock: s.opts.Clock, Logger: s.opts.Logger, StatsInterval: s.opts.Eventing.StatsInterval,
		MaxReconsumeTimes: s.opts.Eventing.MaxReconsumeTimes, SourceRetryDelayLevel: s.opts.Eventing.SourceRetryDelayLevel,
		EmbeddedBroker: len(s.opts.RocketMQNameServers) == 0, Credentials: s.mqCreds,
		TracerProvider: s.tracing.Provider(), BusClient: cmp.Or(s.opts.Eventing.BusClient, os.Getenv("TIDE_EVENTING_BUS"))})
	if err != nil {
		return err
	}
	if err := eventingrt.RegisterKinds(s.reg, nameServers); err != nil {
		return err
	}
	rt.Register(s.recons)
	s.api.Handle(eventingrt.TailPath, rt.TailHandler())
	s.SetGatewayFallback(rt.GatewayFallback())
	s.eventing = rt
	s.AddSubsystem(rt)
	return nil
}

// mqSubsystem runs the embedded RocketMQ name server and broker.
type mqSubsystem struct {
	srv            *mq.Server
	nsPort, brPort int
	grpcPort       int
}

func (m *mqSubsystem) Name() string { return "rocketmq" }

func (m *mqSubsystem) Start(ctx context.Context) error {
	err := m.srv.Start(ctx)
	switch {
	case err == nil:
		return nil
	case strings.Contains(err.Error(), "name server listen"):
		return &PortError{Flag: "--namesrv-port", Port: m.nsPort, Err: unwrapAll(err)}
	case strings.Contains(err.Error(), "broker listen"):
		return &PortError{Flag: "--broker-port", Port: m.brPort, Err: unwrapAll(err)}
	case strings.Contains(err.Error(), "gRPC endpoint listen"):
		return &PortError{Flag: "--grpc-port", Port: m.grpcPort, Err: unwrapAll(err)}
	}
	return err
}

// unwrapAll returns the innermost error (the syscall error of a failed listen), so PortError prints
// "address already in use" and errors.Is still finds it.
func unwrapAll(err error) error {
	for {
		next := errors.Unwrap(err)
		if next == nil {
			return err
		}
		err = next
	}
}

func (m *mqSubsystem) Ready() error {
	if !m.srv.Ready() {
		return errors.New("embedded RocketMQ not running")
	}
	return nil
}

func (m *mqSubsystem) Shutdown(ctx context.Context) error { return m.srv.Shutdown(ctx) }

// ReadyChecks names the embedded broker's parts in /readyz: each listener accepting, the store writable.
func (m *mqSubsystem) ReadyChecks() []ReadyCheck {
	var out []ReadyCheck
	for _, c := range m.srv.ReadyChecks() {
		out = append(out, ReadyCheck{Name: c.Name, Check: c.Check})
	}
	return out
}

func (m *mqSubsystem) Endpoints() []Endpoint {
	eps := []Endpoint{{Name: "rocketmq name server", URL: m.srv.NameServerAddr()}, {Name: "rocketmq broker", URL: m.srv.BrokerAddr()}}
	if a := m.srv.GRPCAddr(); a != "" {
		eps = append(eps, Endpoint{Name: "rocketmq 5 grpc", URL: a})
	}
	return eps
}
