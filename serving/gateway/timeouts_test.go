package gateway

import (
	"context"
	"errors"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	clocktesting "k8s.io/utils/clock/testing"
)

// TestResponseStartAndIdleTimeouts covers responseStartTimeoutSeconds (504 when the response has not started in
// time) and idleTimeoutSeconds (a response that goes quiet for longer is cut) through real processes, with both
// timers on a fake clock: the program's delays are a minute of real time, so the only way a response ends within
// the test's deadline is the timer the test fires by stepping the clock. Nothing depends on how fast the machine is.
func TestResponseStartAndIdleTimeouts(t *testing.T) {
	fc := clocktesting.NewFakeClock(time.Now())
	gw := New(Options{TimeoutClock: fc})
	srv := serve(t, gw)
	p, key := deploy(t, gw, revSpec{name: "svc-00001"})
	gw.SetRevision(key, RevisionConfig{Timeout: 10 * time.Minute, ResponseStartTimeout: time.Second, IdleTimeout: time.Second})
	if err := gw.SetRoute("default", "svc", []Target{{Revision: "svc-00001", Percent: 100}}); err != nil {
		t.Fatal(err)
	}
	p.SetScale(1)
	waitReady(t, p, 1)
	// The clock never moves on its own: quick responses and a steady stream are never cut.
	if c, _ := get(t, http.DefaultClient, srv, host, "/sleep?ms=100", nil); c != 200 {
		t.Fatalf("quick response: %d", c)
	}
	if c, body := get(t, http.DefaultClient, srv, host, "/stream?chunks=3&gapms=100", nil); c != 200 || strings.Count(body, "chunk") != 3 {
		t.Fatalf("steady stream: %d %q", c, body)
	}

	// A response that has not started: the response-start timer fires, 504.
	type result struct {
		code int
		body string
	}
	res := make(chan result, 1)
	go func() {
		c, body := get(t, http.DefaultClient, srv, host, "/sleep?ms=60000", nil)
		res <- result{c, body}
	}()
	r := stepUntil(t, fc, res)
	if r.code != http.StatusGatewayTimeout || !strings.Contains(r.body, "response start") {
		t.Fatalf("slow start: %d %q, want 504 response start timeout", r.code, r.body)
	}

	// A stream that pauses: cut after its first chunk once the idle timer fires.
	req, _ := http.NewRequest(http.MethodGet, srv.URL+"/stream?chunks=3&gapms=60000", nil)
	req.Host = host
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	type read struct {
		b   []byte
		err error
	}
	done := make(chan read, 1)
	go func() {
		b, err := io.ReadAll(resp.Body)
		done <- read{b, err}
	}()
	got := stepUntil(t, fc, done)
	if got.err == nil || strings.Count(string(got.b), "chunk") != 1 {
		t.Fatalf("idle stream: read %q, err %v; want it cut after one chunk", got.b, got.err)
	}
}

// stepUntil advances the fake clock by a second at a time until ch delivers (a timer armed after a step is fired by
// the next one), failing after a real-time deadline far beyond any scheduling delay but well short of the program's
// minute-long delays.
func stepUntil[T any](t *testing.T, fc *clocktesting.FakeClock, ch <-chan T) T {
	t.Helper()
	deadline := time.After(30 * time.Second)
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case v := <-ch:
			return v
		case <-tick.C:
			if fc.HasWaiters() {
				fc.Step(time.Second)
			}
		case <-deadline:
			t.Fatal("no answer within 30s: the timer did not end the request")
		}
	}
}

// TestTimeoutsResetOnProgress: the idle timer starts with the response headers and restarts at every chunk, so only
// a gap longer than the idle timeout cuts; the response-start timer stops once headers arrive.
func TestTimeoutsResetOnProgress(t *testing.T) {
	fc := clocktesting.NewFakeClock(time.Unix(0, 0))
	ctx, tm := newTimeouts(context.Background(), fc, time.Second, time.Second)
	defer tm.stop()
	fc.Step(900 * time.Millisecond)
	tm.headers() // the start timer stops here, 100 ms before it would fire
	fc.Step(900 * time.Millisecond)
	tm.progress()
	fc.Step(900 * time.Millisecond)
	tm.progress()
	fc.Step(900 * time.Millisecond)
	if ctx.Err() != nil {
		t.Fatalf("cut although no gap reached the idle timeout: %v", context.Cause(ctx))
	}
	fc.Step(200 * time.Millisecond)
	waitDone(t, ctx)
	if !errors.Is(context.Cause(ctx), errIdle) {
		t.Fatalf("cause %v, want the idle timeout", context.Cause(ctx))
	}

	ctx, tm = newTimeouts(context.Background(), fc, time.Second, time.Second)
	defer tm.stop()
	fc.Step(time.Second)
	waitDone(t, ctx)
	if !errors.Is(context.Cause(ctx), errResponseStart) {
		t.Fatalf("cause %v, want the response-start timeout", context.Cause(ctx))
	}
}

// waitDone waits for ctx to end: a fake clock may run timer functions on their own goroutine.
func waitDone(t *testing.T, ctx context.Context) {
	t.Helper()
	select {
	case <-ctx.Done():
	case <-time.After(10 * time.Second):
		t.Fatal("the timer did not fire")
	}
}
