package ingress

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cloudevents/sdk-go/v2/event"
	clocktesting "k8s.io/utils/clock/testing"

	"github.com/tide-run/tide/eventing/binding"
	"github.com/tide-run/tide/eventing/bus"
)

// recordingBus stands in for RocketMQ in these handler tests: the status codes
// under test depend only on whether Send succeeded, which this fake controls.
// The same handler runs against the real broker in eventing/trigger's
// end-to-end tests.
type recordingBus struct {
	mu   sync.Mutex
	sent []*bus.Message
	fail error
}

func (b *recordingBus) Send(_ context.Context, m *bus.Message) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.fail != nil {
		return b.fail
	}
	b.sent = append(b.sent, m)
	return nil
}
func (b *recordingBus) EnsureTopic(context.Context, string) error { return nil }
func (b *recordingBus) DeleteGroup(context.Context, string) error { return nil }
func (b *recordingBus) DeleteTopic(context.Context, string) error { return nil }
func (b *recordingBus) Subscribe(context.Context, bus.SubscribeOptions, bus.Handler) (bus.Subscription, error) {
	return nil, errors.New("not supported")
}
func (b *recordingBus) Close() error { return nil }

func (b *recordingBus) events(t *testing.T) []*event.Event {
	t.Helper()
	b.mu.Lock()
	defer b.mu.Unlock()
	var out []*event.Event
	for _, m := range b.sent {
		e, err := binding.Decode(m.Body, m.Properties)
		if err != nil {
			t.Fatalf("stored message does not decode: %v", err)
		}
		out = append(out, e)
	}
	return out
}

var arrival = time.Date(2026, 11, 21, 12, 0, 0, 0, time.UTC)

func newIngress(t *testing.T, opts ...func(*Options)) (*Ingress, *recordingBus) {
	t.Helper()
	rb := &recordingBus{}
	o := Options{
		Bus: rb,
		Brokers: BrokersFunc(func(ns, name string) (Broker, bool) {
			switch ns + "/" + name {
			case "default/orders":
				return Broker{Topic: "default-orders", Ready: true}, true
			case "default/pending":
				return Broker{Topic: "default-pending"}, true
			}
			return Broker{}, false
		}),
		Clock:        clocktesting.NewFakePassiveClock(arrival),
		MaxBodyBytes: 1024,
	}
	for _, f := range opts {
		f(&o)
	}
	in, err := New(o)
	if err != nil {
		t.Fatal(err)
	}
	return in, rb
}

type req struct {
	method, path string
	headers      map[string]string
	body         string
}

func do(t *testing.T, h http.Handler, r req) *http.Response {
	t.Helper()
	hr := httptest.NewRequest(r.method, r.path, strings.NewReader(r.body))
	for k, v := range r.headers {
		hr.Header.Set(k, v)
	}
	w := httptest.NewRecorder()
	h.ServeHTTP(w, hr)
	return w.Result()
}

func binary(version string, extra map[string]string) map[string]string {
	h := map[string]string{
		"ce-specversion": version, "ce-id": "e1", "ce-source": "/test", "ce-type": "com.example.t",
		"content-type": "application/json",
	}
	for k, v := range extra {
		h[k] = v
	}
	return h
}

func TestIngressAcceptsBinaryAndStructured(t *testing.T) {
	cases := []struct {
		name    string
		headers map[string]string
		body    string
		version string
	}{
		{"binary 1.0", binary("1.0", nil), `{"a":1}`, "1.0"},
		{"binary 0.3", binary("0.3", nil), `{"a":1}`, "0.3"},
		{"structured 1.0", map[string]string{"content-type": "application/cloudevents+json"},
			`{"specversion":"1.0","id":"e1","source":"/test","type":"com.example.t","datacontenttype":"application/json","data":{"a":1}}`, "1.0"},
		{"structured with charset", map[string]string{"content-type": "application/cloudevents+json; charset=UTF-8"},
			`{"specversion":"1.0","id":"e1","source":"/test","type":"com.example.t","datacontenttype":"application/json","data":{"a":1}}`, "1.0"},
		{"structured 0.3", map[string]string{"content-type": "application/cloudevents+json"},
			`{"specversion":"0.3","id":"e1","source":"/test","type":"com.example.t","datacontenttype":"application/json","data":{"a":1}}`, "0.3"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			in, rb := newIngress(t)
			resp := do(t, in, req{"POST", "/default/orders", tc.headers, tc.body})
			if resp.StatusCode != http.StatusAccepted {
				b, _ := io.ReadAll(resp.Body)
				t.Fatalf("status %d: %s", resp.StatusCode, b)
			}
			evs := rb.events(t)
			if len(evs) != 1 {
				t.Fatalf("stored %d events", len(evs))
			}
			e := evs[0]
			if e.SpecVersion() != tc.version || e.ID() != "e1" || string(e.Data()) != `{"a":1}` {
				t.Fatalf("stored %s", e)
			}
			if got := e.Extensions()[ArrivalTimeExtension]; got != arrival.Format(time.RFC3339Nano) {
				t.Fatalf("knativearrivaltime = %v", got)
			}
			if got := e.Extensions()[TTLExtension]; got != "255" {
				t.Fatalf("knativebrokerttl = %v", got)
			}
			if rb.sent[0].Topic != "default-orders" || rb.sent[0].ShardingKey != "/test" {
				t.Fatalf("topic %q key %q", rb.sent[0].Topic, rb.sent[0].ShardingKey)
			}
		})
	}
}

