package gateway

import (
	"context"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/types"

	"github.com/tide-run/tide/serving/activator"
	"github.com/tide-run/tide/serving/autoscaler"
	"github.com/tide-run/tide/serving/autoscaler/config"
	"github.com/tide-run/tide/serving/autoscaler/metrics"
	"github.com/tide-run/tide/serving/process"
)

// TestWithRealAutoscaler wires the data plane to serving/autoscaler's KPA the way docs/serving.md describes (the
// server package does the same) and checks the whole loop with a real process and the real clock: a revision at
// zero scales up on its first request, scales out under load up to max-scale, and goes back to zero after the
// stable window (6 s, the shortest Knative allows) plus a 1 s grace period, without a failed request.
func TestWithRealAutoscaler(t *testing.T) {
	var (
		mu    sync.Mutex
		pools = map[string]*process.Pool{}
		gw    *Gateway
	)
	col := metrics.NewCollector()
	ms, err := autoscaler.NewMultiscaler(autoscaler.Options{
		Collector: col,
		Ready: autoscaler.ReadyCounterFunc(func(rev string) int {
			mu.Lock()
			defer mu.Unlock()
			return pools[rev].ReadyCount()
		}),
		Scaler: autoscaler.ScalerFunc(func(rev string, desired int32, inPath bool) {
			mu.Lock()
			p := pools[rev]
			mu.Unlock()
			p.SetScale(int(desired))
			ns, name, _ := strings.Cut(rev, "/")
			gw.SetActivatorInPath(types.NamespacedName{Namespace: ns, Name: name}, inPath)
		}),
		TickInterval: 250 * time.Millisecond,
	})
	if err != nil {
		t.Fatal(err)
	}
	defer ms.Close()
	stats := NewStatReporter(StatReporterOptions{Recorder: ms})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go stats.Run(ctx)
	gw = New(Options{Stats: stats, Poker: activator.PokerFunc(func(k types.NamespacedName) { ms.Poke(k.String()) })})
	srv := serve(t, gw)
	p, key := deploy(t, gw, revSpec{name: "svc-00001", cc: 1})
	mu.Lock()
	pools[key.String()] = p
	mu.Unlock()
	if err := gw.SetRoute("default", "svc", []Target{{Revision: "svc-00001", Percent: 100}}); err != nil {
		t.Fatal(err)
	}

	cfg := config.Defaults()
	cfg.StableWindow = 6 * time.Second
	cfg.ScaleToZeroGracePeriod = time.Second
	cfg.AllowZeroInitialScale = true
	settings, err := config.ForRevision(cfg, map[string]string{
		"autoscaling.knative.dev/initial-scale": "0",
		"autoscaling.knative.dev/max-scale":     "3",
	}, 1)
	if err != nil {
		t.Fatal(err)
	}
	if err := ms.Add(key.String(), settings); err != nil {
		t.Fatal(err)
	}
	if p.Scale() != 0 {
		t.Fatalf("initial scale %d, want 0", p.Scale())
	}

	// Scale from zero on the first request.
	if c, body := get(t, http.DefaultClient, srv, host, "/", nil); c != 200 || strings.TrimSpace(body) != "svc-00001" {
		t.Fatalf("first request: %d %q", c, body)
	}

	// Scale out: six clients keep CC=1 instances busy; the KPA wants ~9 and max-scale caps it at 3.
	var ok, failed atomic.Int64
	stop := make(chan struct{})
	var wg sync.WaitGroup
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 16}}
	for range 6 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				if c, body := get(t, client, srv, host, "/sleep?ms=50", nil); c == 200 {
					ok.Add(1)
				} else {
					failed.Add(1)
					t.Errorf("status %d: %s", c, body)
				}
			}
		}()
	}
	waitForD(t, 15*time.Second, "scale out to max-scale 3", func() bool { return p.ReadyCount() == 3 })
	close(stop)
	wg.Wait()
	if failed.Load() != 0 {
		t.Fatalf("%d requests failed under load", failed.Load())
	}

	// Idle: back to zero after the stable window and the grace period.
	idleFrom := time.Now()
	waitForD(t, 20*time.Second, "scale to zero", func() bool { return p.Scale() == 0 && len(p.Instances()) == 0 })
	t.Logf("served %d requests under load without failure; scaled to zero %s after the load stopped", ok.Load(), time.Since(idleFrom).Round(100*time.Millisecond))
}

func waitForD(t *testing.T, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", d, what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}
