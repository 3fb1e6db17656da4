package servertest

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/tide-run/tide/internal/tailbuf"
	"github.com/tide-run/tide/server"
)

// maxLog bounds the log kept for a failing test; older lines are dropped first.
const maxLog = 512 << 10

// Server is a platform started by Start; Stop ends it before the test does (restart tests).
type Server struct {
	*server.Server
	t       testing.TB
	logs    *tailbuf.Buffer
	once    sync.Once
	stopErr error
}

// Start starts the platform with opts and stops it when the test ends; it does not wait for readiness (see
// RunServer). Zero fields get test defaults: DataDir a t.TempDir(); ports stay 0 (free ports; the bound addresses
// are in Endpoints); Logger one that keeps the platform's log (the last 512 KiB) and writes it to t.Log only if the
// test failed.
func Start(t testing.TB, opts server.Options) *Server {
	t.Helper()
	s := &Server{t: t}
	if opts.Logger == nil {
		s.logs = &tailbuf.Buffer{Max: maxLog}
		opts.Logger = slog.New(slog.NewTextHandler(s.logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	if opts.DataDir == "" {
		opts.DataDir = t.TempDir()
	}
	srv, err := server.New(opts)
	if err != nil {
		t.Fatalf("servertest: %v", err)
	}
	if err := srv.Start(context.Background()); err != nil {
		t.Fatalf("servertest: %v", err)
	}
	s.Server = srv
	t.Cleanup(func() {
		if err := s.Stop(); err != nil {
			t.Errorf("servertest: shutdown: %v", err)
		}
		if s.logs != nil && t.Failed() {
			t.Logf("servertest: platform log:\n%s", s.logs.String())
		}
	})
	return s
}

// RunServer is Start, then waits up to 30 s for the platform to report ready (GET /readyz's answer).
func RunServer(t testing.TB, opts server.Options) *Server {
	t.Helper()
	s := Start(t, opts)
	deadline := time.Now().Add(30 * time.Second)
	for !s.Ready() {
		if time.Now().After(deadline) {
			t.Fatalf("servertest: not ready after 30 s: %v", s.notReady())
		}
		time.Sleep(20 * time.Millisecond)
	}
	return s
}

func (s *Server) notReady() string {
	var out []string
	for _, e := range s.Endpoints() {
		out = append(out, e.Name+" "+e.URL)
	}
	return fmt.Sprint(out)
}

// Stop shuts the platform down within 20 s; later calls return the first call's error.
func (s *Server) Stop() error {
	s.once.Do(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		s.stopErr = s.Server.Shutdown(ctx)
	})
	return s.stopErr
}
