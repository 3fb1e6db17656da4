package trigger

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.opentelemetry.io/otel/trace"
	eventingv1 "knative.dev/eventing/pkg/apis/eventing/v1"

	"github.com/tide-run/tide/eventing/bus"
	"github.com/tide-run/tide/internal/gcfloor"
	"github.com/tide-run/tide/internal/metrics"
	"github.com/tide-run/tide/internal/tracing"
)

// BenchmarkIngressToSubscriber measures the whole data plane on the embedded
// broker: HTTP POST to the ingress (stored in RocketMQ before 202), consumed
// by each Trigger's consumer group, delivered over HTTP to a no-op subscriber.
// It reports ingress events/s, deliveries/s and the POST-to-subscriber
// latency p50/p99 across all deliveries.
//
//	go test ./eventing/trigger -run '^$' -bench IngressToSubscriber -benchtime 20000x
//
// "unbatched" variants turn off the bus's grouping of concurrent sends into
// RocketMQ batch sends (on by default). "paced" variants send at a fixed rate (events/s) instead of as fast as 32
// concurrent senders can, which is how a latency target is stated. The
// "direct" peer posts the same events straight to the subscriber (one HTTP
// hop, no broker): the floor the broker path is compared against in the
// same run.
func BenchmarkIngressToSubscriber(b *testing.B) {
	gcfloor.InstallForBenchmark(b) // as the tide binary runs the data plane
	for _, bc := range []struct {
		triggers  int
		rate      int // 0 = as fast as possible
		unbatched bool
		metrics   bool
		filtered  bool // each Trigger's filter passes 1/triggers of the events (type bench<i>): one delivery per event
	}{
		{0, 0, false, false, false}, {1, 0, false, false, false}, {1, 0, false, true, false}, {1, 0, true, false, false},
		{10, 0, false, false, false}, {10, 0, false, false, true},
		{0, 2000, false, false, false}, {1, 2000, false, false, false}, {1, 2000, true, false, false},
	} {
		name := fmt.Sprintf("triggers=%d", bc.triggers)
		if bc.triggers == 0 {
			name = "direct"
		}
		if bc.rate > 0 {
			name += fmt.Sprintf("/paced=%d", bc.rate)
		}
		if bc.unbatched {
			name += "/unbatched"
		}
		if bc.metrics {
			name += "/metrics=on" // broker, ingress and Trigger record metrics, scraped every second
		}
		if bc.filtered {
			name += "/filtered"
		}
		b.Run(name, func(b *testing.B) {
			benchIngressFiltered(b, bc.triggers, bc.rate, bc.unbatched, bc.metrics, bc.filtered, nil)
		})
	}
}

// BenchmarkTriggerPath is the rows of BenchmarkIngressToSubscriber that issue 18's targets name, and nothing else,
// so that rounds of before and after binaries can be interleaved in reasonable time (each row holds its direct-HTTP
// peer in the same run):
//
//	go test ./eventing/trigger -run '^$' -bench TriggerPath -benchtime 10000x -benchmem -count 5
func BenchmarkTriggerPath(b *testing.B) {
	gcfloor.InstallForBenchmark(b)
	for _, bc := range []struct {
		name           string
		triggers, rate int
		filtered       bool
	}{
		{"direct", 0, 0, false}, {"triggers=1", 1, 0, false},
		{"direct/paced=2000", 0, 2000, false}, {"triggers=1/paced=2000", 1, 2000, false},
		{"triggers=10", 10, 0, false}, {"triggers=10/filtered", 10, 0, true},
	} {
		b.Run(bc.name, func(b *testing.B) { benchIngressFiltered(b, bc.triggers, bc.rate, false, false, bc.filtered, nil) })
	}
}

// BenchmarkIngressToSubscriberTracing is the 1-Trigger case of BenchmarkIngressToSubscriber with tracing off (no
// provider: what tide runs with OTEL_SDK_DISABLED=true) and on (the SDK with tide's in-memory store and no
// exporter: tide's default), alternated in one run so both see the same machine:
//
//	go test ./eventing/trigger -run '^$' -bench 'IngressToSubscriberTracing/tracing=' -benchtime 10000x -count 5
//
// Every event makes 5 spans with tracing on (ingress server and producer, Trigger consumer, delivery client, and
// none at the subscriber, which is not tide's).
func BenchmarkIngressToSubscriberTracing(b *testing.B) {
	gcfloor.InstallForBenchmark(b)
	b.ReportAllocs() // per event: b.N is the number of events
	for _, rate := range []int{0, 2000} {
		for _, on := range []bool{false, true} {
			name := "tracing=off"
			if on {
				name = "tracing=on"
			}
			if rate > 0 {
				// paced=N/tracing=X: a pattern such as 'IngressToSubscriberTracing/tracing=' picks the unpaced pair.
				name = fmt.Sprintf("paced=%d/", rate) + name
			}
			b.Run(name, func(b *testing.B) {
				var tp trace.TracerProvider
				if on {
					t, err := tracing.New(context.Background(), tracing.Options{Getenv: func(string) string { return "" }})
					if err != nil {
						b.Fatal(err)
					}
					defer func() { _ = t.Shutdown(context.Background()) }()
					tp = t.Provider()
				}
				benchIngress(b, 1, rate, false, false, tp)
			})
		}
	}
}

