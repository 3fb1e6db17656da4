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
	res := New(Options{}).Send(context.Background(), u, testEvent(), Spec{Retry: 2})
	if res.Outcome != Failed || res.StatusCode != http.StatusFound || res.Attempts != 1 || gets.Load() != 0 {
		t.Fatalf("%+v, GETs %d", res, gets.Load())
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

func TestReply(t *testing.T) {
	reply := testEvent()
	reply.SetID("reply-1")
	b, _ := json.Marshal(reply)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		switch req.URL.Path {
		case "/structured":
			w.Header().Set("Content-Type", "application/cloudevents+json")
			w.WriteHeader(200)
			_, _ = w.Write(b)
		case "/binary":
			w.Header().Set("Ce-Id", "reply-2")
			w.Header().Set("Ce-Specversion", "1.0")
			w.Header().Set("Ce-Source", "/r")
			w.Header().Set("Ce-Type", "t")
			w.WriteHeader(200)
		case "/accepted": // a 202 is never a reply, even with event headers
			w.Header().Set("Content-Type", "application/cloudevents+json")
			w.WriteHeader(202)
			_, _ = w.Write(b)
		default:
			w.WriteHeader(200)
			_, _ = io.WriteString(w, "plain text, not an event")
		}
	}))
	defer srv.Close()
	s := New(Options{})
	for path, want := range map[string]string{"/structured": "reply-1", "/binary": "reply-2", "/accepted": "", "/plain": ""} {
		u, _ := url.Parse(srv.URL + path)
		res := s.Send(context.Background(), u, testEvent(), Spec{PreferReply: true})
		if res.Outcome != Delivered {
			t.Fatalf("%s: %v", path, res.Err)
		}
		got := ""
		if res.Reply != nil {
			got = res.Reply.ID()
		}
		if got != want {
			t.Errorf("%s: reply %q, want %q", path, got, want)
		}
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
