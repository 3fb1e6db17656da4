package dashboard

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	clocktesting "k8s.io/utils/clock/testing"
)

var t0 = time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)

func quietLogger() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

// startDashboard builds and starts a Dashboard on a fake clock behind a real HTTP server.
func startDashboard(t *testing.T, opts Options) (*Dashboard, *httptest.Server) {
	t.Helper()
	if opts.Logger == nil {
		opts.Logger = quietLogger()
	}
	d, err := New(opts)
	if err != nil {
		t.Fatal(err)
	}
	if err := d.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(d)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := d.Shutdown(ctx); err != nil {
			t.Errorf("shutdown: %v", err)
		}
		srv.Close()
	})
	return d, srv
}

// sseReader reads server-sent events from a stream.
type sseReader struct {
	r    *bufio.Reader
	body io.Closer
}

func openStream(t *testing.T, url string) *sseReader {
	t.Helper()
	resp, err := http.Get(url + "/dashboard/api/stream")
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Type") != "text/event-stream" {
		t.Fatalf("stream: %s, Content-Type %q", resp.Status, resp.Header.Get("Content-Type"))
	}
	t.Cleanup(func() { resp.Body.Close() })
	return &sseReader{r: bufio.NewReader(resp.Body), body: resp.Body}
}

// next returns the next named event (skipping the retry preamble). The read is bounded by a deadline.
func (s *sseReader) next(t *testing.T) (string, []byte) {
	t.Helper()
	type result struct {
		name string
		data []byte
		err  error
	}
	ch := make(chan result, 1)
	go func() {
		var name string
		var data []byte
		for {
			line, err := s.r.ReadString('\n')
			if err != nil {
				ch <- result{err: err}
				return
			}
			line = strings.TrimRight(line, "\n")
			switch {
			case line == "" && name != "":
				ch <- result{name, data, nil}
				return
			case strings.HasPrefix(line, "event: "):
				name = strings.TrimPrefix(line, "event: ")
			case strings.HasPrefix(line, "data: "):
				data = []byte(strings.TrimPrefix(line, "data: "))
			}
		}
	}()
	select {
	case r := <-ch:
		if r.err != nil {
			t.Fatalf("reading stream: %v", r.err)
		}
		return r.name, r.data
	case <-time.After(10 * time.Second):
		s.body.Close()
		t.Fatal("timed out waiting for a server-sent event")
		return "", nil
	}
}

// nextNamed skips events until one called name arrives.
func (s *sseReader) nextNamed(t *testing.T, name string) []byte {
	t.Helper()
	for i := 0; i < 20; i++ {
		n, data := s.next(t)
		if n == name {
			return data
		}
	}
	t.Fatalf("no %q event in 20 events", name)
	return nil
}

type initEvent struct {
	Interval  int64    `json:"interval"`
	Window    int64    `json:"window"`
	Logs      bool     `json:"logs"`
	Samples   []Sample `json:"samples"`
	Resources struct {
		Items []Resource `json:"items"`
		Error string     `json:"error"`
	} `json:"resources"`
	Status streamStatus `json:"status"`
}