func TestIngressStatusCodes(t *testing.T) {
	valid := binary("1.0", nil)
	cases := []struct {
		name      string
		r         req
		want      int
		bodyHas   string
		wantAllow bool
	}{
		{"GET not allowed", req{"GET", "/default/orders", nil, ""}, 405, "", true},
		{"PUT not allowed", req{"PUT", "/default/orders", valid, "{}"}, 405, "", true},
		{"root", req{"POST", "/", valid, "{}"}, 404, "", false},
		{"unknown broker", req{"POST", "/default/nope", valid, "{}"}, 404, "unknown broker", false},
		{"malformed path", req{"POST", "/default/orders/extra", valid, "{}"}, 400, "malformed path", false},
		{"not a CloudEvent", req{"POST", "/default/orders", map[string]string{"content-type": "application/json"}, `{"a":1}`}, 400, "cannot read", false},
		{"structured garbage", req{"POST", "/default/orders", map[string]string{"content-type": "application/cloudevents+json"}, `{"specversion":`}, 400, "cannot read", false},
		{"missing id", req{"POST", "/default/orders", map[string]string{"ce-specversion": "1.0", "ce-source": "/s", "ce-type": "t"}, ""}, 400, "id", false},
		{"unknown specversion", req{"POST", "/default/orders", map[string]string{"ce-specversion": "7.0", "ce-id": "1", "ce-source": "/s", "ce-type": "t"}, ""}, 400, `unsupported ce-specversion "7.0": want one of 1.0, 0.3`, false},
		{"specversion 9.9", req{"POST", "/default/orders", binary("9.9", nil), "{}"}, 400, `unsupported ce-specversion "9.9"`, false},
		{"no specversion", req{"POST", "/default/orders", map[string]string{"ce-id": "1", "ce-source": "/s", "ce-type": "t"}, ""}, 400, "no ce-specversion header", false},
		{"ttl exhausted", req{"POST", "/default/orders", binary("1.0", map[string]string{"ce-knativebrokerttl": "1"}), "{}"}, 400, "knativebrokerttl", false},
		{"ttl zero", req{"POST", "/default/orders", binary("1.0", map[string]string{"ce-knativebrokerttl": "0"}), "{}"}, 400, "knativebrokerttl", false},
		{"ttl not integer", req{"POST", "/default/orders", binary("1.0", map[string]string{"ce-knativebrokerttl": "many"}), "{}"}, 400, "knativebrokerttl", false},
		{"broker not ready", req{"POST", "/default/pending", valid, "{}"}, 503, "not ready", false},
		{"too large", req{"POST", "/default/orders", valid, strings.Repeat("x", 2048)}, 413, "larger than", false},
		{"empty batch", req{"POST", "/default/orders", map[string]string{"content-type": "application/cloudevents-batch+json"}, `[]`}, 400, "no events", false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			in, rb := newIngress(t)
			resp := do(t, in, tc.r)
			body, _ := io.ReadAll(resp.Body)
			if resp.StatusCode != tc.want {
				t.Fatalf("status %d, want %d (%s)", resp.StatusCode, tc.want, body)
			}
			if !strings.Contains(string(body), tc.bodyHas) {
				t.Fatalf("body %q does not say %q", body, tc.bodyHas)
			}
			if tc.wantAllow && resp.Header.Get("Allow") != "POST, OPTIONS" {
				t.Fatalf("Allow = %q", resp.Header.Get("Allow"))
			}
			if len(rb.sent) != 0 {
				t.Fatalf("rejected request stored %d events", len(rb.sent))
			}
		})
	}
}

