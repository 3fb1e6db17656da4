package gateway

import (
	"context"
	"net/http"
	"net/http/httptest"
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

// kpa is the data plane wired to serving/autoscaler's KPA the way docs/serving.md describes (the server package
// does the same), with the real clock.
type kpa struct {
	ms  *autoscaler.Multiscaler
	gw  *Gateway
	srv *httptest.Server
	cfg config.Config

	mu    sync.Mutex
	pools map[string]*process.Pool
}

func newKPA(t testing.TB, tick time.Duration) *kpa {
	k := &kpa{pools: map[string]*process.Pool{}}
	ms, err := autoscaler.NewMultiscaler(autoscaler.Options{
		Collector: metrics.NewCollector(),
		Ready: autoscaler.ReadyCounterFunc(func(rev string) int {
			k.mu.Lock()
			defer k.mu.Unlock()
			return k.pools[rev].ReadyCount()
		}),
		Scaler: autoscaler.ScalerFunc(func(rev string, desired int32, inPath bool) {
			k.mu.Lock()
			p := k.pools[rev]
			k.mu.Unlock()
			p.SetScale(int(desired))
			ns, name, _ := strings.Cut(rev, "/")
			k.gw.SetActivatorInPath(types.NamespacedName{Namespace: ns, Name: name}, inPath)
		}),
		TickInterval: tick,
	})
	if err != nil {
		t.Fatal(err)
	}
	k.ms = ms
	t.Cleanup(ms.Close)
	stats := NewStatReporter(StatReporterOptions{Recorder: ms})
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	go stats.Run(ctx)
	k.gw = New(Options{Stats: stats, Poker: activator.PokerFunc(func(n types.NamespacedName) { ms.Poke(n.String()) })})
	k.srv = serve(t, k.gw)
	k.cfg = config.Defaults()
	k.cfg.StableWindow = 6 * time.Second // the shortest Knative allows
	k.cfg.ScaleToZeroGracePeriod = time.Second
	k.cfg.AllowZeroInitialScale = true
	return k
}

// add deploys a revision routed 100 % from service "svc" and hands it to the autoscaler with the annotations.
func (k *kpa) add(t testing.TB, rs revSpec, annotations map[string]string) *process.Pool {
	p, key := deploy(t, k.gw, rs)
	k.mu.Lock()
	k.pools[key.String()] = p
	k.mu.Unlock()
	if err := k.gw.SetRoute("default", "svc", []Target{{Revision: rs.name, Percent: 100}}); err != nil {
		t.Fatal(err)
	}
	settings, err := config.ForRevision(k.cfg, annotations, rs.cc)
	if err != nil {
		t.Fatal(err)
	}
	if err := k.ms.Add(key.String(), settings); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { k.ms.Remove(key.String()) })
	return p
}

// load runs n clients in a loop until stop is closed, counting responses.
func (k *kpa) load(t testing.TB, n int, path string, stop chan struct{}, ok, failed *atomic.Int64) *sync.WaitGroup {
	var wg sync.WaitGroup
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 2 * n}}
	for range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				if c, body := get(t, client, k.srv, host, path, nil); c == 200 {
					ok.Add(1)
				} else {
					failed.Add(1)
					t.Errorf("status %d: %s", c, body)
				}
			}
		}()
	}
	return &wg
}

// TestWithRealAutoscaler checks the whole loop with a real process, the real KPA and the real clock: a revision at
// zero scales up on its first request, scales out under load up to max-scale, and goes back to zero after the
// stable window (6 s) plus a 1 s grace period, without a failed request.
func TestWithRealAutoscaler(t *testing.T) {
	k := newKPA(t, 250*time.Millisecond)
	p := k.add(t, revSpec{name: "svc-00001", cc: 1}, map[string]string{
		"autoscaling.knative.dev/initial-scale": "0",
		"autoscaling.knative.dev/max-scale":     "3",
	})
	if p.Scale() != 0 {
		t.Fatalf("initial scale %d, want 0", p.Scale())
	}

	// Scale from zero on the first request.
	if c, body := get(t, http.DefaultClient, k.srv, host, "/", nil); c != 200 || strings.TrimSpace(body) != "svc-00001" {
		t.Fatalf("first request: %d %q", c, body)
	}

	// Scale out: six clients keep CC=1 instances busy; the KPA wants ~9 and max-scale caps it at 3.
	var ok, failed atomic.Int64
	stop := make(chan struct{})
	wg := k.load(t, 6, "/sleep?ms=50", stop, &ok, &failed)
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
