package server

import (
	"context"

	"github.com/tide-run/tide/internal/tracing"
	"github.com/tide-run/tide/internal/tracing/traceapi"
)

// DashboardTracesPath serves the trace store to the dashboard's trace page (the answers of traceapi.TracesPath).
const DashboardTracesPath = "/dashboard/api/traces"

// setupTracing builds this server's tracing (Options.Tracing, else from the OTEL_* environment) and serves its
// in-memory store on the API at /tide/v1/traces (behind the API's guard like every other path). The provider is
// handed to the serving and eventing runtimes through their options; nothing is global.
func (s *Server) setupTracing() error {
	t := s.opts.Tracing
	if t == nil {
		var err error
		if t, err = tracing.New(context.Background(), tracing.Options{Logger: s.opts.Logger}); err != nil {
			return err
		}
		s.ownTracing = true
	}
	s.tracing = t
	h := tracing.Handler(t.Store())
	s.api.Handle("GET "+traceapi.TracesPath, h)
	s.api.Handle("POST "+traceapi.TracesPath, h)
	s.api.Handle("GET "+traceapi.TracesPath+"/{id}", h)
	// An OTLP/HTTP receiver, so a program exporting with the standard SDK (OTEL_EXPORTER_OTLP_ENDPOINT set to this
	// API's URL) adds its spans to the same traces; behind the guard, so the token applies where one is required.
	s.api.Handle("POST "+tracing.OTLPTracesPath, tracing.OTLPHandler(t.Store()))
	// The same for the dashboard's trace page, under its own path: a browser that opened the dashboard with
	// ?token= carries the token as the dashboard cookie, which the API's guard accepts on /dashboard/ paths only.
	s.api.Handle("GET "+DashboardTracesPath, h)
	s.api.Handle("GET "+DashboardTracesPath+"/{id}", h)
	switch exp := t.Export(); {
	case exp == "":
		s.log.Info("tracing disabled (OTEL_SDK_DISABLED=true); trace contexts still propagate")
	case exp != "memory":
		s.log.Info("exporting traces", "to", exp, "memory", t.Store().Capacity())
	}
	return nil
}

// Tracing is the server's tracing (provider and in-memory store).
func (s *Server) Tracing() *tracing.Tracing { return s.tracing }

// shutdownTracing flushes the exporter of a tracing this server built itself (Options.Tracing is the caller's).
func (s *Server) shutdownTracing(ctx context.Context) error {
	if !s.ownTracing {
		return s.tracing.ForceFlush(ctx)
	}
	return s.tracing.Shutdown(ctx)
}
