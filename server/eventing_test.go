package server_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/apache/rocketmq-client-go/v2/primitive"
	"github.com/apache/rocketmq-client-go/v2/producer"
	cehttp "github.com/cloudevents/sdk-go/v2/protocol/http"

	"github.com/cloudevents/sdk-go/v2/binding"
	"github.com/cloudevents/sdk-go/v2/event"

	"github.com/tide-run/tide/cli"
	"github.com/tide-run/tide/eventing/ingress"
	"github.com/tide-run/tide/server"
	"github.com/tide-run/tide/server/servertest"
)

// platform is a real tide (every port 0, a temp data dir) with the CLI run in-process against its API.
type platform struct {
	t   *testing.T
	dir string
	srv *server.Server
	ts  *servertest.Server
}

// startPlatform starts tide on dir with fast delivery stats and waits until it is ready.
func startPlatform(t *testing.T, dir string) *platform {
	t.Helper()
	p := newPlatform(t, server.Options{DataDir: dir, Eventing: server.EventingOptions{StatsInterval: 100 * time.Millisecond}})
	eventually(t, 15*time.Second, func() error {
		if !p.srv.Ready() {
			return fmt.Errorf("not ready")
		}
		return nil
	})
	return p
}

// newPlatform starts tide with opts (servertest: its log shown only if the test fails) and stops it when the test
// ends; it does not wait for readiness.
func newPlatform(t *testing.T, opts server.Options) *platform {
	t.Helper()
	ts := servertest.Start(t, opts)
	return &platform{t: t, dir: opts.DataDir, srv: ts.Server, ts: ts}
}

func (p *platform) stop() {
	if p.srv == nil {
		return
	}
	if err := p.ts.Stop(); err != nil {
		p.t.Errorf("shutdown: %v", err)
	}
	p.srv = nil
}

func (p *platform) endpoint(name string) string {
	for _, e := range p.srv.Endpoints() {
		if e.Name == name {
			return e.URL
		}
	}
	p.t.Fatalf("no endpoint %q in %v", name, p.srv.Endpoints())
	return ""
}

func (p *platform) run(stdin string, args ...string) (string, string, int) {
	var out, errOut bytes.Buffer
	code := cli.Main(append([]string{"--server", p.srv.APIURL()}, args...), strings.NewReader(stdin), &out, &errOut)
	return out.String(), errOut.String(), code
}

// mqGroups lists, with `tide mq groups -o json`, the consumer groups at the name server nameServer whose name starts
// with prefix ("" for all).
func (p *platform) mqGroups(nameServer, prefix string) []string {
	p.t.Helper()
	var rows []struct {
		Group string `json:"group"`
	}
	if err := json.Unmarshal([]byte(p.mustRun("", "mq", "groups", "--namesrv", nameServer, "-o", "json")), &rows); err != nil {
		p.t.Fatal(err)
	}
	var out []string
	for _, r := range rows {
		if strings.HasPrefix(r.Group, prefix) {
			out = append(out, r.Group)
		}
	}
	return out
}

func (p *platform) mustRun(stdin string, args ...string) string {
	p.t.Helper()
	out, errOut, code := p.run(stdin, args...)
	if code != 0 {
		p.t.Fatalf("tide %s: exit %d\nstdout: %s\nstderr: %s", strings.Join(args, " "), code, out, errOut)
	}
	return out
}

func (p *platform) apply(yaml string) { p.t.Helper(); p.mustRun(yaml, "apply", "-f", "-") }

func (p *platform) getJSON(kind, name string) map[string]any {
	p.t.Helper()
	var m map[string]any
	if err := json.Unmarshal([]byte(p.mustRun("", "get", kind, name, "-o", "json")), &m); err != nil {
		p.t.Fatal(err)
	}
	return m
}

func (p *platform) waitReady(kind, name string) { p.t.Helper(); p.waitReadyWithin(kind, name, "30s") }

func (p *platform) waitReadyWithin(kind, name, timeout string) {
	p.t.Helper()
	out, errOut, code := p.run("", "wait", kind, name, "--for=condition=Ready", "--timeout="+timeout)
	if code != 0 {
		obj := p.getJSON(kind, name)
		p.t.Fatalf("%s %s not Ready: %s %s\nstatus: %v", kind, name, out, errOut, obj["status"])
	}
}