func TestStreamDeliversSamplesOnTheClock(t *testing.T) {
	c := clocktesting.NewFakeClock(t0)
	day := newScriptedDay(c, 100*time.Second)
	var mu sync.Mutex // guards res, read by the sampling goroutine
	res := []Resource{{Kind: "Service", Namespace: "default", Name: "order", Ready: "True", Conditions: []Condition{}, Details: []Detail{}}}
	d, srv := startDashboard(t, Options{Clock: c, Metrics: day, Resources: ResourcesFunc(func(context.Context) ([]Resource, error) {
		mu.Lock()
		defer mu.Unlock()
		return res, nil
	})})

	s := openStream(t, srv.URL)
	var init initEvent
	if err := json.Unmarshal(s.nextNamed(t, "init"), &init); err != nil {
		t.Fatal(err)
	}
	if init.Interval != 1000 || init.Window != 900000 {
		t.Errorf("init interval/window = %d/%d ms, want 1000/900000", init.Interval, init.Window)
	}
	if len(init.Samples) != 1 || init.Samples[0].T != t0.UnixMilli() {
		t.Fatalf("init has %d samples (first %+v), want the one Start took at t0", len(init.Samples), init.Samples)
	}
	if len(init.Resources.Items) != 1 || init.Resources.Items[0].Name != "order" {
		t.Fatalf("init resources = %+v", init.Resources)
	}

	// Nothing moves until the clock does: each step yields exactly one sample, stamped with the fake time.
	for i := 1; i <= 30; i++ {
		c.Step(time.Second)
		var got Sample
		if err := json.Unmarshal(s.nextNamed(t, "sample"), &got); err != nil {
			t.Fatal(err)
		}
		if want := t0.Add(time.Duration(i) * time.Second).UnixMilli(); got.T != want {
			t.Fatalf("sample %d at %d, want %d", i, got.T, want)
		}
		if len(got.Services) != 1 || got.Services[0].Name != "order" || len(got.Topics) != 3 || len(got.Deliveries) != 2 {
			t.Fatalf("sample %d = %+v", i, got)
		}
		if i == 30 {
			// 30 s into a 100 s day is near the breakfast peak: load and instances are up.
			sp := got.Services[0]
			if sp.Rate < 10 || sp.Desired < 2 || sp.Ready < 1 {
				t.Errorf("at the breakfast peak: rate %.1f, desired %d, ready %d; want a loaded, scaled-out service", sp.Rate, sp.Desired, sp.Ready)
			}
			if got.Deliveries[1].Kind != "Trigger" || got.Deliveries[1].DeliveredRate < 10 {
				t.Errorf("trigger delivery point = %+v", got.Deliveries[1])
			}
		}
	}
	if n := historyLen(d); n != 31 {
		t.Errorf("history holds %d samples, want 31", n)
	}

	// A resource change is pushed on the next sample.
	mu.Lock()
	res = nil
	mu.Unlock()
	c.Step(time.Second)
	var r struct{ Items []Resource }
	if err := json.Unmarshal(s.nextNamed(t, "resources"), &r); err != nil {
		t.Fatal(err)
	}
	if len(r.Items) != 0 {
		t.Errorf("resources after removal = %+v", r.Items)
	}
}

func TestHistoryIsBoundedAndServedAsState(t *testing.T) {
	c := clocktesting.NewFakeClock(t0)
	d, srv := startDashboard(t, Options{Clock: c, Metrics: newScriptedDay(c, time.Minute), History: 5 * time.Second})
	stepSamples(t, d, c, 8)

	resp, err := http.Get(srv.URL + "/dashboard/api/state")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var st initEvent
	if err := json.NewDecoder(resp.Body).Decode(&st); err != nil {
		t.Fatal(err)
	}
	if len(st.Samples) != 5 {
		t.Fatalf("state has %d samples, want the last 5", len(st.Samples))
	}
	for i, s := range st.Samples {
		if want := t0.Add(time.Duration(4+i) * time.Second).UnixMilli(); s.T != want {
			t.Errorf("sample %d at %d, want %d (oldest first, oldest dropped)", i, s.T, want)
		}
	}
}

