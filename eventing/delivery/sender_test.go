package delivery

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	cloudevents "github.com/cloudevents/sdk-go/v2"
	clocktesting "k8s.io/utils/clock/testing"
	eventingduckv1 "knative.dev/eventing/pkg/apis/duck/v1"
)

func testEvent() cloudevents.Event {
	ev := cloudevents.NewEvent()
	ev.SetID("id-1")
	ev.SetSource("/test")
	ev.SetType("dev.tide.test")
	ev.SetExtension("myext", "v")
	_ = ev.SetData("application/json", map[string]string{"k": "v"})
	return ev
}

// recorder is a real HTTP server that answers with a scripted sequence of status codes (the last repeats).
type recorder struct {
	mu       sync.Mutex
	codes    []int
	reqs     []*http.Request
	bodies   [][]byte
	respBody string
	srv      *httptest.Server
}

func newRecorder(t *testing.T, codes ...int) *recorder {
	r := &recorder{codes: codes}
	r.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		b, _ := io.ReadAll(req.Body)
		r.mu.Lock()
		i := len(r.reqs)
		r.reqs = append(r.reqs, req)
		r.bodies = append(r.bodies, b)
		code := r.codes[len(r.codes)-1]
		if i < len(r.codes) {
			code = r.codes[i]
		}
		body := r.respBody
		r.mu.Unlock()
		w.WriteHeader(code)
		_, _ = io.WriteString(w, body)
	}))
	t.Cleanup(r.srv.Close)
	return r
}

func (r *recorder) url() *url.URL { u, _ := url.Parse(r.srv.URL); return u }
func (r *recorder) count() int    { r.mu.Lock(); defer r.mu.Unlock(); return len(r.reqs) }

func TestStatusCodeClasses(t *testing.T) {
	cases := []struct {
		code     int
		attempts int
		outcome  Outcome
	}{
		{200, 1, Delivered}, {202, 1, Delivered}, {204, 1, Delivered},
		{400, 1, Failed}, {401, 1, Failed}, {403, 1, Failed}, {410, 1, Failed}, {301, 1, Failed},
		{404, 3, Failed}, {408, 3, Failed}, {409, 3, Failed}, {429, 3, Failed},
		{500, 3, Failed}, {503, 3, Failed}, {599, 3, Failed}, {600, 3, Failed},
	}
	s := New(Options{})
	for _, c := range cases {
		r := newRecorder(t, c.code)
		res := s.Send(context.Background(), r.url(), testEvent(), Spec{Retry: 2})
		if res.Outcome != c.outcome || res.Attempts != c.attempts || r.count() != c.attempts || res.StatusCode != c.code {
			t.Errorf("code %d: outcome %v attempts %d (server saw %d) status %d, want %v %d", c.code, res.Outcome, res.Attempts, r.count(), res.StatusCode, c.outcome, c.attempts)
		}
		if c.outcome == Failed {
			want := ErrRetriesExhausted
			if c.attempts == 1 {
				want = ErrNotRetryable
			}
			if !errors.Is(res.Err, want) {
				t.Errorf("code %d: err %v, want %v", c.code, res.Err, want)
			}
		}
	}
}

func TestRedirectIsNotFollowed(t *testing.T) {
	var gets atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodGet {
			gets.Add(1)
			w.WriteHeader(200)
			return
		}
		http.Redirect(w, r, "/elsewhere", http.StatusFound)
	}))
	defer srv.Close()
	u, _ := url.Parse(srv.URL)
	// The default client, and a client of the caller's without a redirect policy (as the eventing runtime passes,
	// wrapping the transport for in-process Broker deliveries): neither follows.
	for _, c := range []*http.Client{nil, {Transport: NewTransport()}} {
		res := New(Options{Client: c}).Send(context.Background(), u, testEvent(), Spec{Retry: 2})
		if res.Outcome != Failed || res.StatusCode != http.StatusFound || res.Attempts != 1 || gets.Load() != 0 {
			t.Fatalf("client %v: %+v, GETs %d", c, res, gets.Load())
		}
	}
}

