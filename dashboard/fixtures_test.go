package dashboard

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	clocktesting "k8s.io/utils/clock/testing"
)

// scriptedDay is a fake MetricsSource: it stands in for the real platform (serving, the broker and eventing), which
// the lead's full-platform test drives with the demo. It plays a compressed food-delivery day on the dashboard's
// fake clock: order rate with breakfast, lunch and dinner peaks, instances following the rate a couple of seconds
// late (an autoscaler with a concurrency target of 10 per instance), and the counters eventing would keep.
type scriptedDay struct {
	clock *clocktesting.FakeClock
	start time.Time
	day   time.Duration // length of the compressed day

	mu                sync.Mutex // guards the cumulative counters and the instance history
	requests          float64
	produced          float64
	delivered         float64
	retried           float64
	dead              float64
	lastAt            time.Time
	desiredByTick     []int
	calls             int
	failNext          error
	omitRevisionsOnce bool
}

func newScriptedDay(c *clocktesting.FakeClock, day time.Duration) *scriptedDay {
	return &scriptedDay{clock: c, start: c.Now(), day: day, lastAt: c.Now()}
}

// rate is orders per second at elapsed fraction f of the day: a low valley and three meal peaks.
func rateAt(f float64) float64 {
	peak := func(center, width, height float64) float64 {
		d := (f - center) / width
		return height * math.Exp(-d*d)
	}
	r := peak(0.25, 0.05, 30) + peak(0.5, 0.06, 60) + peak(0.78, 0.05, 45)
	if r < 0.5 {
		return 0
	}
	return r
}

func (s *scriptedDay) Snapshot(ctx context.Context) (Snapshot, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.calls++
	if err := s.failNext; err != nil {
		s.failNext = nil
		return Snapshot{}, err
	}
	now := s.clock.Now()
	f := float64(now.Sub(s.start)%s.day) / float64(s.day)
	rate := rateAt(f)
	dt := now.Sub(s.lastAt).Seconds()
	s.lastAt = now
	s.requests += rate * dt
	s.produced += rate * dt
	s.delivered += rate * dt
	s.retried += rate * dt * 0.02
	if rate > 50 {
		s.dead += 0.2 * dt
	}
	desired := int(math.Ceil(rate / 10))
	s.desiredByTick = append(s.desiredByTick, desired)
	ready := desired
	if n := len(s.desiredByTick); n > 2 {
		ready = s.desiredByTick[n-3] // instances become ready two samples after being asked for
	}
	lag := int64(math.Max(0, rate*1.5-float64(ready)*10))
	return Snapshot{
		Revisions: []RevisionStats{{
			Namespace: "default", Service: "order", Revision: "order-00001",
			DesiredInstances: desired, ReadyInstances: ready, Requests: uint64(s.requests), Concurrency: rate / 8,
		}},
		Topics: []TopicStats{{Topic: "orders", Produced: uint64(s.produced),
			Groups: []GroupStats{{Group: "knative-sources-orders", Lag: lag / 3}}},
			{Topic: "%RETRY%tide-trigger-order-trigger", Produced: uint64(s.retried)},
			{Topic: "tide-broker-default", Produced: uint64(s.produced),
				Groups: []GroupStats{{Group: "tide-trigger-order-trigger", Lag: lag}}}},
		Deliveries: []DeliveryStats{
			{Kind: "Trigger", Namespace: "default", Name: "order-trigger", Delivered: uint64(s.delivered),
				Retried: uint64(s.retried), DeadLettered: uint64(s.dead)},
			{Kind: "RocketMQSource", Namespace: "default", Name: "orders-source", Delivered: uint64(s.produced)},
		},
	}, nil
}

// fakeAPI answers the control-plane API's list and watch paths from fixed objects: a small stand-in for the
// control-plane server (another package), so this package's tests do not depend on it. Watches stay open until the
// client goes away, after sending what was pushed with send.
type fakeAPI struct {
	mu      sync.Mutex                  // guards objects, watchers and lists
	objects map[string][]map[string]any // collection path -> objects
	watches map[string][]chan string
	lists   int
}

func newFakeAPI() *fakeAPI {
	return &fakeAPI{objects: map[string][]map[string]any{}, watches: map[string][]chan string{}}
}

func (f *fakeAPI) add(path string, obj map[string]any) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.objects[path] = append(f.objects[path], obj)
}

// send pushes one watch event line to every open watch on path, and reports how many got it.
func (f *fakeAPI) send(path, typ string, obj map[string]any) int {
	line, _ := json.Marshal(map[string]any{"type": typ, "object": obj})
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, ch := range f.watches[path] {
		ch <- string(line)
	}
	return len(f.watches[path])
}

func (f *fakeAPI) watchers(path string) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.watches[path])
}