// postEvent posts a binary-mode CloudEvent 1.0 with JSON data to path on the gateway (/namespace/broker) and returns
// the status code; a request that fails to reach the gateway fails the test.
func (p *platform) postEvent(path, id, typ, source, data string) int {
	p.t.Helper()
	req, _ := http.NewRequest(http.MethodPost, p.endpoint("gateway")+path, strings.NewReader(data))
	req.Header.Set("Ce-Specversion", "1.0")
	req.Header.Set("Ce-Id", id)
	req.Header.Set("Ce-Type", typ)
	req.Header.Set("Ce-Source", source)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		p.t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

func eventually(t *testing.T, timeout time.Duration, f func() error) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		err := f()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("condition not met within %v: %v", timeout, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// receiver is a real HTTP subscriber recording the CloudEvents it accepts.
type receiver struct {
	*httptest.Server
	mu     sync.Mutex
	events []event.Event
	ids    map[string]int
	// status answers every request when non-zero (e.g. 500 to fail).
	status atomic.Int32
	// delay holds each request this long (in-flight deliveries for restart tests).
	delay time.Duration
}

func newReceiver(t *testing.T) *receiver {
	r := &receiver{ids: map[string]int{}}
	r.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		if code := r.status.Load(); code != 0 {
			_, _ = io.Copy(io.Discard, req.Body)
			w.WriteHeader(int(code))
			_, _ = io.WriteString(w, "receiver says no")
			return
		}
		if r.delay > 0 {
			select {
			case <-time.After(r.delay):
			case <-req.Context().Done():
				return
			}
		}
		e, err := binding.ToEvent(req.Context(), cehttp.NewMessageFromHttpRequest(req))
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		r.mu.Lock()
		r.events = append(r.events, *e)
		r.ids[e.ID()]++
		r.mu.Unlock()
		w.WriteHeader(http.StatusAccepted)
	}))
	t.Cleanup(r.Close)
	return r
}

// waitDelivered waits until the event with id has reached the receiver at least once.
func (r *receiver) waitDelivered(t *testing.T, id string) {
	t.Helper()
	eventually(t, 20*time.Second, func() error {
		if _, ids := r.snapshot(); ids[id] == 0 {
			return fmt.Errorf("event %s not delivered", id)
		}
		return nil
	})
}

// postUntilDelivered posts event id to the Broker ingress path again on every poll until r has it: for a Trigger or
// Broker that was just (re)created, whose consumer may start after a first event was stored.
func (p *platform) postUntilDelivered(t *testing.T, path, id string, r *receiver) {
	t.Helper()
	eventually(t, 20*time.Second, func() error {
		if code := p.postEvent(path, id, "t", "/s", `{}`); code != 202 {
			return fmt.Errorf("post %s to %s: %d", id, path, code)
		}
		if _, ids := r.snapshot(); ids[id] == 0 {
			return fmt.Errorf("event %s not delivered", id)
		}
		return nil
	})
}

func (r *receiver) snapshot() ([]event.Event, map[string]int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	ids := make(map[string]int, len(r.ids))
	for k, v := range r.ids {
		ids[k] = v
	}
	return append([]event.Event(nil), r.events...), ids
}

// newProducer is the official RocketMQ client producing to the platform's name server.
func newProducer(t *testing.T, nameServer string) interface {
	SendSync(context.Context, ...*primitive.Message) (*primitive.SendResult, error)
} {
	t.Helper()
	p, err := producer.NewDefaultProducer(producer.WithNsResolver(primitive.NewPassthroughResolver([]string{nameServer})),
		producer.WithGroupName("test-producer"), producer.WithInstanceName("test-"+strconv.FormatInt(time.Now().UnixNano(), 36)),
		producer.WithRetry(2))
	if err != nil {
		t.Fatal(err)
	}
	if err := p.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = p.Shutdown() })
	return p
}

func send(t *testing.T, p interface {
	SendSync(context.Context, ...*primitive.Message) (*primitive.SendResult, error)
}, topic, tag, body string) {
	t.Helper()
	m := primitive.NewMessage(topic, []byte(body))
	if tag != "" {
		m.WithTag(tag)
	}
	res, err := p.SendSync(context.Background(), m)
	if err != nil || res.Status != primitive.SendOK {
		t.Fatalf("send to %s: %v %v", topic, res, err)
	}
}

func condReason(obj map[string]any, typ string) (string, string) {
	st, _ := obj["status"].(map[string]any)
	conds, _ := st["conditions"].([]any)
	for _, c := range conds {
		m, _ := c.(map[string]any)
		if m["type"] == typ {
			s, _ := m["status"].(string)
			r, _ := m["reason"].(string)
			return s, r
		}
	}
	return "", ""
}