func TestBinaryAndStructured(t *testing.T) {
	r := newRecorder(t, 202)
	s := New(Options{})
	if res := s.Send(context.Background(), r.url(), testEvent(), Spec{}); res.Outcome != Delivered {
		t.Fatal(res.Err)
	}
	if res := s.Send(context.Background(), r.url(), testEvent(), Spec{Format: FormatJSON, PreferReply: true}); res.Outcome != Delivered {
		t.Fatal(res.Err)
	}
	bin := r.reqs[0]
	if bin.Header.Get("Ce-Id") != "id-1" || bin.Header.Get("Ce-Myext") != "v" || bin.Header.Get("Content-Type") != "application/json" {
		t.Errorf("binary headers %v", bin.Header)
	}
	if bin.Header.Get("Prefer") != "" {
		t.Error("Prefer sent without PreferReply")
	}
	if string(r.bodies[0]) != `{"k":"v"}` {
		t.Errorf("binary body %q", r.bodies[0])
	}
	st := r.reqs[1]
	if st.Header.Get("Content-Type") != "application/cloudevents+json" || st.Header.Get("Prefer") != "reply" {
		t.Errorf("structured headers %v", st.Header)
	}
	var got cloudevents.Event
	if err := json.Unmarshal(r.bodies[1], &got); err != nil || got.ID() != "id-1" || got.Extensions()["myext"] != "v" {
		t.Errorf("structured body %q: %v", r.bodies[1], err)
	}
}

