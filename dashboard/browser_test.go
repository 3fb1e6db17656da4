package dashboard

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	clocktesting "k8s.io/utils/clock/testing"

	"github.com/tide-run/tide/dashboard/dashboardtest"
)

// TestBrowserShowsTheEffect drives the dashboard in headless Chromium. The platform is faked here: a scripted
// MetricsSource plays a compressed food-delivery day and a small fake answers the control-plane API's list and watch
// paths (the lead's full-platform test drives the same page, with dashboardtest, while the real demo runs). The page
// must load without console errors, list the order service as Ready, show its instances rising with the meal peaks
// in the chart's DOM, and keep updating from the stream without a reload.
func TestBrowserShowsTheEffect(t *testing.T) {
	dashboardtest.Chromium(t) // skip (or fail in CI) before building anything

	c := clocktesting.NewFakeClock(t0)
	day := newScriptedDay(c, 240*time.Second)
	api := foodDeliveryAPI()
	logs := LogsFunc(func(_ context.Context, ns, svc string, limit int) ([]LogLine, error) {
		var out []LogLine
		for i := 0; i < 12; i++ {
			out = append(out, LogLine{Time: c.Now().Add(time.Duration(i-12) * time.Second), Revision: "order-00001",
				Instance: strconv.Itoa(1 + i%3), Stream: "stdout",
				Text: fmt.Sprintf(`order %d generated {"orderStatus":"completed","chargeMoney":"30.0"}`, 123214342+i)})
		}
		out = append(out, LogLine{Time: c.Now(), Revision: "order-00001", Instance: "2", Stream: "stderr",
			Text: `rejecting order: field orderId: empty`})
		return out, nil
	})

	// One origin, as in tide: the API paths and the dashboard at "/" on the same listener.
	mux := http.NewServeMux()
	mux.Handle("/apis/", api)
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	d, err := New(Options{API: srv.URL, Metrics: day, Logs: logs, Clock: c, Logger: quietLogger()})
	if err != nil {
		t.Fatal(err)
	}
	mux.Handle("/", d)
	if err := d.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { // runs before srv.Close: ends the page's stream and the API watches
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = d.Shutdown(ctx)
	})
	poll(t, "the dashboard to list the five fake resources", 10*time.Second, func() bool {
		rs, _ := d.resources.Resources(context.Background())
		return len(rs) == 5
	})
	// Most of the four-minute day: the breakfast and lunch peaks and the rise to dinner are in the history.
	stepSamples(t, d, c, 180)

	p := dashboardtest.Open(t, srv.URL+"/")
	p.Eval(`window.__tideNoReload = true`, nil)
	p.WaitServiceReady("default", "order", 10*time.Second)
	ready := p.WaitRise("default", "order", 3, 10*time.Second)
	if len(ready) < 150 {
		t.Fatalf("the instance chart has %d points, want the ~180 samples of history", len(ready))
	}
	if ready[0] != 0 {
		t.Errorf("ready instances start at %v, want 0 before the breakfast peak", ready[0])
	}
	if rates := p.Series("default", "order", "rate"); len(rates) != len(ready) {
		t.Errorf("rate series has %d points, instances %d; both axes must cover the same samples", len(rates), len(ready))
	}

	// Hovering the chart shows the values under the pointer.
	var tip string
	p.Eval(fmt.Sprintf(`(() => { const r = document.querySelector('%s svg rect[fill="transparent"]');
		const b = r.getBoundingClientRect();
		r.dispatchEvent(new MouseEvent('mousemove', {clientX: b.left + b.width / 2, clientY: b.top + 10, bubbles: true}));
		const text = document.getElementById('tooltip').textContent;
		r.dispatchEvent(new MouseEvent('mouseleave'));
		return text; })()`, dashboardtest.ServiceCard("default", "order")), &tip)
	if !strings.Contains(tip, "ready instances: ") || !strings.Contains(tip, "requests / s: ") {
		t.Errorf("chart tooltip = %q", tip)
	}

	// Live: more samples arrive over the stream and the chart grows, without a reload.
	stepSamples(t, d, c, 5)
	card := dashboardtest.ServiceCard("default", "order")
	p.Run(10*time.Second, chromedp.Poll(fmt.Sprintf(
		`document.querySelector('%s path[data-series="ready"]').getAttribute('data-values').split(',').length >= %d && window.__tideNoReload === true`,
		card, len(ready)+5), nil))

	// Logs of the selected service, a topic and a delivery row are on the page too.
	var logText, triggerRow string
	p.Run(10*time.Second,
		chromedp.Poll(`document.querySelectorAll('#log-lines div').length >= 13`, nil),
		chromedp.Text(`#log-lines`, &logText),
		chromedp.Text(`#deliveries tr[data-kind="Trigger"][data-name="order-trigger"]`, &triggerRow),
		chromedp.WaitVisible(`.topic-card[data-topic="orders"] path[data-series="produced"]`),
	)
	if !strings.Contains(logText, "order 123214342 generated") || !strings.Contains(triggerRow, "Ready") {
		t.Errorf("logs %q / trigger row %q", truncate(logText, 200), triggerRow)
	}
	var topicCards int
	p.Eval(`document.querySelectorAll('.topic-card').length`, &topicCards)
	if topicCards != 2 {
		t.Errorf("%d topic cards, want 2 (the %%RETRY%% system topic hidden)", topicCards)
	}
	if lag := p.SeriesAt(`.topic-card[data-topic="tide-broker-default"]`, "lag:tide-trigger-order-trigger"); len(lag) < 150 {
		t.Errorf("lag series has %d points", len(lag))
	}

	p.Screenshot("dashboard.png")
	p.NoProblems()
}