// ServeHTTP serves the all-namespaces path of a collection as given to add, and its namespaced form
// (/apis/{g}/{v}/namespaces/{ns}/{plural}) filtered by namespace. Watches are keyed by the all-namespaces path.
func (f *fakeAPI) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	path, ns := r.URL.Path, ""
	if parts := strings.Split(path, "/"); len(parts) == 7 && parts[4] == "namespaces" {
		path, ns = strings.Join(append(parts[:4:4], parts[6]), "/"), parts[5]
	}
	f.mu.Lock()
	all, ok := f.objects[path]
	var objs []map[string]any
	for _, o := range all {
		if ns == "" || o["metadata"].(map[string]any)["namespace"] == ns {
			objs = append(objs, o)
		}
	}
	f.mu.Unlock()
	if !ok {
		http.Error(w, `{"kind":"Status","code":404}`, http.StatusNotFound)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	if r.URL.Query().Get("watch") != "true" {
		f.mu.Lock()
		f.lists++
		f.mu.Unlock()
		_ = json.NewEncoder(w).Encode(map[string]any{"metadata": map[string]any{"resourceVersion": "7"}, "items": objs})
		return
	}
	ch := make(chan string, 16)
	f.mu.Lock()
	f.watches[path] = append(f.watches[path], ch)
	f.mu.Unlock()
	defer func() {
		f.mu.Lock()
		ws := f.watches[path]
		for i, c := range ws {
			if c == ch {
				f.watches[path] = append(ws[:i], ws[i+1:]...)
				break
			}
		}
		f.mu.Unlock()
	}()
	w.WriteHeader(http.StatusOK)
	w.(http.Flusher).Flush()
	for {
		select {
		case <-r.Context().Done():
			return
		case line := <-ch:
			fmt.Fprintln(w, line)
			w.(http.Flusher).Flush()
		}
	}
}

// knObject builds a Knative-shaped object with a Ready condition.
func knObject(apiVersion, kind, name string, ready string, reason, message string, extra func(o map[string]any)) map[string]any {
	cond := map[string]any{"type": "Ready", "status": ready}
	if reason != "" {
		cond["reason"] = reason
		cond["message"] = message
	}
	o := map[string]any{
		"apiVersion": apiVersion, "kind": kind,
		"metadata": map[string]any{"name": name, "namespace": "default", "creationTimestamp": "2026-01-01T11:58:00Z"},
		"spec":     map[string]any{},
		"status":   map[string]any{"conditions": []any{cond}},
	}
	if extra != nil {
		extra(o)
	}
	return o
}

// foodDeliveryAPI fills a fakeAPI with the seed's bundle as the control plane would report it once reconciled.
func foodDeliveryAPI() *fakeAPI {
	f := newFakeAPI()
	f.add("/apis/serving.knative.dev/v1/services",
		knObject("serving.knative.dev/v1", "Service", "order", "True", "", "", func(o map[string]any) {
			st := o["status"].(map[string]any)
			st["url"] = "http://order.default.127.0.0.1.sslip.io:8080"
			st["latestReadyRevisionName"] = "order-00001"
			st["traffic"] = []any{map[string]any{"revisionName": "order-00001", "percent": 100}}
		}))
	f.add("/apis/serving.knative.dev/v1/revisions",
		knObject("serving.knative.dev/v1", "Revision", "order-00001", "True", "", "", func(o map[string]any) {
			o["metadata"].(map[string]any)["labels"] = map[string]any{"serving.knative.dev/service": "order"}
			o["spec"] = map[string]any{"containerConcurrency": 10}
		}))
	f.add("/apis/eventing.knative.dev/v1/brokers",
		knObject("eventing.knative.dev/v1", "Broker", "default", "True", "", "", func(o map[string]any) {
			o["status"].(map[string]any)["address"] = map[string]any{"url": "http://127.0.0.1:8080/default/default"}
		}))
	f.add("/apis/eventing.knative.dev/v1/triggers",
		knObject("eventing.knative.dev/v1", "Trigger", "order-trigger", "True", "", "", func(o map[string]any) {
			o["spec"] = map[string]any{
				"broker":     "default",
				"filter":     map[string]any{"attributes": map[string]any{"type": "dev.tide.order"}},
				"subscriber": map[string]any{"ref": map[string]any{"kind": "Service", "name": "order"}},
			}
		}))
	f.add("/apis/sources.knative.dev/v1alpha1/rocketmqsources",
		knObject("sources.knative.dev/v1alpha1", "RocketMQSource", "orders-source", "True", "", "", func(o map[string]any) {
			o["spec"] = map[string]any{"topic": "orders", "group": "knative-sources-orders",
				"sink": map[string]any{"ref": map[string]any{"kind": "Broker", "name": "default"}}}
		}))
	return f
}

// poll waits until cond holds or the deadline passes.
func poll(t *testing.T, what string, d time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", d, what)
		}
		time.Sleep(5 * time.Millisecond) // polling interval, not a wait for an event
	}
}

// historyLen reports how many samples the dashboard holds.
func historyLen(d *Dashboard) int {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.history.n
}

// stepSamples advances the fake clock one interval at a time, waiting for each sample so no tick is coalesced.
func stepSamples(t *testing.T, d *Dashboard, c *clocktesting.FakeClock, n int) {
	t.Helper()
	for i := 0; i < n; i++ {
		before := d.samplesTaken()
		c.Step(d.opts.Interval)
		poll(t, "a sample after a clock step", 5*time.Second, func() bool { return d.samplesTaken() > before })
	}
}
