package server

import (
	"fmt"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/tide-run/tide/internal/metrics"
)

// MetricsPath is where the API port serves Prometheus metrics.
const MetricsPath = "/metrics"

// setupMetrics builds the platform's Prometheus registry (Go runtime and process collectors), lets each product
// register its collectors on it, and serves it at GET /metrics on the API port. It runs at the end of New, before
// anything starts (the embedded broker and the eventing runtime take their collectors at Start).
//
// /metrics passes the API's guard like every other path (docs/observability.md): on a loopback --host anyone on
// the machine may scrape it anonymously, as they may GET the API; where the token is required (a non-loopback
// --host, or --require-token) Prometheus sends it as a bearer token (authorization.credentials_file pointing at
// <data-dir>/api-token). Metrics carry names of namespaces, topics and groups, which anonymous callers may list
// through the API anyway, and never Secrets' values.
func (s *Server) setupMetrics() error {
	reg := metrics.NewRegistry()
	if s.serving != nil {
		if err := s.serving.rt.RegisterMetrics(reg); err != nil {
			return fmt.Errorf("serving metrics: %w", err)
		}
	}
	if s.eventing != nil {
		if err := s.eventing.RegisterMetrics(reg); err != nil {
			return fmt.Errorf("eventing metrics: %w", err)
		}
	}
	s.mu.Lock()
	subs := append([]Subsystem(nil), s.subsystems...)
	s.mu.Unlock()
	for _, sub := range subs {
		if m, ok := sub.(*mqSubsystem); ok {
			if err := m.srv.RegisterMetrics(reg); err != nil {
				return fmt.Errorf("rocketmq metrics: %w", err)
			}
		}
	}
	s.promReg = reg
	s.api.Handle("GET "+MetricsPath, metrics.Handler(reg, s.opts.Logger))
	return nil
}

// Metrics is the registry served at /metrics: register more collectors on it (an embedder's own) before or after
// Start.
func (s *Server) Metrics() *prometheus.Registry { return s.promReg }
