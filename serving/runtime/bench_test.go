package runtime_test

import (
	"fmt"
	"net/http"
	"sort"
	"sync"
	"testing"
	"time"

	"github.com/tide-run/tide/internal/gcfloor"
)

// Platform benchmarks: the whole `tide up` composition, real processes, real HTTP. They are rerunnable commands
// (see docs/BENCHMARKS.md), not timed tests; each iteration needs the revision to go back to zero (about 8 s with
// the shortened idle window), so run them with a small -benchtime, e.g.
//
//	go test ./serving/runtime -run '^$' -bench 'ColdStart|StepLoad' -benchtime 5x

// benchService has containerConcurrency 1 so that a step of N concurrent requests needs N instances.
const benchService = `
apiVersion: serving.knative.dev/v1
kind: Service
metadata: {name: bench}
spec:
  template:
    metadata:
      annotations:
        autoscaling.knative.dev/max-scale: "8"
    spec:
      containerConcurrency: 1
      containers:
      - image: ko://github.com/tide-run/tide/test/apps/conformance
`

func (p *platform) waitScale(rev string, desired, actual int64, timeout time.Duration) {
	p.eventually(fmt.Sprintf("%s at %d/%d", rev, desired, actual), timeout, func() string {
		if d, a := p.replicas(rev); d != desired || a != actual {
			return fmt.Sprintf("desired %d actual %d", d, a)
		}
		return ""
	})
}

// BenchmarkColdStartPlatform: zero to first response through the gateway, activator and a fresh process (the
// binary is already built), side by side with a request to the warm instance right after (the peer).
func BenchmarkColdStartPlatform(b *testing.B) {
	gcfloor.InstallForBenchmark(b) // as the tide binary runs the platform
	p := start(b)
	p.apply(fastScaling)
	p.apply(benchService)
	p.waitReady("ksvc", "bench")
	hc := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}}
	p.hc = hc
	var cold, warm []time.Duration
	b.ResetTimer()
	for range b.N {
		b.StopTimer()
		p.waitScale("bench-00001", 0, 0, 60*time.Second)
		b.StartTimer()
		t0 := time.Now()
		p.mustGet("bench.default.localhost", "/")
		cold = append(cold, time.Since(t0))
		b.StopTimer()
		t0 = time.Now()
		p.mustGet("bench.default.localhost", "/")
		warm = append(warm, time.Since(t0))
		b.StartTimer()
	}
	b.StopTimer()
	b.ReportMetric(pct(cold, 50), "cold-p50-ms")
	b.ReportMetric(pct(cold, 99), "cold-p99-ms")
	b.ReportMetric(pct(warm, 50), "warm-p50-ms")
}

// BenchmarkStepLoad: from one ready instance, a step to 8 concurrent 100 ms requests (containerConcurrency 1,
// max-scale 8); reported is the time until 8 instances are ready, and how many requests failed on the way.
func BenchmarkStepLoad(b *testing.B) {
	gcfloor.InstallForBenchmark(b)
	p := start(b)
	p.apply(fastScaling)
	p.apply(benchService)
	p.waitReady("ksvc", "bench")
	var took []time.Duration
	failures := 0
	b.ResetTimer()
	for range b.N {
		b.StopTimer()
		p.waitScale("bench-00001", 1, 1, 60*time.Second)
		stop := make(chan struct{})
		var wg sync.WaitGroup
		var mu sync.Mutex
		b.StartTimer()
		t0 := time.Now()
		for range 8 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for {
					select {
					case <-stop:
						return
					default:
					}
					if code, _, err := p.request("bench.default.localhost", "/sleep?ms=100"); err != nil || code != 200 {
						mu.Lock()
						failures++
						mu.Unlock()
					}
				}
			}()
		}
		for {
			if ready := countReady(p); ready >= 8 {
				break
			}
			if time.Since(t0) > 60*time.Second {
				b.Fatal("8 instances never became ready")
			}
			time.Sleep(5 * time.Millisecond)
		}
		took = append(took, time.Since(t0))
		b.StopTimer()
		close(stop)
		wg.Wait()
	}
	b.ReportMetric(pct(took, 50), "to-8-ready-p50-ms")
	b.ReportMetric(float64(failures), "failed-requests")
}

func countReady(p *platform) int {
	n := 0
	for _, in := range p.srv.Serving().Instances("default", "bench-00001") {
		if in.Ready && !in.Draining {
			n++
		}
	}
	return n
}

// pct returns the p-th percentile in milliseconds.
func pct(ds []time.Duration, p int) float64 {
	if len(ds) == 0 {
		return 0
	}
	s := append([]time.Duration(nil), ds...)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	i := (len(s)*p + 99) / 100
	if i > 0 {
		i--
	}
	return float64(s[i].Microseconds()) / 1000
}