func benchIngress(b *testing.B, triggers, rate int, unbatched, metered bool, tp trace.TracerProvider) {
	benchIngressFiltered(b, triggers, rate, unbatched, metered, false, tp)
}

// benchIngressFiltered is benchIngress; with filtered, Trigger i passes only events of type "bench<i>" and event n
// has type "bench<n % triggers>", so every event is delivered once: what a Broker with many Triggers that each
// want some of its events costs, which a run where every Trigger takes every event (deliveries = triggers × events,
// bounded by the HTTP hop's own ceiling) does not show.
func benchIngressFiltered(b *testing.B, triggers, rate int, unbatched, metered, filtered bool, tp trace.TracerProvider) {
	benchIngressBus(b, triggers, rate, bus.RocketMQOptions{DisableBatching: unbatched}, false, metered, filtered, tp)
}

// BenchmarkTriggerPathBus is BenchmarkTriggerPath's 1-Trigger and filtered rows on the official client's bus and on
// the native bus (tide's remoting client), one after the other in each round, so both see the same machine:
//
//	go test ./eventing/trigger -run '^$' -bench TriggerPathBus -benchtime 10000x -benchmem -count 3
func BenchmarkTriggerPathBus(b *testing.B) {
	gcfloor.InstallForBenchmark(b)
	for _, bc := range []struct {
		name           string
		triggers, rate int
		filtered       bool
	}{
		{"triggers=1", 1, 0, false}, {"triggers=1/paced=2000", 1, 2000, false}, {"triggers=10/filtered", 10, 0, true},
	} {
		for _, native := range []bool{false, true} {
			name := bc.name + "/bus=official"
			if native {
				name = bc.name + "/bus=native"
			}
			b.Run(name, func(b *testing.B) {
				benchIngressBus(b, bc.triggers, bc.rate, bus.RocketMQOptions{Native: native}, !native, false, bc.filtered, nil)
			})
		}
	}
}

