package trigger

import (
	"context"
	"go.opentelemetry.io/otel/trace"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/apache/rocketmq-client-go/v2/rlog"
	cebinding "github.com/cloudevents/sdk-go/v2/binding"
	"github.com/cloudevents/sdk-go/v2/event"
	cehttp "github.com/cloudevents/sdk-go/v2/protocol/http"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/tide-run/tide/eventing/bus"
	"github.com/tide-run/tide/eventing/delivery"
	"github.com/tide-run/tide/eventing/ingress"
	"github.com/tide-run/tide/mq"
	"github.com/tide-run/tide/mq/admin"
	"github.com/tide-run/tide/mq/mqtest"
)

// env is a whole eventing data plane on a real embedded RocketMQ broker: the
// official client over real sockets, the ingress over real HTTP, real HTTP
// subscribers. Only the control plane is absent (brokers are a map).
type env struct {
	t       testing.TB
	dir     string
	server  *mq.Server
	bus     bus.Bus
	ing     *ingress.Ingress
	http    *httptest.Server
	mgr     *Manager
	stopped bool // stop ran (it is registered again at each restart)

	busOpts bus.RocketMQOptions
	// officialBus runs the data plane on the official client's bus (bus.RocketMQ) instead of the native one.
	officialBus bool
	metrics     *envMetrics          // newMeteredEnv: every part records metrics on one registry
	tp          trace.TracerProvider // nil: tracing off

	mu      sync.Mutex // guards brokers
	brokers map[string]ingress.Broker
}

func newEnv(t testing.TB) *env { return newEnvWith(t, bus.RocketMQOptions{}) }

// newEnvWith lets a test or benchmark choose bus options (NameServers and
// Logger are filled in).
func newEnvWith(t testing.TB, busOpts bus.RocketMQOptions) *env {
	return newEnvMetrics(t, busOpts, nil)
}

// envMetrics is a registry the broker, the ingress and the trigger manager all record on, as in tide up.
type envMetrics struct {
	reg      *prometheus.Registry
	requests *ingress.RequestMetrics
	dispatch *DispatchMetrics
}

// newEnvMetrics is newEnvWith with metrics on reg (nil: none).
func newEnvMetrics(t testing.TB, busOpts bus.RocketMQOptions, reg *prometheus.Registry) *env {
	t.Helper()
	return newEnvObserved(t, busOpts, reg, nil)
}

// newEnvTraced is newEnvWith with the data plane recording spans with tp (nil: tracing off).
func newEnvTraced(t testing.TB, busOpts bus.RocketMQOptions, tp trace.TracerProvider) *env {
	t.Helper()
	return newEnvObserved(t, busOpts, nil, tp)
}

// newEnvObserved is newEnvWith with metrics on reg and spans recorded with tp (either nil: off).
func newEnvObserved(t testing.TB, busOpts bus.RocketMQOptions, reg *prometheus.Registry, tp trace.TracerProvider) *env {
	t.Helper()
	return newEnvOn(t, busOpts, false, reg, tp)
}

// newEnvOn is newEnvObserved on the official client's bus when official is set.
func newEnvOn(t testing.TB, busOpts bus.RocketMQOptions, official bool, reg *prometheus.Registry, tp trace.TracerProvider) *env {
	t.Helper()
	rlog.SetLogLevel("error")
	e := &env{t: t, dir: t.TempDir(), brokers: map[string]ingress.Broker{}, busOpts: busOpts, tp: tp, officialBus: official}
	var opts []mqtest.Option
	if reg != nil {
		m := &envMetrics{reg: reg}
		var err error
		if m.requests, err = ingress.NewRequestMetrics(reg); err != nil {
			t.Fatal(err)
		}
		if m.dispatch, err = NewDispatchMetrics(reg); err != nil {
			t.Fatal(err)
		}
		e.metrics = m
		opts = append(opts, mqtest.WithMetrics(reg))
	}
	e.server = mqtest.RunServer(t, e.brokerOptions(), opts...)
	e.startDataPlane()
	t.Cleanup(e.stop) // runs before mqtest's check and shutdown of the broker
	return e
}

func (e *env) brokerOptions() mq.Options {
	return mq.Options{DataDir: e.dir, Host: "127.0.0.1", DelayLevels: testDelayLevels}
}