// TestReplyBodies pins what a 2xx answer's body means for a request sent with Prefer: reply (Knative's broker
// semantics): empty is delivered without a reply; a valid binary or structured CloudEvent is delivered with the
// reply; anything else is a failed attempt (retried like a 502, then dead-lettered with knativeerrorcode 502 and the
// body in knativeerrordata); a 202 is never a reply, whatever it carries. Without Prefer: reply (a source sending to
// its sink) every 2xx is delivered and the body is ignored.
func TestReplyBodies(t *testing.T) {
	reply := testEvent()
	reply.SetID("reply-1")
	structured, _ := json.Marshal(reply)
	binaryHeaders := map[string]string{"Ce-Id": "reply-2", "Ce-Specversion": "1.0", "Ce-Source": "/r", "Ce-Type": "t",
		"Content-Type": "application/json"}
	cases := []struct {
		name    string
		status  int
		header  map[string]string
		body    string
		reply   string // expected reply id; "" for none
		bad     bool   // a bad reply: every attempt fails, the event is dead-lettered
		noReply bool   // also checked without Prefer: reply (always delivered, no reply)
	}{
		{name: "empty 200", status: 200},
		{name: "empty 200 with text content type", status: 200, header: map[string]string{"Content-Type": "text/plain"}},
		{name: "empty 204", status: 204},
		{name: "binary event, no data", status: 200, header: map[string]string{"Ce-Id": "reply-3", "Ce-Specversion": "1.0", "Ce-Source": "/r", "Ce-Type": "t"}, reply: "reply-3"},
		{name: "binary event with data", status: 200, header: binaryHeaders, body: `{"a":1}`, reply: "reply-2"},
		{name: "structured event", status: 200, header: map[string]string{"Content-Type": "application/cloudevents+json"}, body: string(structured), reply: "reply-1"},
		{name: "structured event 0.3", status: 200, header: map[string]string{"Content-Type": "application/cloudevents+json; charset=utf-8"},
			body: `{"specversion":"0.3","id":"reply-4","source":"/s","type":"t"}`, reply: "reply-4"},
		{name: "structured event on 201", status: 201, header: map[string]string{"Content-Type": "application/cloudevents+json"}, body: string(structured), reply: "reply-1"},
		{name: "garbage", status: 200, header: map[string]string{"Content-Type": "text/plain"}, body: "plain text, not an event", bad: true},
		{name: "garbage without content type", status: 200, body: "\x00\x01binary", bad: true},
		{name: "JSON that is not a CloudEvent", status: 200, header: map[string]string{"Content-Type": "application/json"}, body: `{"orderId":42,"status":"ok"}`, bad: true},
		{name: "structured content type, not an event", status: 200, header: map[string]string{"Content-Type": "application/cloudevents+json"}, body: `{"orderId":42}`, bad: true},
		{name: "structured content type, broken JSON", status: 200, header: map[string]string{"Content-Type": "application/cloudevents+json"}, body: `{"specversion":"1.0",`, bad: true},
		{name: "binary headers, missing id", status: 200, header: map[string]string{"Ce-Specversion": "1.0", "Ce-Source": "/r", "Ce-Type": "t"}, body: "x", bad: true},
		{name: "batch is not a reply", status: 200, header: map[string]string{"Content-Type": "application/cloudevents-batch+json"}, body: "[" + string(structured) + "]", bad: true},
		{name: "garbage on 201", status: 201, header: map[string]string{"Content-Type": "application/json"}, body: `{"created":true}`, bad: true},
		{name: "202 with a structured event", status: 202, header: map[string]string{"Content-Type": "application/cloudevents+json"}, body: string(structured)},
		{name: "202 with a binary event", status: 202, header: binaryHeaders, body: `{"a":1}`},
		{name: "202 with garbage", status: 202, header: map[string]string{"Content-Type": "text/plain"}, body: "accepted, thanks"},
	}
	s := New(Options{})
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var calls atomic.Int32
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
				calls.Add(1)
				if req.Header.Get("Prefer") != "reply" {
					t.Errorf("request without Prefer: reply")
				}
				for k, v := range c.header {
					w.Header().Set(k, v)
				}
				w.WriteHeader(c.status)
				_, _ = io.WriteString(w, c.body)
			}))
			defer srv.Close()
			dls := newRecorder(t, 202)
			u, _ := url.Parse(srv.URL)
			res := s.Send(context.Background(), u, testEvent(), Spec{Retry: 2, PreferReply: true, DeadLetter: dls.url()})
			if res.StatusCode != c.status {
				t.Errorf("status %d, want %d", res.StatusCode, c.status)
			}
			if c.bad {
				if res.Outcome != DeadLettered || res.Attempts != 3 || calls.Load() != 3 || res.BadReplies != 3 ||
					!errors.Is(res.Err, ErrBadReply) || !errors.Is(res.Err, ErrRetriesExhausted) || res.Reply != nil {
					t.Fatalf("bad reply: %+v, server saw %d", res, calls.Load())
				}
				h := dls.reqs[0].Header
				data, _ := base64.StdEncoding.DecodeString(h.Get("Ce-Knativeerrordata"))
				if h.Get("Ce-Knativeerrorcode") != "502" || h.Get("Ce-Knativeerrordest") != u.String() || string(data) != c.body ||
					h.Get("Ce-Id") != "id-1" || h.Get("Prefer") != "" {
					t.Errorf("dead-letter headers %v (data %q)", h, data)
				}
				return
			}
			if res.Outcome != Delivered || res.Attempts != 1 || res.BadReplies != 0 || res.Err != nil || dls.count() != 0 {
				t.Fatalf("%+v", res)
			}
			got := ""
			if res.Reply != nil {
				got = res.Reply.ID()
				if err := res.Reply.Validate(); err != nil {
					t.Errorf("reply invalid: %v", err)
				}
			}
			if got != c.reply {
				t.Errorf("reply %q, want %q", got, c.reply)
			}
		})
	}

	// Without Prefer: reply (a source delivering to its sink) the body is never looked at: every 2xx is delivered.
	for _, c := range cases {
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
			for k, v := range c.header {
				w.Header().Set(k, v)
			}
			w.WriteHeader(c.status)
			_, _ = io.WriteString(w, c.body)
		}))
		u, _ := url.Parse(srv.URL)
		res := s.Send(context.Background(), u, testEvent(), Spec{Retry: 2})
		srv.Close()
		if res.Outcome != Delivered || res.Attempts != 1 || res.Reply != nil || res.BadReplies != 0 {
			t.Errorf("%s without Prefer: reply: %+v", c.name, res)
		}
	}
}

