package play_test

import (
	"context"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tide-run/tide/demo/barrage/play"
	"github.com/tide-run/tide/server"
)

type syncBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func testLogger() *slog.Logger {
	if os.Getenv("TIDE_DEMO_LOG") != "" {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelInfo}))
	}
	return slog.New(slog.NewTextHandler(io.Discard, nil))
}

// TestDemoSendEndToEnd is `tide demo barrage --send hello --concurrency 10 --duration 5s --count 100` against a
// real platform the demo starts in this process on ephemeral ports: ko:// builds of the processor and the page,
// RocketMQ (the page publishes with the official client), RocketMQSource, Broker, Trigger, the processor scaling
// with containerConcurrency 2, SQLite table storage, the page's event stream.
func TestDemoSendEndToEnd(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end demo: skipped with -short")
	}
	dir := t.TempDir()
	wd, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	logger := testLogger()
	platform := server.Options{DataDir: filepath.Join(dir, "tide"), Logger: logger}
	var progress syncBuffer
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	start := time.Now()
	var readyAt time.Time
	res, err := play.Run(ctx, play.Options{
		Server:       "http://127.0.0.1:1", // nothing answers: the demo starts its own tide
		Platform:     &platform,
		SourceDir:    wd,
		OutDir:       filepath.Join(dir, "out"),
		ReadyTimeout: 4 * time.Minute, // a cold build cache compiles modernc.org/sqlite for both programs
		Send:         "hello",
		Concurrency:  10,
		Duration:     5 * time.Second,
		Count:        100,
		DrainTimeout: time.Minute,
		ZeroTimeout:  time.Minute,
		Progress:     &progress,
		OnReady:      func(string, string) { readyAt = time.Now() },
		Logger:       logger,
	})
	t.Logf("demo output (ready after %v, total %v):\n%s", readyAt.Sub(start).Round(time.Second), time.Since(start).Round(time.Second), progress.String())
	if err != nil {
		t.Fatalf("demo: %v", err)
	}
	var sum strings.Builder
	_ = res.Summary.WriteText(&sum)
	t.Logf("summary:\n%s", sum.String())
	s := res.Summary
	if !res.Started || res.Platform != nil || !res.Sent {
		t.Errorf("started %v, kept %v, sent %v", res.Started, res.Platform != nil, res.Sent)
	}
	if !s.OK() || s.Sent != 100 || s.Lost != 0 || s.Shown != 100 || s.Processed != 100 || s.NotSent != 0 {
		t.Fatalf("sent %d, not sent %d, processed %d, shown %d, lost %d", s.Sent, s.NotSent, s.Processed, s.Shown, s.Lost)
	}
	if s.P50 <= 0 || s.P99 < s.P50 {
		t.Errorf("latency p50 %v p99 %v", s.P50, s.P99)
	}
	if s.PeakInstances < 2 {
		t.Errorf("peak instances %d: containerConcurrency 2 under 20 comments/s must scale the processor out", s.PeakInstances)
	}
	if !s.BackToZero {
		t.Errorf("the processor did not scale back to zero")
	}
	if b, err := os.ReadFile(res.SummaryPath); err != nil || !strings.Contains(string(b), "lost                     0") {
		t.Errorf("summary.txt: %v\n%s", err, b)
	}
	if !strings.HasPrefix(res.PageURL, "http://demo-barrage.default.localhost:") {
		t.Errorf("page URL %q", res.PageURL)
	}
}