func (e *env) startDataPlane() {
	e.t.Helper()
	o := e.busOpts
	o.NameServers, o.Logger = []string{e.server.NameServerAddr()}, discardLogger()
	if o.DeleteGroup == nil {
		o.DeleteGroup = admin.DeleteGroup // as the server wires it
	}
	// The native bus, as tide runs by default; TIDE_TEST_BUS=official runs the package on the official client's.
	// A benchmark's busOpts.Native chooses for itself.
	if !o.Native && os.Getenv("TIDE_TEST_BUS") != "official" && !e.officialBus {
		o.Native = true
	}
	b, err := bus.Open(o)
	if err != nil {
		e.t.Fatal(err)
	}
	e.bus = b
	e.ing, err = ingress.New(ingress.Options{Bus: b, Brokers: ingress.BrokersFunc(e.lookup), Logger: discardLogger(),
		TracerProvider: e.tp})
	if err != nil {
		e.t.Fatal(err)
	}
	if e.http == nil {
		e.http = httptest.NewServer(e.ing)
	} else {
		e.http.Config.Handler = e.ing
	}
	var dispatch *DispatchMetrics
	if e.metrics != nil {
		e.ing.SetRequestMetrics(e.metrics.requests)
		dispatch = e.metrics.dispatch
	}
	e.mgr, err = NewManager(Options{Bus: b, Sender: delivery.New(delivery.Options{Logger: discardLogger(), TracerProvider: e.tp}),
		Publisher: e.ing, Logger: discardLogger(), MaxReconsumeTimes: 3, OrderedRetryPause: 10 * time.Millisecond,
		Metrics: dispatch, TracerProvider: e.tp})
	if err != nil {
		e.t.Fatal(err)
	}
}

func (e *env) stopDataPlane() {
	_ = e.mgr.Close()
	_ = e.bus.Close()
}

// stop ends the data plane and the ingress's HTTP server; mqtest stops the broker afterwards.
func (e *env) stop() {
	if e.stopped {
		return
	}
	e.stopped = true
	e.stopDataPlane()
	e.http.Close()
}

// restart stops the data plane and the broker and starts both again on the
// same data directory and ports, as a restart of tide does.
func (e *env) restart() {
	e.t.Helper()
	e.stopDataPlane()
	e.server = mqtest.Restart(e.t, e.server, e.brokerOptions())
	e.startDataPlane()
	e.t.Cleanup(e.stop) // again, so that it runs before the restarted broker's shutdown
}

func (e *env) lookup(ns, name string) (ingress.Broker, bool) {
	e.mu.Lock()
	defer e.mu.Unlock()
	b, ok := e.brokers[ns+"/"+name]
	return b, ok
}

func (e *env) addBroker(name string) string {
	topic := "tide-default-" + name
	if err := e.bus.EnsureTopic(context.Background(), topic); err != nil {
		e.t.Fatal(err)
	}
	e.mu.Lock()
	e.brokers["default/"+name] = ingress.Broker{Topic: topic, Ready: true}
	e.mu.Unlock()
	return topic
}

func (e *env) trigger(name, broker string, sub *url.URL, mod func(*Config)) {
	e.t.Helper()
	cfg := Config{Namespace: "default", Name: name, Broker: broker, Topic: "tide-default-" + broker, Subscriber: sub}
	if mod != nil {
		mod(&cfg)
	}
	if err := e.mgr.Upsert(context.Background(), cfg); err != nil {
		e.t.Fatal(err)
	}
}