// TestSeedFlowWithoutServing is the seed's eventing path: messages produced with the official client to a topic,
// a RocketMQSource with a Broker sink, Triggers with a filter to real HTTP subscribers and a dead-letter sink.
func TestSeedFlowWithoutServing(t *testing.T) {
	p := startPlatform(t, t.TempDir())
	ns := p.endpoint("rocketmq name server")
	prod := newProducer(t, ns)
	send(t, prod, "orders", "warmup", "creates the topic") // before the source subscribes (earliest offset reads it)

	sub := newReceiver(t)
	failing := newReceiver(t)
	failing.status.Store(500)
	dls := newReceiver(t)
	p.apply(fmt.Sprintf(`
apiVersion: eventing.knative.dev/v1
kind: Broker
metadata: {name: default, annotations: {eventing.knative.dev/broker.class: MTChannelBasedBroker}}
---
apiVersion: eventing.knative.dev/v1
kind: Trigger
metadata: {name: created-orders}
spec:
  broker: default
  filter: {attributes: {type: dev.knative.rocketmq.event, subject: created}}
  subscriber: {uri: %s}
---
apiVersion: eventing.knative.dev/v1
kind: Trigger
metadata: {name: audit}
spec:
  broker: default
  filters: [{prefix: {subject: creat}}]
  subscriber: {uri: %s/audit}
  delivery: {retry: 1, backoffPolicy: linear, backoffDelay: PT0.01S, deadLetterSink: {uri: %s}}
`, sub.URL, failing.URL, dls.URL))
	p.waitReady("broker", "default")
	p.waitReady("trigger", "created-orders")
	p.waitReady("trigger", "audit")
	p.apply(`
apiVersion: sources.knative.dev/v1alpha1
kind: RocketMQSource
metadata: {name: orders}
spec:
  topic: orders
  initialOffset: earliest
  sink: {ref: {apiVersion: eventing.knative.dev/v1, kind: Broker, name: default}}
`)
	p.waitReady("rocketmqsource", "orders")
	src := p.getJSON("rocketmqsource", "orders")
	if su := src["status"].(map[string]any)["sinkUri"]; su != p.endpoint("gateway")+"/default/default" {
		t.Errorf("sinkUri %v, gateway %s", su, p.endpoint("gateway"))
	}
	br := p.getJSON("broker", "default")
	if u := br["status"].(map[string]any)["address"].(map[string]any)["url"]; u != p.endpoint("gateway")+"/default/default" {
		t.Errorf("broker address %v", u)
	}
	tr := p.getJSON("trigger", "created-orders")
	if tr["status"].(map[string]any)["subscriberUri"] != sub.URL {
		t.Errorf("subscriberUri %v", tr["status"])
	}
	if s, r := condReason(p.getJSON("trigger", "audit"), "DeadLetterSinkResolved"); s != "True" || r != "" {
		t.Errorf("DeadLetterSinkResolved %s %s", s, r)
	}

	const created, deleted = 12, 5
	for i := range created {
		send(t, prod, "orders", "created", fmt.Sprintf(`{"order":%d}`, i))
	}
	for i := range deleted {
		send(t, prod, "orders", "deleted", fmt.Sprintf(`{"order":%d}`, 100+i))
	}
	eventually(t, 30*time.Second, func() error {
		_, ids := sub.snapshot()
		_, dids := dls.snapshot()
		if len(ids) != created || len(dids) != created {
			return fmt.Errorf("subscriber has %d, dead-letter sink %d distinct events, want %d", len(ids), len(dids), created)
		}
		return nil
	})
	evs, _ := sub.snapshot()
	for _, e := range evs {
		if e.Subject() != "created" || e.Type() != "dev.knative.rocketmq.event" || !strings.HasSuffix(e.Source(), "rocketmqsources/orders#orders") {
			t.Errorf("filter let through %s %s %s", e.Type(), e.Subject(), e.Source())
		}
		if _, ok := e.Extensions()["knativearrivaltime"]; !ok {
			t.Errorf("no knativearrivaltime on %s", e.ID())
		}
		if _, ok := e.Extensions()["knativebrokerttl"]; ok {
			t.Errorf("knativebrokerttl leaked to the subscriber")
		}
	}
	dl, _ := dls.snapshot()
	for _, e := range dl {
		ext := e.Extensions()
		if ext["knativeerrordest"] != failing.URL+"/audit" || fmt.Sprint(ext["knativeerrorcode"]) != "500" || ext["knativeerrordata"] == nil {
			t.Fatalf("dead-lettered event extensions %v", ext)
		}
	}
	// Counters reach the status and `tide get trigger -o wide` (deleted ones are filtered out by both triggers).
	eventually(t, 15*time.Second, func() error {
		out := p.mustRun("", "get", "trigger", "audit", "-o", "wide")
		lines := strings.Split(strings.TrimSpace(out), "\n")
		if len(lines) != 2 || !strings.Contains(lines[0], "DELIVERED   RETRIED   DEAD-LETTERED") {
			return fmt.Errorf("table %q", out)
		}
		f := strings.Fields(lines[1])
		// REASON and MESSAGE are empty for a Ready trigger, so the counters are the last three fields.
		if got := strings.Join(f[len(f)-3:], " "); got != fmt.Sprintf("0 %d %d", created, created) {
			return fmt.Errorf("audit counters %v", f)
		}
		tr := p.getJSON("trigger", "created-orders")
		stats, _ := tr["status"].(map[string]any)["deliveryStats"].(map[string]any)
		if stats["delivered"] != float64(created) || stats["filtered"] != float64(deleted+1) && stats["filtered"] != float64(deleted) {
			return fmt.Errorf("created-orders stats %v", stats)
		}
		return nil
	})
	out := p.mustRun("", "get", "rocketmqsource", "orders", "-o", "wide")
	if !strings.Contains(out, "DELIVERED") {
		t.Errorf("source wide table %q", out)
	}
	// `tide mq trace` follows an order by its message id (the event's id): the stored message consumed by the
	// source's group, then the Broker-topic message carrying the event, consumed by both Triggers' groups (their
	// trace records), the audit Trigger's dead-lettering included.
	id := evs[0].ID()
	eventually(t, 15*time.Second, func() error {
		out := p.mustRun("", "mq", "trace", id, "--namesrv", ns)
		if !strings.Contains(out, "message "+id) || !strings.Contains(out, "topic orders") || strings.Count(out, "  consumed ") != 3 ||
			strings.Count(out, ": SUCCESS in ") != 3 || !strings.Contains(out, "group knative-rocketmqsource_default_orders") ||
			!strings.Contains(out, "/audit: DeadLettered, status 500") {
			return fmt.Errorf("tide mq trace %s:\n%s", id, out)
		}
		return nil
	})
}