// TestBrowserShowsFailures: a Service that is not Ready shows as such with its reason, and a failing metrics source
// shows as a banner instead of blank charts passing for "no load". The platform is faked as above.
func TestBrowserShowsFailures(t *testing.T) {
	dashboardtest.Chromium(t)

	api := newFakeAPI()
	api.add("/apis/serving.knative.dev/v1/services", knObject("serving.knative.dev/v1", "Service", "order", "False",
		"RevisionFailed", `Revision "order-00001" failed with message: exit status 1.`, nil))
	api.add("/apis/serving.knative.dev/v1/revisions", knObject("serving.knative.dev/v1", "Revision", "order-00001", "False",
		"ExitCode1", "Container failed with: panic: ORDER_DB not set", func(o map[string]any) {
			o["metadata"].(map[string]any)["labels"] = map[string]any{"serving.knative.dev/service": "order"}
		}))
	api.add("/apis/eventing.knative.dev/v1/triggers", knObject("eventing.knative.dev/v1", "Trigger", "order-trigger", "Unknown",
		"SubscriberNotReady", "subscriber Service/order is not ready", nil))
	mux := http.NewServeMux()
	mux.Handle("/apis/", api)
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	c := clocktesting.NewFakeClock(t0)
	failing := MetricsFunc(func(context.Context) (Snapshot, error) {
		return Snapshot{}, fmt.Errorf("serving: %w", context.DeadlineExceeded)
	})
	d, err := New(Options{API: srv.URL, Metrics: failing, Clock: c, Logger: quietLogger()})
	if err != nil {
		t.Fatal(err)
	}
	mux.Handle("/", d)
	if err := d.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = d.Shutdown(ctx)
	})
	poll(t, "the dashboard to list the three fake resources", 10*time.Second, func() bool {
		rs, _ := d.resources.Resources(context.Background())
		return len(rs) == 3
	})
	stepSamples(t, d, c, 1)

	p := dashboardtest.Open(t, srv.URL+"/")
	var banner, row, card, chart string
	p.Run(10*time.Second,
		chromedp.WaitVisible(`#banner`),
		chromedp.Text(`#banner`, &banner),
		chromedp.WaitVisible(`#resource-groups tr[data-kind="Service"][data-name="order"]`),
		chromedp.Text(`#resource-groups tr[data-kind="Service"][data-name="order"]`, &row),
		chromedp.Text(dashboardtest.ServiceCard("default", "order")+` .card-head .badge`, &card),
		chromedp.Text(dashboardtest.ServiceCard("default", "order")+` .chart`, &chart),
	)
	if !strings.Contains(banner, "Metrics unavailable") || !strings.Contains(banner, "deadline exceeded") {
		t.Errorf("banner = %q", banner)
	}
	if !strings.Contains(row, "Not ready") || !strings.Contains(row, "RevisionFailed") || !strings.Contains(row, "exit status 1") {
		t.Errorf("service row = %q; want Not ready with the reason and message", row)
	}
	if card != "Not ready" || !strings.Contains(chart, "waiting for samples") {
		t.Errorf("card badge %q, chart text %q", card, chart)
	}
	if v := p.Series("default", "order", "ready"); len(v) != 0 {
		t.Errorf("with metrics failing the chart shows %d points; it must not draw made-up zeros", len(v))
	}
	p.Screenshot("dashboard-failing.png")
	p.NoProblems()
}