// post sends a binary-mode CloudEvent to the broker ingress over HTTP.
func (e *env) post(broker string, headers map[string]string, body string) int {
	e.t.Helper()
	req, _ := http.NewRequest("POST", e.http.URL+"/default/"+broker, strings.NewReader(body))
	for k, v := range headers {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode >= 300 {
		e.t.Logf("POST %s: %d %s", broker, resp.StatusCode, b)
	}
	return resp.StatusCode
}

func ceHeaders(id, typ string, extra ...string) map[string]string {
	h := map[string]string{"ce-specversion": "1.0", "ce-id": id, "ce-source": "/test", "ce-type": typ, "content-type": "application/json"}
	for i := 0; i+1 < len(extra); i += 2 {
		h[extra[i]] = extra[i+1]
	}
	return h
}

// receiver is an HTTP subscriber with a programmable answer.
type receiver struct {
	srv *httptest.Server
	url *url.URL

	mu       sync.Mutex // guards the fields below
	requests int
	events   []event.Event
	// answer decides the response to request n (1-based); nil answers 202.
	answer func(n int, ev *event.Event) (int, *event.Event)
}

func newReceiver(t testing.TB, answer func(n int, ev *event.Event) (int, *event.Event)) *receiver {
	r := &receiver{answer: answer}
	r.srv = httptest.NewServer(http.HandlerFunc(r.serve))
	t.Cleanup(r.srv.Close)
	r.url, _ = url.Parse(r.srv.URL)
	return r
}

// tailDLQ follows the dead-letter queue (%DLQ%<group>) of Trigger default/trigger from its first message until the
// test ends, and returns how many events it has seen there so far.
func (e *env) tailDLQ(trigger string) (parked func() int) {
	e.t.Helper()
	var mu sync.Mutex
	n := 0
	dlq, err := Tail(e.t.Context(), e.bus, TailOptions{Topic: "%DLQ%" + Group("default", trigger), Since: time.Unix(0, 0)},
		func(*event.Event) {
			mu.Lock()
			n++
			mu.Unlock()
		})
	if err != nil {
		e.t.Fatal(err)
	}
	e.t.Cleanup(func() { dlq.Close() })
	return func() int { mu.Lock(); defer mu.Unlock(); return n }
}

// newDownReceiver is a receiver that answers 503 until bringUp is called, and 202 from then on: a subscriber that
// is down for a while.
func newDownReceiver(t testing.TB) (r *receiver, bringUp func()) {
	var up atomic.Bool
	r = newReceiver(t, func(int, *event.Event) (int, *event.Event) {
		if !up.Load() {
			return 503, nil
		}
		return 202, nil
	})
	return r, func() { up.Store(true) }
}

func (r *receiver) serve(w http.ResponseWriter, req *http.Request) {
	ev, err := cehttp.NewEventFromHTTPRequest(req)
	if err != nil {
		http.Error(w, err.Error(), 400)
		return
	}
	r.mu.Lock()
	r.requests++
	n := r.requests
	answer := r.answer
	r.mu.Unlock()
	code, reply := 202, (*event.Event)(nil)
	if answer != nil {
		code, reply = answer(n, ev)
	}
	if code >= 200 && code < 300 {
		r.mu.Lock()
		r.events = append(r.events, *ev)
		r.mu.Unlock()
	}
	if reply != nil {
		msg := (*event.Event)(reply)
		_ = cehttp.WriteResponseWriter(req.Context(), cebinding.ToMessage(msg), code, w)
		return
	}
	w.WriteHeader(code)
	if code >= 300 {
		_, _ = w.Write([]byte("receiver says no"))
	}
}

func (r *receiver) snapshot() (int, []event.Event) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.requests, append([]event.Event(nil), r.events...)
}

func (r *receiver) ids() map[string]int {
	_, evs := r.snapshot()
	out := map[string]int{}
	for _, e := range evs {
		out[e.ID()]++
	}
	return out
}

// settledStats waits until cond holds for the trigger's counters and returns
// them. The receiver records an event before its HTTP response reaches the
// dispatcher, so a test that saw the receiver count an event must still wait
// for the dispatcher to count the outcome.
func (e *env) settledStats(t testing.TB, name, what string, cond func(Stats) bool) Stats {
	t.Helper()
	var st Stats
	eventually(t, waitFor, what, func() bool {
		st, _ = e.mgr.Stats("default", name)
		return st.InFlight == 0 && cond(st)
	})
	return st
}

// eventually polls cond until it holds or the deadline passes.
func eventually(t testing.TB, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", d, what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// testDelayLevels shortens RocketMQ's 18 delay levels (1s ... 2h) so that
// redelivery through %RETRY% happens within a test's patience.
var testDelayLevels = func() []time.Duration {
	out := make([]time.Duration, 18)
	for i := range out {
		out[i] = time.Duration(i+1) * 50 * time.Millisecond
	}
	return out
}()