func benchIngressBus(b *testing.B, triggers, rate int, busOpts bus.RocketMQOptions, official, metered, filtered bool, tp trace.TracerProvider) {
	var reg *prometheus.Registry
	if metered {
		reg = metrics.NewRegistry()
		stop := make(chan struct{})
		defer close(stop)
		go func() { // a scrape a second, as Prometheus would
			t := time.NewTicker(time.Second)
			defer t.Stop()
			for {
				select {
				case <-stop:
					return
				case <-t.C:
					_, _ = reg.Gather()
				}
			}
		}()
	}
	e := newEnvOn(b, busOpts, official, reg, tp)
	if reg != nil {
		reg.MustRegister(e.ing.Collector(), e.mgr.Collector())
	}
	e.addBroker("bench")
	var mu sync.Mutex
	lat := make([]time.Duration, 0, b.N*max(triggers, 1))
	postLat := make([]time.Duration, 0, b.N)
	dispatchLat := make([]time.Duration, 0, b.N*max(triggers, 1))
	var delivered atomic.Int64
	sub := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		now := time.Now()
		// The send time travels in the event (extension benchsent, Unix ns), not in a map shared with the load
		// generator: a map of every event id in flight grows with b.N, and copying it stalls the very paths
		// measured (sync.Map copies its whole dirty map every so often).
		if ns, err := strconv.ParseInt(r.Header.Get("ce-benchsent"), 10, 64); err == nil {
			d := now.Sub(time.Unix(0, ns))
			// knativearrivaltime is stamped by the ingress just before the
			// store: arrival -> subscriber is the Trigger side of the path.
			at, err := time.Parse(time.RFC3339Nano, r.Header.Get("ce-knativearrivaltime"))
			mu.Lock()
			lat = append(lat, d)
			if err == nil {
				dispatchLat = append(dispatchLat, now.Sub(at))
			}
			mu.Unlock()
		}
		delivered.Add(1)
		w.WriteHeader(http.StatusAccepted)
	}))
	defer sub.Close()
	su, _ := url.Parse(sub.URL)
	for i := range triggers {
		e.trigger("bench-"+strconv.Itoa(i), "bench", su, func(c *Config) {
			c.Concurrency = 64
			if filtered {
				c.Filter = &eventingv1.TriggerFilter{Attributes: eventingv1.TriggerFilterAttributes{"type": "bench" + strconv.Itoa(i)}}
			}
		})
	}
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 256, MaxIdleConns: 256}}
	target := e.http.URL + "/default/bench"
	fanout := triggers
	if filtered {
		fanout = 1
	}
	if triggers == 0 {
		target, fanout = sub.URL, 1
	}
	post := func(i int) {
		id := "bench-" + strconv.Itoa(i)
		req, _ := http.NewRequest("POST", target, strings.NewReader(`{"n":1}`))
		req.Header.Set("ce-specversion", "1.0")
		req.Header.Set("ce-id", id)
		req.Header.Set("ce-source", "/bench/"+strconv.Itoa(i%8)) // 8 sources spread over the queues
		typ := "bench"
		if filtered {
			typ += strconv.Itoa((i%triggers + triggers) % triggers) // warm-up events have negative i
		}
		req.Header.Set("ce-type", typ)
		req.Header.Set("content-type", "application/json")
		t0 := time.Now()
		req.Header.Set("ce-benchsent", strconv.FormatInt(t0.UnixNano(), 10))
		resp, err := client.Do(req)
		if i >= 0 {
			mu.Lock()
			postLat = append(postLat, time.Since(t0))
			mu.Unlock()
		}
		if err != nil {
			b.Error(err)
			return
		}
		resp.Body.Close()
		if resp.StatusCode != 202 {
			b.Errorf("POST: %d", resp.StatusCode)
		}
	}
	// Warm up connections and consumers.
	for i := range 50 {
		post(-1 - i)
	}
	want := int64(50 * fanout)
	eventually(b, 30*time.Second, "warm-up delivered", func() bool { return delivered.Load() >= want })
	mu.Lock()
	lat = lat[:0]
	postLat = postLat[:0]
	dispatchLat = dispatchLat[:0]
	mu.Unlock()
	delivered.Store(0)

	b.ResetTimer()
	cpu0 := processCPU()
	start := time.Now()
	// 32 senders share one schedule: event i is due at start + i/rate (or
	// immediately when unpaced). A bounded pool keeps the load generator from
	// opening a connection per event when the system stalls.
	var interval time.Duration
	if rate > 0 {
		interval = time.Second / time.Duration(rate)
	}
	var next atomic.Int64
	var wg sync.WaitGroup
	for range 32 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1)) - 1
				if i >= b.N {
					return
				}
				if interval > 0 {
					if d := time.Until(start.Add(time.Duration(i) * interval)); d > 0 {
						time.Sleep(d) // pacing the load generator, not waiting for a result
					}
				}
				post(i)
			}
		}()
	}
	wg.Wait()
	ingressDone := time.Since(start)
	total := int64(b.N * fanout)
	eventually(b, 120*time.Second, "all delivered", func() bool { return delivered.Load() >= total })
	elapsed := time.Since(start)
	cpu := processCPU() - cpu0
	b.StopTimer()
	// CPU time of the whole process (broker, data plane, load generator and subscriber) per event: what bounds
	// throughput on a saturated machine, and steadier than events/s when other work shares the cores.
	b.ReportMetric(float64(cpu.Microseconds())/float64(b.N), "cpu-µs/event")

	mu.Lock()
	slices.Sort(lat)
	slices.Sort(postLat)
	slices.Sort(dispatchLat)
	p := func(l []time.Duration, q float64) float64 {
		if len(l) == 0 {
			return 0
		}
		return float64(l[int(q*float64(len(l)-1))].Microseconds()) / 1000
	}
	b.ReportMetric(float64(b.N)/ingressDone.Seconds(), "ingress-events/s")
	b.ReportMetric(float64(total)/elapsed.Seconds(), "deliveries/s")
	b.ReportMetric(p(lat, 0.50), "p50-ms")
	b.ReportMetric(p(lat, 0.99), "p99-ms")
	b.ReportMetric(p(postLat, 0.99), "post202-p99-ms")
	if triggers > 0 {
		b.ReportMetric(p(dispatchLat, 0.50), "arrival-to-sub-p50-ms")
		b.ReportMetric(p(dispatchLat, 0.99), "arrival-to-sub-p99-ms")
	}
	mu.Unlock()
}