func TestIngressOptionsWebhook(t *testing.T) {
	in, _ := newIngress(t)
	resp := do(t, in, req{"OPTIONS", "/default/orders", map[string]string{"WebHook-Request-Origin": "example.com"}, ""})
	if resp.StatusCode != 200 || resp.Header.Get("WebHook-Allowed-Origin") != "*" ||
		resp.Header.Get("WebHook-Allowed-Rate") != "*" || resp.Header.Get("Allow") != "POST, OPTIONS" {
		t.Fatalf("OPTIONS: %d %v", resp.StatusCode, resp.Header)
	}
}

func TestIngressTTLDecrementsAndPartitionKey(t *testing.T) {
	in, rb := newIngress(t)
	resp := do(t, in, req{"POST", "/default/orders", binary("1.0", map[string]string{"ce-knativebrokerttl": "5", "ce-partitionkey": "customer-7"}), "{}"})
	if resp.StatusCode != 202 {
		t.Fatalf("status %d", resp.StatusCode)
	}
	e := rb.events(t)[0]
	if e.Extensions()[TTLExtension] != "4" {
		t.Fatalf("ttl = %v, want 4", e.Extensions()[TTLExtension])
	}
	if rb.sent[0].ShardingKey != "customer-7" {
		t.Fatalf("sharding key %q", rb.sent[0].ShardingKey)
	}
}

func TestIngressBatch(t *testing.T) {
	in, rb := newIngress(t)
	batch := `[{"specversion":"1.0","id":"b1","source":"/s","type":"t"},{"specversion":"0.3","id":"b2","source":"/s","type":"t","data":"x","datacontenttype":"text/plain"}]`
	resp := do(t, in, req{"POST", "/default/orders", map[string]string{"content-type": "application/cloudevents-batch+json; charset=utf-8"}, batch})
	if resp.StatusCode != 202 {
		b, _ := io.ReadAll(resp.Body)
		t.Fatalf("status %d: %s", resp.StatusCode, b)
	}
	evs := rb.events(t)
	if len(evs) != 2 || evs[0].ID() != "b1" || evs[1].ID() != "b2" || evs[1].SpecVersion() != "0.3" {
		t.Fatalf("stored %v", evs)
	}
	// One invalid event rejects the whole batch before anything is stored.
	in, rb = newIngress(t)
	bad := `[{"specversion":"1.0","id":"b1","source":"/s","type":"t"},{"specversion":"1.0","source":"/s","type":"t"}]`
	resp = do(t, in, req{"POST", "/default/orders", map[string]string{"content-type": "application/cloudevents-batch+json"}, bad})
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 400 || !strings.Contains(string(body), "batch event 1") || len(rb.sent) != 0 {
		t.Fatalf("bad batch: %d %q stored=%d", resp.StatusCode, body, len(rb.sent))
	}
}

func TestIngress202OnlyAfterStored(t *testing.T) {
	in, rb := newIngress(t)
	rb.fail = errors.New("broker down")
	resp := do(t, in, req{"POST", "/default/orders", binary("1.0", nil), "{}"})
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 503 || !strings.Contains(string(body), "could not be stored") {
		t.Fatalf("status %d %q, want 503", resp.StatusCode, body)
	}
}

func TestPublish(t *testing.T) {
	in, rb := newIngress(t)
	e := event.New()
	e.SetID("p1")
	e.SetSource("/src")
	e.SetType("t")
	if err := in.Publish(context.Background(), "default", "orders", e); err != nil {
		t.Fatal(err)
	}
	if _, ok := e.Extensions()[TTLExtension]; ok {
		t.Fatal("Publish modified the caller's event")
	}
	if got := rb.events(t)[0]; got.Extensions()[TTLExtension] != "255" || got.Extensions()[ArrivalTimeExtension] == nil {
		t.Fatalf("published %s", got)
	}
	if err := in.Publish(context.Background(), "default", "nope", e); !errors.Is(err, ErrUnknownBroker) {
		t.Fatalf("unknown broker: %v", err)
	}
	if err := in.Publish(context.Background(), "default", "pending", e); !errors.Is(err, ErrBrokerNotReady) {
		t.Fatalf("not ready: %v", err)
	}
	e.SetExtension(TTLExtension, 1)
	if err := in.Publish(context.Background(), "default", "orders", e); !errors.Is(err, ErrTTLExpired) {
		t.Fatalf("ttl: %v", err)
	}
	bad := event.New()
	if err := in.Publish(context.Background(), "default", "orders", bad); !errors.Is(err, ErrInvalidEvent) {
		t.Fatalf("invalid: %v", err)
	}
}

