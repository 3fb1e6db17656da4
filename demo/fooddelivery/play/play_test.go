package play_test

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tide-run/tide/dashboard/dashboardtest"
	"github.com/tide-run/tide/demo/fooddelivery/play"
	"github.com/tide-run/tide/server"
)

// syncBuffer collects the demo's progress output from its goroutine.
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

// TestDemoEndToEnd is `tide demo food-delivery` on a 30-second day against a real platform the demo starts itself
// in this process on ephemeral ports: ko:// build of the order service, RocketMQ, RocketMQSource, Broker, Trigger,
// autoscaled process instances, SQLite. While the day plays, headless Chromium watches the dashboard.
func TestDemoEndToEnd(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end demo: skipped with -short")
	}
	dir := t.TempDir()
	wd, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	level := slog.LevelWarn
	logger := slog.New(slog.NewTextHandler(io.Discard, nil))
	if os.Getenv("TIDE_DEMO_LOG") != "" {
		logger = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level}))
	}
	platform := server.Options{APIPort: 0, GatewayPort: 0, NameServerPort: 0, BrokerPort: 0,
		DataDir: filepath.Join(dir, "tide"), Logger: logger}
	var progress syncBuffer
	apiURL := make(chan string, 1)
	type outcome struct {
		res play.Result
		err error
	}
	done := make(chan outcome, 1)
	ctx, cancel := context.WithTimeout(context.Background(), 6*time.Minute)
	defer cancel()
	go func() {
		res, err := play.Run(ctx, play.Options{
			Server:         "http://127.0.0.1:1", // nothing answers: the demo starts its own tide
			Platform:       &platform,
			SourceDir:      wd,
			OutDir:         filepath.Join(dir, "out"),
			ReadyTimeout:   4 * time.Minute, // a cold build cache compiles modernc.org/sqlite for the order service
			DayLength:      30 * time.Second,
			PeakRate:       120,
			MalformedEvery: 100,
			DrainTimeout:   60 * time.Second,
			ZeroTimeout:    60 * time.Second,
			Progress:       &progress,
			OnReady:        func(u string) { apiURL <- u },
			Logger:         logger,
		})
		done <- outcome{res, err}
	}()

	var out outcome
	select {
	case u := <-apiURL:
		t.Run("dashboard", func(t *testing.T) {
			p := dashboardtest.Open(t, u+"/")
			p.WaitServiceReady(play.Namespace, play.OrderService, 30*time.Second)
			ready := p.WaitRise(play.Namespace, play.OrderService, 2, 60*time.Second)
			t.Logf("dashboard instance line: %v", ready)
			p.Screenshot("dashboard-demo.png")
			p.NoProblems()
		})
		out = <-done
	case out = <-done:
	}
	t.Logf("demo output:\n%s", progress.String())
	if errors.Is(out.err, play.ErrNotImplemented) {
		t.Fatalf("an eventing or serving kind fell back to the not-implemented reconciler: %v", out.err)
	}
	if out.err != nil {
		t.Fatalf("demo: %v", out.err)
	}
	rep := out.res.Report
	var sum strings.Builder
	_ = rep.Summary.WriteText(&sum)
	t.Logf("summary:\n%s", sum.String())
	if !out.res.Started || out.res.Platform != nil {
		t.Errorf("started %v, platform kept %v: the demo must start and stop its own tide", out.res.Started, out.res.Platform != nil)
	}
	s := rep.Summary
	if s.Sent == 0 || s.Lost != 0 || !s.OK() || !rep.Drained {
		t.Fatalf("sent %d, lost %d (%v), drained %v", s.Sent, s.Lost, s.LostIDs, rep.Drained)
	}
	if s.Processed+s.DeadLettered != s.Sent || s.DeadLettered == 0 {
		t.Errorf("processed %d + dead-lettered %d != sent %d (malformed orders must dead-letter)", s.Processed, s.DeadLettered, s.Sent)
	}
	if s.PeakInstances < 2 {
		t.Errorf("peak instances %d: the service did not scale out at the peaks", s.PeakInstances)
	}
	if !s.ScaledToZero {
		t.Errorf("the service did not scale to zero after the last peak")
	}
	// What this test asserts about scaling rests on events, not on how fast this machine plays a 30-second day: the
	// load scaled the service out (above), and the series starts and ends at zero because the demo waits for zero
	// before the day (waitZero) and after it (ZeroTimeout). Per-meal shape (instances rising inside each meal's few
	// seconds, zero in each short valley) depends on the autoscaler's real-time windows against a compressed clock, so
	// it is reported (t.Logf) but asserted only on synthetic samples in demo/fooddelivery's summary tests.
	for _, m := range s.Meals {
		t.Logf("%s: %d orders, up to %d instances, valley zero %v (%v after)", m.Name, m.Sent, m.PeakInstances, m.ValleyZero, m.ZeroAfter)
	}
	if n := len(rep.Instances); n == 0 || rep.Instances[0].Value != 0 || rep.Instances[n-1].Value != 0 {
		t.Errorf("instance samples do not start and end at zero: %v", rep.Instances)
	}
	for _, f := range []string{rep.SummaryPath, rep.ChartPath} {
		b, err := os.ReadFile(f)
		if err != nil || len(b) == 0 {
			t.Errorf("%s not written: %v", f, err)
		}
	}
	if b, _ := os.ReadFile(rep.ChartPath); !strings.Contains(string(b), "<svg") {
		t.Errorf("%s is not an SVG", rep.ChartPath)
	}
	if art := os.Getenv("TIDE_ARTIFACTS"); art != "" {
		for _, f := range []string{rep.SummaryPath, rep.ChartPath} {
			if b, err := os.ReadFile(f); err == nil {
				_ = os.WriteFile(filepath.Join(art, "demo-"+filepath.Base(f)), b, 0o644)
			}
		}
	}
}
