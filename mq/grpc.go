package mq

import (
	"context"
	"fmt"
	"net"
	"strconv"

	"github.com/tide-run/tide/mq/acl"
	"github.com/tide-run/tide/mq/internal/broker"
	"github.com/tide-run/tide/mq/internal/grpcproxy"
	"github.com/tide-run/tide/mq/remoting"
)

// The RocketMQ 5 gRPC endpoint (mq/internal/grpcproxy): listened on with the other ports, served once the broker
// exists, stopped before it.

func (s *Server) listenGRPC(ctx context.Context) (net.Listener, error) {
	if s.opts.DisableGRPC {
		return nil, nil
	}
	var lc net.ListenConfig
	ln, err := lc.Listen(ctx, "tcp", net.JoinHostPort(s.opts.Host, strconv.Itoa(s.opts.GRPCPort)))
	if err != nil {
		return nil, fmt.Errorf("mq: gRPC endpoint listen: %w", err)
	}
	return ln, nil
}

// startGRPC serves the endpoint on ln; with ACL (w not nil) it checks every request against the remoting port's
// accounts (grpcproxy's acl.go).
func (s *Server) startGRPC(b *broker.Broker, ln net.Listener, w *acl.Watcher) error {
	if ln == nil {
		return nil
	}
	p, err := grpcproxy.New(grpcproxy.Options{Broker: b, DataDir: s.opts.DataDir, Host: s.opts.Host,
		Logger: s.opts.Logger, MinInvisible: s.opts.GRPCMinInvisible, MinPolling: s.opts.GRPCMinPolling,
		MaxPolling: s.opts.GRPCMaxPolling, AutoRenewInvisible: s.opts.GRPCAutoRenewInvisible, MaxConns: s.grpcMaxConns(), ACL: w})
	if err != nil {
		ln.Close()
		return fmt.Errorf("mq: %w", err)
	}
	if err := p.Serve(ln); err != nil {
		ln.Close()
		return fmt.Errorf("mq: %w", err)
	}
	s.grpc = p
	return nil
}

// GRPCAddr is the RocketMQ 5 gRPC endpoint's "ip:port" (give it to 5.x clients as their endpoint); empty when
// DisableGRPC.
func (s *Server) GRPCAddr() string {
	if s.grpc == nil {
		return ""
	}
	return s.grpc.Addr()
}

func (s *Server) shutdownGRPC(ctx context.Context) error {
	if s.grpc == nil {
		return nil
	}
	return s.grpc.Shutdown(ctx)
}

// GRPCClients lists the ids of the RocketMQ 5 clients connected to the gRPC endpoint (with a Telemetry stream).
func (s *Server) GRPCClients() []string {
	if s.grpc == nil {
		return nil
	}
	return s.grpc.Clients()
}

// GRPCClientStack asks a connected RocketMQ 5 client for its thread (goroutine) dump over its Telemetry stream, as
// Apache's proxy does for mqadmin's consumer running info.
func (s *Server) GRPCClientStack(ctx context.Context, clientID string) (string, error) {
	if s.grpc == nil {
		return "", fmt.Errorf("mq: no gRPC endpoint")
	}
	return s.grpc.ThreadStack(ctx, clientID)
}

// grpcMaxConns applies MaxConnections to the gRPC listener as to the remoting ones.
func (s *Server) grpcMaxConns() int {
	switch {
	case s.opts.MaxConnections < 0:
		return 0
	case s.opts.MaxConnections == 0:
		return remoting.DefaultMaxConns()
	}
	return s.opts.MaxConnections
}