// TestBadReplyThenGoodAnswer: a bad reply is a failed attempt like a 502, so a later good answer delivers the event.
func TestBadReplyThenGoodAnswer(t *testing.T) {
	var calls atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		if calls.Add(1) == 1 {
			w.WriteHeader(200)
			_, _ = io.WriteString(w, "oops")
			return
		}
		w.WriteHeader(200)
	}))
	defer srv.Close()
	u, _ := url.Parse(srv.URL)
	res := New(Options{}).Send(context.Background(), u, testEvent(), Spec{Retry: 3, PreferReply: true})
	if res.Outcome != Delivered || res.Attempts != 2 || res.BadReplies != 1 || res.Reply != nil || res.Err != nil {
		t.Fatalf("%+v", res)
	}
	// Without a dead-letter sink a persistent bad reply leaves the event Failed (retryable: the caller keeps it).
	srv2 := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		_, _ = io.WriteString(w, "still not an event")
	}))
	defer srv2.Close()
	u2, _ := url.Parse(srv2.URL)
	res = New(Options{}).Send(context.Background(), u2, testEvent(), Spec{Retry: 1, PreferReply: true})
	if res.Outcome != Failed || res.Attempts != 2 || res.BadReplies != 2 || !errors.Is(res.Err, ErrBadReply) || errors.Is(res.Err, ErrNotRetryable) {
		t.Fatalf("%+v", res)
	}
}

func TestDeadLetter(t *testing.T) {
	target := newRecorder(t, 500)
	target.respBody = strings.Repeat("x", 5000)
	dls := newRecorder(t, 202)
	s := New(Options{})
	res := s.Send(context.Background(), target.url(), testEvent(), Spec{Retry: 1, DeadLetter: dls.url()})
	if res.Outcome != DeadLettered || res.Attempts != 2 || res.StatusCode != 500 || !errors.Is(res.Err, ErrRetriesExhausted) {
		t.Fatalf("%+v", res)
	}
	h := dls.reqs[0].Header
	if h.Get("Ce-Knativeerrordest") != target.url().String() || h.Get("Ce-Knativeerrorcode") != "500" {
		t.Errorf("dead-letter headers %v", h)
	}
	data := h.Get("Ce-Knativeerrordata")
	if len(data) > MaxErrorData || len(data) < MaxErrorData-4 {
		t.Errorf("knativeerrordata length %d", len(data))
	}
	if raw, err := base64.StdEncoding.DecodeString(data); err != nil || strings.Trim(string(raw), "x") != "" {
		t.Errorf("knativeerrordata not base64 of the body: %v", err)
	}
	if h.Get("Ce-Id") != "id-1" || string(dls.bodies[0]) != `{"k":"v"}` {
		t.Error("dead-lettered event changed")
	}

	// A non-retryable answer goes to the dead-letter sink at once; a failing sink leaves the event Failed.
	target2 := newRecorder(t, 400)
	badDLS := newRecorder(t, 500)
	res = s.Send(context.Background(), target2.url(), testEvent(), Spec{Retry: 5, DeadLetter: badDLS.url()})
	if res.Outcome != Failed || target2.count() != 1 || badDLS.count() != 6 || !errors.Is(res.Err, ErrDeadLetterFailed) || !errors.Is(res.Err, ErrNotRetryable) {
		t.Fatalf("%+v target %d dls %d", res, target2.count(), badDLS.count())
	}
}

func TestTransportErrorRetried(t *testing.T) {
	r := newRecorder(t, 202)
	u := r.url()
	r.srv.Close() // connection refused from now on
	res := New(Options{}).Send(context.Background(), u, testEvent(), Spec{Retry: 2})
	if res.Outcome != Failed || res.Attempts != 3 || res.StatusCode != 0 || !errors.Is(res.Err, ErrRetriesExhausted) {
		t.Fatalf("%+v", res)
	}
}

func TestPerAttemptTimeout(t *testing.T) {
	var calls atomic.Int32
	release := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		if calls.Add(1) == 1 {
			select { // hang the first attempt until the client gives up
			case <-req.Context().Done():
			case <-release:
			}
			return
		}
		w.WriteHeader(202)
	}))
	defer srv.Close()
	defer close(release)
	u, _ := url.Parse(srv.URL)
	res := New(Options{}).Send(context.Background(), u, testEvent(), Spec{Retry: 1, Timeout: 50 * time.Millisecond})
	if res.Outcome != Delivered || res.Attempts != 2 {
		t.Fatalf("%+v", res)
	}
}