func TestRatesFromCounters(t *testing.T) {
	var c counters
	snap := func(req, produced, delivered uint64) Snapshot {
		return Snapshot{
			Revisions: []RevisionStats{
				{Namespace: "default", Service: "order", Revision: "order-00002", DesiredInstances: 2, ReadyInstances: 1, Requests: req},
				{Namespace: "default", Service: "order", Revision: "order-00001", DesiredInstances: 1, ReadyInstances: 1, Requests: req * 3},
			},
			Topics:     []TopicStats{{Topic: "orders", Produced: produced}},
			Deliveries: []DeliveryStats{{Kind: "Trigger", Namespace: "default", Name: "t", Delivered: delivered}},
		}
	}
	first := c.buildSample(t0, snap(100, 50, 10))
	if first.Services[0].Rate != 0 || first.Topics[0].Rate != 0 {
		t.Errorf("first sample has rates %+v; with nothing to compare it must be 0", first)
	}
	s := c.buildSample(t0.Add(2*time.Second), snap(120, 90, 10))
	sp := s.Services[0]
	if sp.Desired != 3 || sp.Ready != 2 || len(sp.Revisions) != 2 || sp.Revisions[0].Name != "order-00001" {
		t.Errorf("service point = %+v; want revisions summed and sorted", sp)
	}
	if sp.Revisions[1].Rate != 10 || sp.Revisions[0].Rate != 30 || sp.Rate != 40 {
		t.Errorf("request rates = %v/%v total %v, want 30/10 total 40", sp.Revisions[0].Rate, sp.Revisions[1].Rate, sp.Rate)
	}
	if s.Topics[0].Rate != 20 || s.Deliveries[0].DeliveredRate != 0 {
		t.Errorf("topic rate %v, delivered rate %v; want 20 and 0", s.Topics[0].Rate, s.Deliveries[0].DeliveredRate)
	}
	// A counter that goes down is a restart: the new value is the increase.
	s = c.buildSample(t0.Add(3*time.Second), snap(5, 90, 10))
	if got := s.Services[0].Revisions[1].Rate; got != 5 {
		t.Errorf("rate after a counter reset = %v, want 5", got)
	}
}

func TestMetricsFailureShowsAsStatusAndRecovers(t *testing.T) {
	c := clocktesting.NewFakeClock(t0)
	day := newScriptedDay(c, time.Minute)
	_, srv := startDashboard(t, Options{Clock: c, Metrics: day})
	s := openStream(t, srv.URL)
	s.nextNamed(t, "init")

	day.mu.Lock()
	day.failNext = errors.New("serving: autoscaler not started")
	day.mu.Unlock()
	c.Step(time.Second)
	var st streamStatus
	if err := json.Unmarshal(s.nextNamed(t, "status"), &st); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(st.MetricsError, "autoscaler not started") {
		t.Errorf("status = %+v", st)
	}
	c.Step(time.Second)
	if name, data := s.next(t); name != "status" || !strings.Contains(string(data), `"metricsError":""`) {
		t.Errorf("after recovery got %s %s, want a cleared status first", name, data)
	}
	s.nextNamed(t, "sample")
}

func TestMergeMetrics(t *testing.T) {
	a := MetricsFunc(func(context.Context) (Snapshot, error) {
		return Snapshot{Revisions: []RevisionStats{{Revision: "a"}}}, nil
	})
	b := MetricsFunc(func(context.Context) (Snapshot, error) { return Snapshot{}, errors.New("broker down") })
	c := MetricsFunc(func(context.Context) (Snapshot, error) {
		return Snapshot{Topics: []TopicStats{{Topic: "t"}}}, nil
	})
	got, err := MergeMetrics(a, b, nil, c).Snapshot(context.Background())
	if len(got.Revisions) != 1 || len(got.Topics) != 1 || err == nil || !strings.Contains(err.Error(), "broker down") ||
		errors.Is(err, ErrNoMetrics) {
		t.Errorf("merge = %+v, %v; want both healthy parts and the broker's error", got, err)
	}
	if _, err := MergeMetrics(a, c).Snapshot(context.Background()); err != nil {
		t.Errorf("all healthy: %v", err)
	}
	if _, err := MergeMetrics(b).Snapshot(context.Background()); !errors.Is(err, ErrNoMetrics) || !strings.Contains(err.Error(), "broker down") {
		t.Errorf("all failing: err = %v", err)
	}
}

