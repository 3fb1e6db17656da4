package dashboard

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/log"
	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"
	clocktesting "k8s.io/utils/clock/testing"
)

// findChromium returns Debian's chromium, skipping the test outside CI when it is missing and failing inside CI
// (where .ci/run installs it), so a broken CI image cannot silently skip the browser test.
func findChromium(t *testing.T) string {
	t.Helper()
	for _, p := range []string{os.Getenv("TIDE_CHROMIUM"), "/usr/bin/chromium"} {
		if p == "" {
			continue
		}
		if _, err := os.Stat(p); err == nil {
			return p
		}
	}
	for _, name := range []string{"chromium", "chromium-browser"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	if ci := os.Getenv("CI"); ci != "" && ci != "false" && ci != "0" {
		t.Fatal("chromium is not installed but CI is set: the dashboard browser test must run in CI (apt-get install -y chromium)")
	}
	t.Skip("skipping the headless-browser test: chromium is not installed (apt-get install -y chromium, or set TIDE_CHROMIUM); in CI this fails instead")
	return ""
}

// artifactDir is where the screenshot goes: $TIDE_ARTIFACTS when set (CI keeps it), else the test's temp dir.
func artifactDir(t *testing.T) string {
	if d := os.Getenv("TIDE_ARTIFACTS"); d != "" {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
		return d
	}
	return t.TempDir()
}

// TestBrowserShowsTheEffect drives the dashboard in headless Chromium. The platform is faked here: a scripted
// MetricsSource plays a compressed food-delivery day and a small fake answers the control-plane API's list and watch
// paths (the lead's full-platform test drives the same page while the real demo runs). The page must load without
// console errors, list the order service as Ready, show its instances rising with the meal peaks in the chart's DOM,
// and keep updating from the stream without a reload.
func TestBrowserShowsTheEffect(t *testing.T) {
	chromium := findChromium(t)

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
	defer srv.Close()
	d, err := New(Options{API: srv.URL, Metrics: day, Logs: logs, Clock: c, Logger: quietLogger()})
	if err != nil {
		t.Fatal(err)
	}
	mux.Handle("/", d)
	if err := d.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	defer func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = d.Shutdown(ctx)
	}()
	poll(t, "the dashboard to list the five fake resources", 10*time.Second, func() bool {
		rs, _ := d.resources.Resources(context.Background())
		return len(rs) == 5
	})
	// Most of the four-minute day: the breakfast and lunch peaks and the rise to dinner are in the history.
	stepSamples(t, d, c, 180)

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	actx, cancelAlloc := chromedp.NewExecAllocator(ctx,
		chromedp.ExecPath(chromium),
		chromedp.Headless, chromedp.NoSandbox, chromedp.DisableGPU, chromedp.NoFirstRun,
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("no-default-browser-check", true),
		chromedp.Flag("hide-scrollbars", true),
		chromedp.UserDataDir(profileDir(t)),
		chromedp.WindowSize(1440, 1000),
	)
	defer cancelAlloc()
	bctx, cancelBrowser := chromedp.NewContext(actx)
	defer cancelBrowser()
	defer func() { _ = chromedp.Cancel(bctx) }() // close the browser gracefully before the allocator kills it

	var mu sync.Mutex // guards problems, appended from chromedp's event goroutine
	var problems []string
	chromedp.ListenTarget(bctx, func(ev any) {
		mu.Lock()
		defer mu.Unlock()
		switch ev := ev.(type) {
		case *runtime.EventConsoleAPICalled:
			if ev.Type == runtime.APITypeError || ev.Type == runtime.APITypeAssert {
				var args []string
				for _, a := range ev.Args {
					args = append(args, string(a.Value)+a.Description)
				}
				problems = append(problems, "console."+string(ev.Type)+": "+strings.Join(args, " "))
			}
		case *runtime.EventExceptionThrown:
			problems = append(problems, "exception: "+ev.ExceptionDetails.Error())
		case *log.EventEntryAdded:
			if ev.Entry.Level == log.LevelError {
				problems = append(problems, "log: "+ev.Entry.Text+" "+ev.Entry.URL)
			}
		}
	})

	const card = `.service-card[data-service="default/order"]`
	var serviceBadge, cardBadge, valuesBefore string
	err = chromedp.Run(bctx,
		chromedp.Navigate(srv.URL+"/"),
		chromedp.Evaluate(`window.__tideNoReload = true`, nil),
		chromedp.WaitVisible(card+` path[data-series="ready"]`),
		chromedp.WaitVisible(`#resource-groups tr[data-kind="Service"][data-name="order"] .badge`),
		chromedp.Text(`#resource-groups tr[data-kind="Service"][data-name="order"] .badge`, &serviceBadge),
		chromedp.Text(card+` .card-head .badge`, &cardBadge),
		chromedp.AttributeValue(card+` path[data-series="ready"]`, "data-values", &valuesBefore, nil),
	)
	if err != nil {
		t.Fatalf("loading the dashboard: %v (console: %v)", err, problems)
	}
	if serviceBadge != "Ready" || cardBadge != "Ready" {
		t.Errorf("order service shows %q in the resource table and %q on its card, want Ready", serviceBadge, cardBadge)
	}
	ready := parseValues(t, valuesBefore)
	if len(ready) < 100 {
		t.Fatalf("the instance chart has %d points, want the ~180 samples of history", len(ready))
	}
	peak := 0.0
	for _, v := range ready {
		peak = max(peak, v)
	}
	if ready[0] != 0 || peak < 3 {
		t.Errorf("ready instances start at %v and peak at %v; want a rise from 0 to several instances at the meal peaks", ready[0], peak)
	}
	var rateValues string
	if err := chromedp.Run(bctx, chromedp.AttributeValue(card+` path[data-series="rate"]`, "data-values", &rateValues, nil)); err != nil {
		t.Fatal(err)
	}
	if rates := parseValues(t, rateValues); len(rates) != len(ready) {
		t.Errorf("rate series has %d points, instances %d; both axes must cover the same samples", len(rates), len(ready))
	}

	// Live: more samples arrive over the stream and the chart grows, without a reload.
	stepSamples(t, d, c, 5)
	want := len(ready) + 5
	var grown string
	err = chromedp.Run(bctx, chromedp.Poll(fmt.Sprintf(
		`document.querySelector('%s path[data-series="ready"]').getAttribute('data-values').split(',').length >= %d && window.__tideNoReload === true`,
		card, want), nil, chromedp.WithPollingTimeout(10*time.Second)),
		chromedp.AttributeValue(card+` path[data-series="ready"]`, "data-values", &grown, nil))
	if err != nil {
		t.Fatalf("the chart did not grow to %d points from the stream without a reload: %v", want, err)
	}

	// Logs of the selected service, a topic and a delivery row are on the page too.
	var logText, triggerRow string
	err = chromedp.Run(bctx,
		chromedp.Poll(`document.querySelectorAll('#log-lines div').length >= 13`, nil, chromedp.WithPollingTimeout(10*time.Second)),
		chromedp.Text(`#log-lines`, &logText),
		chromedp.Text(`#deliveries tr[data-kind="Trigger"][data-name="order-trigger"]`, &triggerRow),
		chromedp.WaitVisible(`.topic-card[data-topic="orders"] path[data-series="produced"]`),
	)
	if err != nil {
		t.Fatalf("logs, topics or deliveries missing: %v", err)
	}
	if !strings.Contains(logText, "order 123214342 generated") || !strings.Contains(triggerRow, "Ready") {
		t.Errorf("logs %q / trigger row %q", truncate(logText, 200), triggerRow)
	}

	var shot []byte
	if err := chromedp.Run(bctx, chromedp.FullScreenshot(&shot, 100)); err != nil {
		t.Fatalf("screenshot: %v", err)
	}
	path := filepath.Join(artifactDir(t), "dashboard.png")
	if err := os.WriteFile(path, shot, 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("screenshot: %s (%d bytes)", path, len(shot))

	mu.Lock()
	defer mu.Unlock()
	if len(problems) > 0 {
		t.Errorf("the page logged errors:\n%s", strings.Join(problems, "\n"))
	}
}

// profileDir is a fresh --user-data-dir. Chromium's helper processes may still write to it for a moment after the
// browser exits, so removal is retried (with a deadline) instead of using t.TempDir, whose cleanup fails on that.
func profileDir(t *testing.T) string {
	dir, err := os.MkdirTemp("", "tide-chromium-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		deadline := time.Now().Add(5 * time.Second)
		for {
			err := os.RemoveAll(dir)
			if err == nil || time.Now().After(deadline) {
				if err != nil {
					t.Logf("leaving chromium profile %s: %v", dir, err)
				}
				return
			}
			time.Sleep(50 * time.Millisecond) // retry interval while helpers exit
		}
	})
	return dir
}

func parseValues(t *testing.T, s string) []float64 {
	t.Helper()
	var out []float64
	for _, f := range strings.Split(s, ",") {
		if f == "" {
			continue
		}
		v, err := strconv.ParseFloat(f, 64)
		if err != nil {
			t.Fatalf("data-values %q: %v", truncate(s, 80), err)
		}
		out = append(out, v)
	}
	return out
}