// TestIngressCodesViaGateway checks the Broker ingress answers on the gateway address.
func TestIngressCodesViaGateway(t *testing.T) {
	p := startPlatform(t, t.TempDir())
	p.apply(`
apiVersion: eventing.knative.dev/v1
kind: Broker
metadata: {name: default}
---
apiVersion: eventing.knative.dev/v1
kind: Broker
metadata: {name: other, annotations: {eventing.knative.dev/broker.class: Kafka}}
`)
	p.waitReady("broker", "default")
	eventually(t, 10*time.Second, func() error {
		if s, r := condReason(p.getJSON("broker", "other"), "Ready"); s != "False" || r != "UnsupportedBrokerClass" {
			return fmt.Errorf("other broker Ready %s %s", s, r)
		}
		return nil
	})
	gw := p.endpoint("gateway")
	post := func(path string, hdr map[string]string, body string) (int, http.Header, string) {
		req, _ := http.NewRequest(http.MethodPost, gw+path, strings.NewReader(body))
		for k, v := range hdr {
			req.Header.Set(k, v)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, resp.Header, string(b)
	}
	binary := map[string]string{"Ce-Specversion": "1.0", "Ce-Id": "1", "Ce-Type": "t", "Ce-Source": "/s", "Content-Type": "application/json"}
	if code, _, body := post("/default/default", binary, `{"a":1}`); code != 202 {
		t.Errorf("binary 1.0: %d %s", code, body)
	}
	v03 := map[string]string{"Ce-Specversion": "0.3", "Ce-Id": "2", "Ce-Type": "t", "Ce-Source": "/s"}
	if code, _, body := post("/default/default", v03, ``); code != 202 {
		t.Errorf("binary 0.3: %d %s", code, body)
	}
	structured := map[string]string{"Content-Type": "application/cloudevents+json"}
	if code, _, body := post("/default/default", structured, `{"specversion":"1.0","id":"3","type":"t","source":"/s"}`); code != 202 {
		t.Errorf("structured: %d %s", code, body)
	}
	if code, _, body := post("/default/default", map[string]string{"Content-Type": "text/plain"}, "hello"); code != 400 || body == "" {
		t.Errorf("not a CloudEvent: %d %q", code, body)
	}
	bad := map[string]string{"Ce-Specversion": "1.0", "Ce-Id": "4", "Ce-Type": "t", "Ce-Source": "/s", "Ce-Knativebrokerttl": "1"}
	if code, _, _ := post("/default/default", bad, ""); code != 400 {
		t.Errorf("ttl exhausted: %d", code)
	}
	if code, _, _ := post("/default/missing", binary, "{}"); code != 404 {
		t.Errorf("unknown broker: %d", code)
	}
	if code, _, _ := post("/default/other", binary, "{}"); code != 404 {
		t.Errorf("broker of a class tide does not serve: %d", code)
	}
	resp, err := http.Get(gw + "/default/default")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 405 || resp.Header.Get("Allow") != "POST, OPTIONS" {
		t.Errorf("GET: %d %v", resp.StatusCode, resp.Header)
	}
	req, _ := http.NewRequest(http.MethodOptions, gw+"/default/default", nil)
	resp, err = http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 || resp.Header.Get("WebHook-Allowed-Origin") != "*" {
		t.Errorf("OPTIONS: %d %v", resp.StatusCode, resp.Header)
	}
}

// TestRestartWithEventsInFlightLosesNone stops tide while deliveries are under way (events that came from a topic
// through a RocketMQSource, and events posted to the Broker) and checks that every one reaches the subscriber after
// a restart on the same data dir (on new ports: the source's name servers are the platform's, resolved at start).
func TestRestartWithEventsInFlightLosesNone(t *testing.T) {
	dir := t.TempDir()
	sub := newReceiver(t)
	sub.delay = 30 * time.Millisecond
	p := startPlatform(t, dir)
	prod := newProducer(t, p.endpoint("rocketmq name server"))
	send(t, prod, "orders", "", "creates the topic")
	p.apply(fmt.Sprintf(`
apiVersion: eventing.knative.dev/v1
kind: Broker
metadata: {name: default}
---
apiVersion: eventing.knative.dev/v1
kind: Trigger
metadata: {name: slow, annotations: {rocketmq.eventing.knative.dev/delivery.order: ordered}}
spec:
  broker: default
  subscriber: {uri: %s}
---
apiVersion: sources.knative.dev/v1alpha1
kind: RocketMQSource
metadata: {name: orders}
spec:
  topic: orders
  initialOffset: earliest
  sink: {ref: {apiVersion: eventing.knative.dev/v1, kind: Broker, name: default}}
`, sub.URL))
	p.waitReady("trigger", "slow")
	p.waitReady("rocketmqsource", "orders")
	const posted, produced = 30, 30
	for i := range posted {
		if code := p.postEvent("/default/default", "posted-"+strconv.Itoa(i), "t", "/s", `{}`); code != 202 {
			t.Fatalf("event %d: %d", i, code)
		}
	}
	for i := range produced {
		send(t, prod, "orders", "", fmt.Sprintf(`{"order":%d}`, i))
	}
	const n = posted + produced + 1 // + the message that created the topic
	eventually(t, 20*time.Second, func() error {
		if _, ids := sub.snapshot(); len(ids) < 3 {
			return fmt.Errorf("%d delivered", len(ids))
		}
		return nil
	})
	p.stop()
	_, before := sub.snapshot()
	if len(before) == n {
		t.Fatalf("all %d events delivered before the stop; the test did not stop tide mid-stream", n)
	}
	p2 := startPlatform(t, dir)
	p2.waitReady("trigger", "slow")
	p2.waitReady("rocketmqsource", "orders")
	eventually(t, 40*time.Second, func() error {
		if _, ids := sub.snapshot(); len(ids) != n {
			return fmt.Errorf("%d of %d distinct events delivered after restart (%d before)", len(ids), n, len(before))
		}
		return nil
	})
	t.Logf("delivered %d before the restart, all %d after", len(before), n)
}

// TestRocketMQSource2020FormAndValidation applies the 2020 manifest (converted, shown converted) and a bad spec
// (rejected by tide apply with field paths, nothing stored).
func TestRocketMQSource2020FormAndValidation(t *testing.T) {
	p := startPlatform(t, t.TempDir())
	ns := p.endpoint("rocketmq name server")
	prod := newProducer(t, ns)
	send(t, prod, "legacy", "", "first")
	sink := newReceiver(t)
	p.apply(fmt.Sprintf(`
apiVersion: serving.knative.dev/v1
kind: Service
metadata: {name: sink}
spec:
  template:
    spec:
      containers: [{image: "ko://example.com/sink"}]
---
apiVersion: sources.eventing.knative.dev/v1alpha1
kind: RocketMQSource
metadata: {name: old}
spec:
  topic: legacy
  namesrvAddr: "%s"
  groupName: GID_legacy
  serviceAccountName: robot
  sink: {apiVersion: v1, kind: Pod, name: nowhere}
`, ns))
	// The sink does not exist: SinkProvided says so.
	eventually(t, 10*time.Second, func() error {
		if s, r := condReason(p.getJSON("rocketmqsource", "old"), "SinkProvided"); s != "False" || r != "SinkNotFound" {
			return fmt.Errorf("SinkProvided %s %s", s, r)
		}
		return nil
	})
	obj := p.getJSON("rocketmqsources.sources.eventing.knative.dev", "old")
	spec := obj["spec"].(map[string]any)
	md := obj["metadata"].(map[string]any)
	if obj["apiVersion"] != "sources.knative.dev/v1alpha1" || spec["consumerGroup"] != "GID_legacy" ||
		fmt.Sprint(spec["nameServers"]) != "["+ns+"]" || md["annotations"].(map[string]any)["sources.knative.dev/converted-from"] != "sources.eventing.knative.dev/v1alpha1" {
		t.Fatalf("converted form: %v", obj)
	}
	// Re-applied with a URI sink, it runs.
	p.apply(fmt.Sprintf(`
apiVersion: sources.eventing.knative.dev/v1alpha1
kind: RocketMQSource
metadata: {name: old}
spec:
  topic: legacy
  namesrvAddr: "%s"
  groupName: GID_legacy
  sink: {apiVersion: v1, kind: Pod, name: nowhere}
`, ns))
	p.apply(fmt.Sprintf(`
apiVersion: sources.knative.dev/v1alpha1
kind: RocketMQSource
metadata: {name: old, annotations: {sources.knative.dev/converted-from: sources.eventing.knative.dev/v1alpha1}}
spec:
  topic: legacy
  nameServers: ["%s"]
  consumerGroup: GID_legacy
  initialOffset: earliest
  sink: {uri: %s}
`, ns, sink.URL))
	p.waitReady("rocketmqsource", "old")
	send(t, prod, "legacy", "", "second")
	eventually(t, 20*time.Second, func() error {
		if evs, _ := sink.snapshot(); len(evs) < 2 {
			return fmt.Errorf("%d events", len(evs))
		}
		return nil
	})

	out, errOut, code := p.run(`
apiVersion: sources.knative.dev/v1alpha1
kind: RocketMQSource
metadata: {name: bad}
spec:
  topics: ["ok", "no/slash"]
  ordering: sorted
  sink: {uri: /relative}
`, "apply", "-f", "-")
	if code == 0 || !strings.Contains(errOut, "spec.topics[1]") || !strings.Contains(errOut, "spec.ordering") || !strings.Contains(errOut, "spec.sink.uri") {
		t.Fatalf("bad spec: exit %d\n%s\n%s", code, out, errOut)
	}
	if _, errOut, code := p.run("", "get", "rocketmqsource", "bad"); code == 0 || !strings.Contains(errOut, "NotFound") {
		t.Errorf("bad source was stored: %s", errOut)
	}
	// Credentials come from Secrets in the store; a missing one is reported, not guessed.
	p.apply(fmt.Sprintf(`
apiVersion: sources.knative.dev/v1alpha1
kind: RocketMQSource
metadata: {name: acl}
spec:
  topic: legacy
  accessKey: {secretKeyRef: {name: rocketmq-acl, key: ak}}
  secretKey: {secretKeyRef: {name: rocketmq-acl, key: sk}}
  sink: {uri: %s}
`, sink.URL))
	eventually(t, 10*time.Second, func() error {
		if s, r := condReason(p.getJSON("rocketmqsource", "acl"), "Deployed"); s != "False" || r != "BadCredentials" {
			return fmt.Errorf("Deployed %s %s", s, r)
		}
		return nil
	})
	p.apply(`
apiVersion: v1
kind: Secret
metadata: {name: rocketmq-acl}
stringData: {ak: tide, sk: secret}
`)
	p.waitReady("rocketmqsource", "acl") // the embedded broker does not enforce ACLs

	_, errOut, code = p.run(`
apiVersion: sources.eventing.knative.dev/v1alpha1
kind: RocketMQSource
metadata: {name: bad2}
spec: {topic: t, nameServers: [x]}
`, "apply", "-f", "-")
	if code == 0 || !strings.Contains(errOut, "nameServers") {
		t.Errorf("unknown field in the 2020 form: exit %d %s", code, errOut)
	}
}

// TestEventsTail streams the events entering a Broker through the API, as `tide events tail` prints them.
func TestEventsTail(t *testing.T) {
	p := startPlatform(t, t.TempDir())
	p.apply(`
apiVersion: eventing.knative.dev/v1
kind: Broker
metadata: {name: default}
`)
	p.waitReady("broker", "default")
	type result struct {
		out, errOut string
		code        int
	}
	done := make(chan result, 1)
	go func() {
		out, errOut, code := p.run("", "events", "tail", "--broker", "default", "--limit", "2")
		done <- result{out, errOut, code}
	}()
	deadline := time.Now().Add(30 * time.Second)
	i := 0
	for {
		select {
		case r := <-done:
			if r.code != 0 || strings.Count(r.out, "\n") != 2 || !strings.Contains(r.out, "com.example.tail") || !strings.Contains(r.out, "knativearrivaltime=") {
				t.Fatalf("tail: exit %d\n%s\n%s", r.code, r.out, r.errOut)
			}
			return
		case <-time.After(200 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatal("tail printed nothing")
		}
		// Keep sending: the tail's consumer starts asynchronously and sees events from its start on.
		i++
		p.postEvent("/default/default", strconv.Itoa(i), "com.example.tail", "/tail", `{"n":`+strconv.Itoa(i)+`}`)
	}
}

// TestRocketMQPortBusyNamesFlag: a busy name server or broker port fails Start with the flag's name.
func TestRocketMQPortBusyNamesFlag(t *testing.T) {
	held, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer held.Close()
	port := held.Addr().(*net.TCPAddr).Port
	for _, c := range []struct {
		flag string
		opts server.Options
	}{
		{"--namesrv-port", server.Options{NameServerPort: port}},
		{"--broker-port", server.Options{BrokerPort: port}},
		{"--grpc-port", server.Options{GRPCPort: port}},
	} {
		c.opts.DataDir = t.TempDir()
		c.opts.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
		s, err := server.New(c.opts)
		if err != nil {
			t.Fatal(err)
		}
		err = s.Start(context.Background())
		var pe *server.PortError
		if !errors.As(err, &pe) || !errors.Is(err, syscall.EADDRINUSE) || !strings.HasSuffix(err.Error(), fmt.Sprintf("%s %d: address already in use", c.flag, port)) {
			t.Errorf("%s busy: %v", c.flag, err)
		}
	}
}

// TestExternalNameServers: with --rocketmq-name-servers tide starts no embedded broker and runs eventing on the
// given cluster (here another tide's embedded broker stands in for an Apache RocketMQ cluster).
func TestExternalNameServers(t *testing.T) {
	cluster := startPlatform(t, t.TempDir())
	ns := cluster.endpoint("rocketmq name server")
	p := newPlatform(t, server.Options{DataDir: t.TempDir(), RocketMQNameServers: []string{ns}})
	for _, e := range p.srv.Endpoints() {
		if strings.HasPrefix(e.Name, "rocketmq") {
			t.Errorf("embedded broker started despite external name servers: %v", e)
		}
	}
	sub := newReceiver(t)
	p.apply(fmt.Sprintf(`
apiVersion: eventing.knative.dev/v1
kind: Broker
metadata: {name: default}
---
apiVersion: eventing.knative.dev/v1
kind: Trigger
metadata: {name: all}
spec: {broker: default, subscriber: {uri: %s}}
`, sub.URL))
	p.waitReady("trigger", "all")
	if code := p.postEvent("/default/default", "x", "t", "/s", `{}`); code != 202 {
		t.Fatalf("post: %d", code)
	}
	sub.waitDelivered(t, "x")
}

// TestBrokerAsSubscriberAndBrokerDeliveryDefault: a Trigger whose subscriber is a ref to another Broker forwards
// into it (in-process, same ingress semantics); a Trigger without spec.delivery takes its Broker's.
func TestBrokerAsSubscriberAndBrokerDeliveryDefault(t *testing.T) {
	p := startPlatform(t, t.TempDir())
	failing := newReceiver(t)
	failing.status.Store(503)
	dls := newReceiver(t)
	p.apply(fmt.Sprintf(`
apiVersion: eventing.knative.dev/v1
kind: Broker
metadata: {name: front}
---
apiVersion: eventing.knative.dev/v1
kind: Broker
metadata: {name: back}
spec:
  delivery: {retry: 2, backoffDelay: PT0.01S, deadLetterSink: {uri: %s}}
---
apiVersion: eventing.knative.dev/v1
kind: Trigger
metadata: {name: forward}
spec:
  broker: front
  subscriber: {ref: {apiVersion: eventing.knative.dev/v1, kind: Broker, name: back}}
---
apiVersion: eventing.knative.dev/v1
kind: Trigger
metadata: {name: flaky}
spec: {broker: back, subscriber: {uri: %s}}
`, dls.URL, failing.URL))
	p.waitReady("trigger", "forward")
	p.waitReady("trigger", "flaky")

	// A subscriber that does not exist yet: not resolved, then followed when it appears.
	p.apply(`
apiVersion: eventing.knative.dev/v1
kind: Trigger
metadata: {name: later}
spec:
  broker: front
  subscriber: {ref: {apiVersion: eventing.knative.dev/v1, kind: Broker, name: late}}
`)
	eventually(t, 10*time.Second, func() error {
		if s, _ := condReason(p.getJSON("trigger", "later"), "SubscriberResolved"); s != "False" {
			return fmt.Errorf("SubscriberResolved %q", s)
		}
		return nil
	})
	p.apply(`
apiVersion: eventing.knative.dev/v1
kind: Broker
metadata: {name: late}
`)
	p.waitReady("trigger", "later")
	if su := p.getJSON("trigger", "forward")["status"].(map[string]any)["subscriberUri"]; su != p.endpoint("gateway")+"/default/back" {
		t.Errorf("subscriberUri of a Broker ref: %v", su)
	}
	if code := p.postEvent("/default/front", "fwd-1", "t", "/s", `{}`); code != 202 {
		t.Fatalf("post: %d", code)
	}
	eventually(t, 20*time.Second, func() error {
		evs, _ := dls.snapshot()
		if len(evs) == 0 {
			return fmt.Errorf("nothing dead-lettered")
		}
		e := evs[0]
		if e.ID() != "fwd-1" || e.Extensions()["knativeerrordest"] != failing.URL || fmt.Sprint(e.Extensions()["knativeerrorcode"]) != "503" {
			return fmt.Errorf("dead-lettered %v", e)
		}
		return nil
	})
	eventually(t, 10*time.Second, func() error {
		st, _ := p.getJSON("trigger", "flaky")["status"].(map[string]any)["deliveryStats"].(map[string]any)
		if st["retried"] != float64(2) || st["deadLettered"] != float64(1) {
			return fmt.Errorf("flaky stats %v", st)
		}
		return nil
	})
}

// TestDeletedBrokerTopicIsRemoved: deleting a Broker removes its RocketMQ topic (and the events stored in it), its
// ingress answers 404 and its Trigger reports BrokerDoesNotExist; a Broker created again under the same name gets a
// new, empty topic and delivers again.
func TestDeletedBrokerTopicIsRemoved(t *testing.T) {
	p := startPlatform(t, t.TempDir())
	sub := newReceiver(t)
	p.apply(fmt.Sprintf(`
apiVersion: eventing.knative.dev/v1
kind: Broker
metadata: {name: gone}
---
apiVersion: eventing.knative.dev/v1
kind: Trigger
metadata: {name: all}
spec: {broker: gone, subscriber: {uri: %s}}
`, sub.URL))
	p.waitReady("trigger", "all")
	topic := ingress.TopicFor("default", "gone")
	ns := p.endpoint("rocketmq name server")
	topics := func() string { return p.mustRun("", "mq", "topic", "list", "--namesrv", ns) }
	if !strings.Contains(topics(), topic) {
		t.Fatalf("topic %s not listed:\n%s", topic, topics())
	}
	if code := p.postEvent("/default/gone", "before", "t", "/s", `{}`); code != 202 {
		t.Fatalf("post: %d", code)
	}
	sub.waitDelivered(t, "before")

	// tide delete waits, as kubectl does, until the Broker's finalizer has run: the topic is gone by then, and
	// so is the Broker (applying it again earlier would update the object being deleted, as on a cluster).
	p.mustRun("", "delete", "broker", "gone")
	if l := topics(); strings.Contains(l, topic) {
		t.Fatalf("topic %s still listed after tide delete returned:\n%s", topic, l)
	}
	if _, errOut, code := p.run("", "get", "broker", "gone"); code != 1 || !strings.Contains(errOut, "NotFound") {
		t.Fatalf("get after tide delete returned: exit %d %s", code, errOut)
	}
	if code := p.postEvent("/default/gone", "after-delete", "t", "/s", `{}`); code != 404 {
		t.Errorf("post to a deleted Broker: %d, want 404", code)
	}
	eventually(t, 20*time.Second, func() error {
		if _, r := condReason(p.getJSON("trigger", "all"), "BrokerReady"); r != "BrokerDoesNotExist" {
			return fmt.Errorf("trigger BrokerReady reason %q", r)
		}
		return nil
	})

	p.apply(`
apiVersion: eventing.knative.dev/v1
kind: Broker
metadata: {name: gone}
`)
	p.waitReady("trigger", "all")
	p.postUntilDelivered(t, "/default/gone", "again", sub)
}

// TestDeletedTriggerGroupIsRemoved: deleting a Trigger deletes its consumer group on the broker (`tide mq groups`
// no longer lists it); the Trigger created again (a new UID) consumes in a group of its own; and a finished
// `tide events tail` leaves no group behind either.
func TestDeletedTriggerGroupIsRemoved(t *testing.T) {
	p := startPlatform(t, t.TempDir())
	sub := newReceiver(t)
	trig := fmt.Sprintf(`
apiVersion: eventing.knative.dev/v1
kind: Trigger
metadata: {name: all}
spec: {broker: default, subscriber: {uri: %s}}
`, sub.URL)
	p.apply("apiVersion: eventing.knative.dev/v1\nkind: Broker\nmetadata: {name: default}\n---" + trig)
	p.waitReady("trigger", "all")
	ns := p.endpoint("rocketmq name server")
	groups := func(prefix string) []string { return p.mqGroups(ns, prefix) }
	const prefix = "tide-trigger-default-all-"
	if code := p.postEvent("/default/default", "first", "t", "/s", `{}`); code != 202 {
		t.Fatalf("post: %d", code)
	}
	sub.waitDelivered(t, "first")
	first := groups(prefix)
	if len(first) != 1 {
		t.Fatalf("trigger groups %v, want one", first)
	}

	p.mustRun("", "delete", "trigger", "all")
	eventually(t, 20*time.Second, func() error {
		if g := groups(prefix); len(g) != 0 {
			return fmt.Errorf("groups left after the trigger was deleted: %v", g)
		}
		return nil
	})
	p.mustRun("", "wait", "trigger", "all", "--for=delete", "--timeout=20s") // its finalizer goes after the group

	p.apply(trig)
	p.waitReady("trigger", "all")
	p.postUntilDelivered(t, "/default/default", "second", sub)
	if g := groups(prefix); len(g) != 1 || g[0] == first[0] {
		t.Fatalf("re-created trigger's groups %v, want one other than %s", g, first[0])
	}

	done := make(chan int, 1)
	go func() {
		_, _, code := p.run("", "events", "tail", "--broker", "default", "--limit", "1")
		done <- code
	}()
	deadline := time.Now().Add(30 * time.Second)
	for i := 0; ; i++ {
		select {
		case code := <-done:
			if code != 0 {
				t.Fatalf("tail exit %d", code)
			}
			eventually(t, 20*time.Second, func() error {
				if g := groups("tide-tail-"); len(g) != 0 {
					return fmt.Errorf("tail groups left: %v", g)
				}
				return nil
			})
			return
		case <-time.After(200 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatal("tail printed nothing")
		}
		p.postEvent("/default/default", "tail-"+strconv.Itoa(i), "t", "/s", `{}`)
	}
}