func TestPagesAndAssets(t *testing.T) {
	c := clocktesting.NewFakeClock(t0)
	_, srv := startDashboard(t, Options{Clock: c})
	for _, tc := range []struct {
		method, path string
		code         int
		ctype, body  string
	}{
		{"GET", "/", 200, "text/html", "/dashboard/static/app.js"},
		{"GET", "/index.html", 200, "text/html", "<title>tide"},
		{"GET", "/dashboard/", 200, "text/html", "service-cards"},
		{"GET", "/dashboard/static/app.js", 200, "javascript", "EventSource"},
		{"GET", "/dashboard/static/charts.js", 200, "javascript", "drawChart"},
		{"GET", "/dashboard/static/style.css", 200, "text/css", "--inst"},
		{"GET", "/dashboard/static/favicon.svg", 200, "image/svg+xml", "<svg"},
		{"GET", "/dashboard/static/nope.js", 404, "", ""},
		{"GET", "/apis/serving.knative.dev/v1/services", 404, "", ""},
		{"POST", "/", 405, "", ""},
		{"HEAD", "/", 200, "text/html", ""},
	} {
		req, _ := http.NewRequest(tc.method, srv.URL+tc.path, nil)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != tc.code {
			t.Errorf("%s %s: %d, want %d", tc.method, tc.path, resp.StatusCode, tc.code)
			continue
		}
		if tc.ctype != "" && !strings.Contains(resp.Header.Get("Content-Type"), tc.ctype) {
			t.Errorf("%s %s: Content-Type %q, want %q", tc.method, tc.path, resp.Header.Get("Content-Type"), tc.ctype)
		}
		if !strings.Contains(string(body), tc.body) {
			t.Errorf("%s %s: body lacks %q", tc.method, tc.path, tc.body)
		}
	}
}

func TestLogsEndpoint(t *testing.T) {
	c := clocktesting.NewFakeClock(t0)
	var asked []string
	logs := LogsFunc(func(_ context.Context, ns, svc string, limit int) ([]LogLine, error) {
		asked = append(asked, ns+"/"+svc)
		if svc == "broken" {
			return nil, errors.New("instance log ring unavailable")
		}
		var out []LogLine
		for i := 0; i < 10; i++ {
			out = append(out, LogLine{Time: t0, Revision: "order-00001", Instance: "1", Stream: "stdout", Text: "order accepted"})
		}
		return out, nil
	})
	_, srv := startDashboard(t, Options{Clock: c, Logs: logs})
	get := func(q string) (int, map[string]any) {
		resp, err := http.Get(srv.URL + "/dashboard/api/logs?" + q)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var m map[string]any
		if err := json.NewDecoder(resp.Body).Decode(&m); err != nil {
			t.Fatal(err)
		}
		return resp.StatusCode, m
	}
	if code, m := get("service=order&limit=3"); code != 200 || len(m["lines"].([]any)) != 3 || m["available"] != true {
		t.Errorf("logs = %d %v, want 3 lines", code, m)
	}
	for q, want := range map[string]string{
		"":                                   "query parameter service",
		"service=Order":                      "query parameter service",
		"service=order&namespace=a/b":        "query parameter namespace",
		"service=order&limit=0":              "query parameter limit",
		"service=order&limit=many":           "query parameter limit",
		"service=" + strings.Repeat("a", 64): "query parameter service",
	} {
		code, m := get(q)
		if code != 400 || !strings.Contains(m["error"].(string), want) {
			t.Errorf("logs?%s = %d %v, want 400 naming %q", q, code, m, want)
		}
	}
	if code, m := get("service=broken"); code != 502 || !strings.Contains(m["error"].(string), "unavailable") {
		t.Errorf("failing source = %d %v", code, m)
	}
	if len(asked) != 2 || asked[0] != "default/order" {
		t.Errorf("source asked for %v; bad requests must not reach it", asked)
	}

	_, bare := startDashboard(t, Options{Clock: c})
	resp, err := http.Get(bare.URL + "/dashboard/api/logs?service=order")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var m map[string]any
	_ = json.NewDecoder(resp.Body).Decode(&m)
	if resp.StatusCode != 200 || m["available"] != false {
		t.Errorf("without a LogSource: %d %v, want available=false", resp.StatusCode, m)
	}
}