// TestBackoffTiming drives the waits with a fake clock: each retry must not happen before its backoff has elapsed
// and must happen once it has.
func TestBackoffTiming(t *testing.T) {
	for _, c := range []struct {
		policy BackoffPolicy
		waits  []time.Duration // before retries 1..n
	}{
		{BackoffLinear, []time.Duration{0, time.Second, 2 * time.Second, 3 * time.Second}},
		{BackoffExponential, []time.Duration{time.Second, 2 * time.Second, 4 * time.Second, 8 * time.Second}},
	} {
		t.Run(string(c.policy), func(t *testing.T) {
			r := newRecorder(t, 503)
			clk := clocktesting.NewFakeClock(time.Unix(0, 0))
			s := New(Options{Clock: clk})
			done := make(chan Result, 1)
			go func() {
				done <- s.Send(context.Background(), r.url(), testEvent(), Spec{Retry: int32(len(c.waits)), BackoffPolicy: c.policy, BackoffDelay: time.Second})
			}()
			waitFor(t, func() bool { return r.count() >= 1 })
			for i, w := range c.waits {
				if w > 0 {
					waitFor(t, clk.HasWaiters)
					clk.Step(w - time.Millisecond)
					if !clk.HasWaiters() || r.count() != i+1 {
						t.Fatalf("retry %d happened before its %v backoff", i+1, w)
					}
					clk.Step(time.Millisecond)
				}
				waitFor(t, func() bool { return r.count() >= i+2 })
			}
			res := <-done
			if res.Attempts != len(c.waits)+1 || res.Outcome != Failed {
				t.Fatalf("%+v", res)
			}
		})
	}
}

func TestContextCancelStopsBackoff(t *testing.T) {
	r := newRecorder(t, 503)
	clk := clocktesting.NewFakeClock(time.Unix(0, 0))
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan Result, 1)
	go func() {
		done <- New(Options{Clock: clk}).Send(ctx, r.url(), testEvent(), Spec{Retry: 3, BackoffDelay: time.Hour, DeadLetter: r.url()})
	}()
	waitFor(t, clk.HasWaiters)
	cancel()
	res := <-done
	if res.Outcome != Failed || !errors.Is(res.Err, context.Canceled) || r.count() != 1 {
		t.Fatalf("%+v (server saw %d)", res, r.count())
	}
}

func TestFromDeliverySpec(t *testing.T) {
	dls, _ := url.Parse("http://dls.example/")
	retry := int32(4)
	lin := eventingduckv1.BackoffPolicyLinear
	delay, timeout := "PT0.5S", "PT2S"
	jsonFmt := eventingduckv1.DeliveryFormatJson
	s, err := FromDeliverySpec(&eventingduckv1.DeliverySpec{Retry: &retry, BackoffPolicy: &lin, BackoffDelay: &delay, Timeout: &timeout, Format: &jsonFmt}, dls)
	if err != nil {
		t.Fatal(err)
	}
	want := Spec{Retry: 4, BackoffPolicy: BackoffLinear, BackoffDelay: 500 * time.Millisecond, Timeout: 2 * time.Second, DeadLetter: dls, Format: FormatJSON}
	if s != want {
		t.Fatalf("got %+v want %+v", s, want)
	}
	if s, err := FromDeliverySpec(nil, nil); err != nil || s.Retry != 0 || s.Format != FormatBinary {
		t.Fatalf("nil spec: %+v %v", s, err)
	}
	bad := "5 seconds"
	neg := int32(-1)
	badPolicy := eventingduckv1.BackoffPolicyType("random")
	for name, ds := range map[string]*eventingduckv1.DeliverySpec{
		"backoffDelay":  {BackoffDelay: &bad},
		"timeout":       {Timeout: &bad},
		"retry":         {Retry: &neg},
		"backoffPolicy": {BackoffPolicy: &badPolicy},
	} {
		if _, err := FromDeliverySpec(ds, nil); !errors.Is(err, ErrInvalidSpec) || !strings.Contains(err.Error(), name) {
			t.Errorf("%s: %v", name, err)
		}
	}
}

func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not reached within 10s")
		}
		time.Sleep(time.Millisecond)
	}
}