func TestIngressStats(t *testing.T) {
	in, rb := newIngress(t)
	do(t, in, req{"POST", "/default/orders", binary("1.0", nil), "{}"})
	do(t, in, req{"POST", "/default/orders", map[string]string{"content-type": "text/plain"}, "x"})
	do(t, in, req{"POST", "/default/orders", binary("1.0", map[string]string{"ce-knativebrokerttl": "1"}), "{}"})
	rb.fail = errors.New("down")
	do(t, in, req{"POST", "/default/orders", binary("1.0", nil), "{}"})
	do(t, in, req{"POST", "/default/nope", binary("1.0", nil), "{}"}) // unknown brokers are not counted
	if st := in.Stats("default", "orders"); st != (BrokerStats{Accepted: 1, Rejected: 2, Failed: 1}) {
		t.Fatalf("stats %+v", st)
	}
	if st := in.Stats("default", "nope"); st != (BrokerStats{}) {
		t.Fatalf("unknown broker stats %+v", st)
	}
}

func TestNewRequiresOptions(t *testing.T) {
	if _, err := New(Options{}); !errors.Is(err, ErrInvalidOptions) {
		t.Fatal(err)
	}
}

func FuzzIngress(f *testing.F) {
	f.Add("application/cloudevents+json", "", []byte(`{"specversion":"1.0","id":"1","source":"/s","type":"t"}`))
	f.Add("application/cloudevents-batch+json", "", []byte(`[{"specversion":"1.0","id":"1","source":"/s","type":"t"}]`))
	f.Add("text/plain", "1.0", []byte("hello"))
	f.Add("application/json", "0.3", []byte("{"))
	f.Fuzz(func(t *testing.T, ct, sv string, body []byte) {
		in, rb := newIngress(t)
		hr := httptest.NewRequest("POST", "/default/orders", bytes.NewReader(body))
		hr.Header.Set("content-type", ct)
		if sv != "" {
			hr.Header.Set("ce-specversion", sv)
			hr.Header.Set("ce-id", "1")
			hr.Header.Set("ce-source", "/s")
			hr.Header.Set("ce-type", "t")
		}
		w := httptest.NewRecorder()
		in.ServeHTTP(w, hr)
		switch w.Code {
		case 202:
			if len(rb.sent) == 0 {
				t.Fatal("202 without a stored event")
			}
			for _, m := range rb.sent {
				if _, err := binding.Decode(m.Body, m.Properties); err != nil {
					t.Fatalf("stored undecodable message: %v", err)
				}
			}
		case 400, 413:
			if len(rb.sent) != 0 {
				t.Fatal("rejected request stored events")
			}
		default:
			t.Fatalf("unexpected status %d", w.Code)
		}
	})
}

func TestTopicFor(t *testing.T) {
	if got := TopicFor("default", "orders"); got != "tide-broker-default_orders" {
		t.Fatal(got)
	}
	// '_' separates namespace and name, so these cannot collide.
	if TopicFor("a-b", "c") == TopicFor("a", "b-c") {
		t.Fatal("collision")
	}
	if got := TopicFor("my.ns", "b.1"); got != "tide-broker-my_ns_b_1" {
		t.Fatal(got)
	}
}

// BenchmarkServeHTTP: the ingress's own cost per binary-mode event, storage
// stubbed: go test ./eventing/ingress -run '^$' -bench ServeHTTP -benchmem
func BenchmarkServeHTTP(b *testing.B) {
	rb := &recordingBus{}
	in, err := New(Options{Bus: discardBus{rb}, Brokers: BrokersFunc(func(string, string) (Broker, bool) {
		return Broker{Topic: "t", Ready: true}, true
	}), Logger: nil})
	if err != nil {
		b.Fatal(err)
	}
	body := []byte(`{"order":42}`)
	b.ReportAllocs()
	for b.Loop() {
		r := httptest.NewRequest("POST", "/default/orders", bytes.NewReader(body))
		r.Header.Set("ce-specversion", "1.0")
		r.Header.Set("ce-id", "abc")
		r.Header.Set("ce-source", "/shop")
		r.Header.Set("ce-type", "com.example.order.created")
		r.Header.Set("content-type", "application/json")
		w := httptest.NewRecorder()
		in.ServeHTTP(w, r)
		if w.Code != 202 {
			b.Fatal(w.Code)
		}
	}
}

// discardBus accepts and forgets messages (benchmarks must not grow memory).
type discardBus struct{ *recordingBus }

func (discardBus) Send(context.Context, *bus.Message) error { return nil }
