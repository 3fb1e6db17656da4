package fooddelivery

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cloudevents/sdk-go/v2/binding"
	"github.com/cloudevents/sdk-go/v2/event"
	cehttp "github.com/cloudevents/sdk-go/v2/protocol/http"
	clocktesting "k8s.io/utils/clock/testing"
)

type testService struct {
	srv   *httptest.Server
	svc   *Service
	store *Store
}

func newTestService(t *testing.T, opts ServiceOptions) *testService {
	t.Helper()
	store := openTestStore(t, filepath.Join(t.TempDir(), "orders.db"))
	opts.Store = store
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.Instance == "" {
		opts.Instance = "test-instance"
	}
	svc, err := NewService(opts)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(svc)
	t.Cleanup(srv.Close)
	return &testService{srv: srv, svc: svc, store: store}
}

func orderEvent(id string, data string) event.Event {
	e := event.New()
	e.SetID(id)
	e.SetSource("/apis/v1/namespaces/default/rocketmqsources/orders#orders")
	e.SetType("dev.knative.rocketmq.event")
	e.SetTime(time.Unix(1_700_000_000, 123_000_000))
	if err := e.SetData("application/json", []byte(data)); err != nil {
		panic(err)
	}
	return e
}

// post sends e in binary or structured mode and returns the status and body.
func post(t *testing.T, url string, e event.Event, structured bool) (int, string) {
	t.Helper()
	ctx := binding.WithForceBinary(context.Background())
	if structured {
		ctx = binding.WithForceStructured(context.Background())
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := cehttp.WriteRequest(ctx, binding.ToMessage(&e), req); err != nil {
		t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func TestServiceStoresOrdersOnceInBothModes(t *testing.T) {
	ts := newTestService(t, ServiceOptions{})
	for i, structured := range []bool{false, true} {
		code, body := post(t, ts.srv.URL, orderEvent(fmt.Sprint("ev-", i), seedOrder[:len(seedOrder)-1]+`}`), structured)
		if i == 0 && code != http.StatusAccepted {
			t.Fatalf("binary order: %d %s", code, body)
		}
		if i == 1 && code != http.StatusAccepted {
			t.Fatalf("structured redelivery: %d %s", code, body)
		}
	}
	st := ts.svc.Stats()
	if st.Stored != 1 || st.Duplicates != 1 {
		t.Fatalf("stats = %+v, want 1 stored and 1 duplicate", st)
	}
	orders, err := ts.store.Orders(context.Background())
	if err != nil || len(orders) != 1 {
		t.Fatalf("orders = %+v, %v", orders, err)
	}
	o := orders[0]
	if o.OrderID != "123214342" || o.EventID != "ev-0" || o.Instance != "test-instance" ||
		!o.Born.Equal(time.Unix(1_700_000_000, 123_000_000)) || o.ChargeCents != 3000 {
		t.Fatalf("stored %+v", o)
	}
}

func TestServiceRejectsMalformedWith4xx(t *testing.T) {
	ts := newTestService(t, ServiceOptions{})
	bad := strings.Replace(seedOrder, `"30.0"`, `"lots"`, 1)
	code, body := post(t, ts.srv.URL, orderEvent("bad-1", bad), false)
	if code != http.StatusBadRequest || !strings.Contains(body, "order.chargeMoney") {
		t.Fatalf("malformed order: %d %q, want 400 naming order.chargeMoney", code, body)
	}
	// Not a CloudEvent at all.
	resp, err := http.Post(ts.srv.URL, "application/json", strings.NewReader(seedOrder))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusBadRequest {
		t.Fatalf("plain JSON without CloudEvent attributes: %d, want 400", resp.StatusCode)
	}
	// Wrong method and path are not 2xx either.
	resp, err = http.Get(ts.srv.URL + "/")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusMethodNotAllowed {
		t.Fatalf("GET /: %d", resp.StatusCode)
	}
	c, err := ts.store.Counts(context.Background())
	if err != nil || c.Orders != 0 {
		t.Fatalf("counts after rejects = %+v, %v; nothing may be stored", c, err)
	}
	if st := ts.svc.Stats(); st.Rejected != 2 {
		t.Fatalf("rejected = %d, want 2", st.Rejected)
	}
}

func TestServiceRecordsDeadLetters(t *testing.T) {
	ts := newTestService(t, ServiceOptions{})
	e := orderEvent("bad-7", strings.Replace(seedOrder, `"30.0"`, `"lots"`, 1))
	e.SetExtension("knativeerrorcode", "400")
	e.SetExtension("knativeerrordest", "http://order-service.default.svc/")
	e.SetExtension("knativeerrordata", "b3JkZXIuY2hhcmdlTW9uZXk=")
	for i := 0; i < 2; i++ { // a redelivered dead letter is recorded once
		if code, body := post(t, ts.srv.URL+"/dead-letter", e, i == 1); code != http.StatusAccepted {
			t.Fatalf("dead letter: %d %s", code, body)
		}
	}
	dls, err := ts.store.DeadLetters(context.Background())
	if err != nil || len(dls) != 1 {
		t.Fatalf("dead letters = %+v, %v", dls, err)
	}
	if d := dls[0]; d.OrderID != "123214342" || d.ErrorCode != "400" || !strings.HasSuffix(d.EventID, "#bad-7") {
		t.Fatalf("dead letter = %+v", d)
	}
}

// With simulated work the handler holds each order for Work; concurrent orders overlap. The fake clock makes the
// overlap exact: all three wait on the clock until it is stepped.
func TestServiceSimulatedWorkHoldsOrdersConcurrently(t *testing.T) {
	fc := clocktesting.NewFakeClock(time.Unix(1_700_000_000, 0))
	ts := newTestService(t, ServiceOptions{Work: 80 * time.Millisecond, Clock: fc})
	var wg sync.WaitGroup
	codes := make(chan int, 3)
	for i := 0; i < 3; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			body := strings.Replace(seedOrder, "123214342", fmt.Sprint("w-", i), 1)
			code, _ := post(t, ts.srv.URL, orderEvent(fmt.Sprint("w-", i), body), false)
			codes <- code
		}(i)
	}
	deadline := time.Now().Add(10 * time.Second)
	for ts.svc.Stats().InFlight != 3 {
		if time.Now().After(deadline) {
			t.Fatalf("in flight = %d, want 3 waiting on the work timer", ts.svc.Stats().InFlight)
		}
		time.Sleep(time.Millisecond)
	}
	if c, _ := ts.store.Counts(context.Background()); c.Orders != 0 {
		t.Fatalf("orders stored before the work was done: %+v", c)
	}
	// InFlight counts a request before its handler registers the work timer, so one Step could fire before every
	// timer exists: keep stepping the fake clock until every request has finished, within a deadline.
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	for finished := false; !finished; {
		fc.Step(80 * time.Millisecond)
		select {
		case <-done:
			finished = true
		case <-time.After(5 * time.Millisecond):
			if time.Now().After(deadline) {
				t.Fatal("requests still waiting on the work timer after the clock moved past it")
			}
		}
	}
	close(codes)
	for code := range codes {
		if code != http.StatusAccepted {
			t.Fatalf("code %d", code)
		}
	}
	if st := ts.svc.Stats(); st.MaxInFlight != 3 || st.Stored != 3 {
		t.Fatalf("stats = %+v", st)
	}
}