func TestShutdownEndsStreams(t *testing.T) {
	c := clocktesting.NewFakeClock(t0)
	d, err := New(Options{Clock: c, Logger: quietLogger()})
	if err != nil {
		t.Fatal(err)
	}
	if d.Ready() {
		t.Error("ready before Start")
	}
	if err := d.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	if err := d.Start(context.Background()); !errors.Is(err, ErrAlreadyStarted) {
		t.Errorf("second Start = %v", err)
	}
	srv := httptest.NewServer(d)
	defer srv.Close()
	s := openStream(t, srv.URL)
	s.nextNamed(t, "init")
	if !d.Ready() || d.Subsystem().Ready() != nil {
		t.Error("not ready after Start")
	}
	if err := d.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
	if _, err := s.r.ReadString('\n'); !errors.Is(err, io.EOF) {
		t.Errorf("stream after Shutdown: %v, want EOF", err)
	}
	if d.Ready() {
		t.Error("ready after Shutdown")
	}
	if sub := d.Subsystem(); sub.Name() != "dashboard" || !errors.Is(sub.Ready(), ErrNotReady) {
		t.Errorf("subsystem %q ready = %v after Shutdown", sub.Name(), sub.Ready())
	}
}

func TestNewRejectsBadOptions(t *testing.T) {
	if _, err := New(Options{Interval: time.Minute, History: time.Second}); err == nil || !strings.Contains(err.Error(), "Options.History") {
		t.Errorf("History < Interval: %v", err)
	}
	if _, err := New(Options{API: "127.0.0.1:8090"}); err == nil || !strings.Contains(err.Error(), "Options.API") {
		t.Errorf("API without scheme: %v", err)
	}
	d, err := New(Options{APIURL: func() string { return "localhost" }, Clock: clocktesting.NewFakeClock(t0)})
	if err != nil {
		t.Fatal(err)
	}
	if err := d.Start(context.Background()); err == nil || !strings.Contains(err.Error(), "Options.APIURL") {
		t.Errorf("APIURL returning a bad URL: Start = %v", err)
	}
}

// A page that stops reading is cut off, not silently skipped: its channel is closed once the buffer is full, so
// the browser reconnects and starts again from a complete init.
func TestSlowSubscriberIsClosedNotSkipped(t *testing.T) {
	d, err := New(Options{Clock: clocktesting.NewFakeClock(t0), Logger: quietLogger()})
	if err != nil {
		t.Fatal(err)
	}
	sub := &subscriber{ch: make(chan event, subscriberBuffer)}
	d.mu.Lock()
	d.subscribers[sub] = struct{}{}
	for i := 0; i <= subscriberBuffer; i++ {
		d.broadcastLocked("sample", []byte(`{}`))
	}
	_, still := d.subscribers[sub]
	d.mu.Unlock()
	if still {
		t.Fatal("a subscriber past its buffer is still subscribed")
	}
	n := 0
	for range sub.ch {
		n++
	}
	if n != subscriberBuffer {
		t.Errorf("drained %d queued events before the close, want %d", n, subscriberBuffer)
	}
}

// A partial snapshot (one subsystem failing) is still drawn, with the error in the status.
func TestPartialMetricsAreDrawnWithTheError(t *testing.T) {
	c := clocktesting.NewFakeClock(t0)
	day := newScriptedDay(c, time.Minute)
	broken := MetricsFunc(func(context.Context) (Snapshot, error) { return Snapshot{}, errors.New("broker: not started") })
	_, srv := startDashboard(t, Options{Clock: c, Metrics: MergeMetrics(day, broken)})
	s := openStream(t, srv.URL)
	var init initEvent
	if err := json.Unmarshal(s.nextNamed(t, "init"), &init); err != nil {
		t.Fatal(err)
	}
	if len(init.Samples) != 1 || len(init.Samples[0].Services) != 1 || !strings.Contains(init.Status.MetricsError, "broker: not started") {
		t.Errorf("init samples %+v, status %+v; want the healthy part drawn and the error shown", init.Samples, init.Status)
	}
}
