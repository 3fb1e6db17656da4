package dashboardtest

import (
	"context"
	"fmt"
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
)

// Chromium returns the chromium binary, or skips t (outside CI) or fails it (CI set) when there is none.
func Chromium(t testing.TB) string {
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

// ArtifactDir is where screenshots go: $TIDE_ARTIFACTS when set (CI keeps it), else a temp dir of t.
func ArtifactDir(t testing.TB) string {
	t.Helper()
	if d := os.Getenv("TIDE_ARTIFACTS"); d != "" {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
		return d
	}
	return t.TempDir()
}

// Page is one headless Chromium showing the dashboard. Its methods fail t on error; Close (registered with
// t.Cleanup by Open) stops the browser.
type Page struct {
	t      testing.TB
	ctx    context.Context
	cancel func()

	mu       sync.Mutex // guards problems, appended from chromedp's event goroutine
	problems []string
}

// Open starts Chromium with a fresh profile, listens for console errors and exceptions, and loads url (the
// dashboard's base URL, e.g. http://127.0.0.1:8090/). It waits until the page is connected to its stream.
func Open(t testing.TB, url string) *Page {
	t.Helper()
	chromium := Chromium(t)
	profile := profileDir(t)
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(),
		chromedp.ExecPath(chromium),
		chromedp.Headless, chromedp.NoSandbox, chromedp.DisableGPU, chromedp.NoFirstRun,
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("no-default-browser-check", true),
		chromedp.Flag("hide-scrollbars", true),
		chromedp.UserDataDir(profile),
		chromedp.WindowSize(1440, 1000),
	)
	bctx, cancelBrowser := chromedp.NewContext(actx)
	p := &Page{t: t, ctx: bctx}
	p.cancel = func() {
		_ = chromedp.Cancel(bctx) // close the browser gracefully before the allocator kills what is left
		cancelBrowser()
		cancelAlloc()
	}
	t.Cleanup(p.Close)
	chromedp.ListenTarget(bctx, p.listen)
	// Start the browser and its tab on the page's own context: chromedp ties them to the context of the first Run,
	// and the later Runs use short-lived child contexts for their timeouts.
	if err := chromedp.Run(bctx); err != nil {
		t.Fatalf("starting %s: %v", chromium, err)
	}
	if err := p.run(30*time.Second, chromedp.Navigate(url), chromedp.WaitVisible(`#conn.live`)); err != nil {
		t.Fatalf("loading the dashboard at %s: %v (page problems: %v)", url, err, p.Problems())
	}
	return p
}

func (p *Page) listen(ev any) {
	p.mu.Lock()
	defer p.mu.Unlock()
	switch ev := ev.(type) {
	case *runtime.EventConsoleAPICalled:
		if ev.Type == runtime.APITypeError || ev.Type == runtime.APITypeAssert {
			var args []string
			for _, a := range ev.Args {
				args = append(args, string(a.Value)+a.Description)
			}
			p.problems = append(p.problems, "console."+string(ev.Type)+": "+strings.Join(args, " "))
		}
	case *runtime.EventExceptionThrown:
		p.problems = append(p.problems, "exception: "+ev.ExceptionDetails.Error())
	case *log.EventEntryAdded:
		if ev.Entry.Level == log.LevelError {
			p.problems = append(p.problems, "log: "+ev.Entry.Text+" "+ev.Entry.URL)
		}
	}
}

// Close stops the browser. It is safe to call more than once.
func (p *Page) Close() {
	if p.cancel != nil {
		p.cancel()
		p.cancel = nil
	}
}

// Problems returns the console errors, exceptions and error log entries seen so far.
func (p *Page) Problems() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]string(nil), p.problems...)
}

// NoProblems fails t if the page logged any error or threw.
func (p *Page) NoProblems() {
	p.t.Helper()
	if ps := p.Problems(); len(ps) > 0 {
		p.t.Errorf("the dashboard logged errors:\n%s", strings.Join(ps, "\n"))
	}
}

// Run runs chromedp actions with a timeout, failing t on error.
func (p *Page) Run(timeout time.Duration, actions ...chromedp.Action) {
	p.t.Helper()
	if err := p.run(timeout, actions...); err != nil {
		p.t.Fatalf("browser: %v (page problems: %v)", err, p.Problems())
	}
}

func (p *Page) run(timeout time.Duration, actions ...chromedp.Action) error {
	ctx, cancel := context.WithTimeout(p.ctx, timeout)
	defer cancel()
	return chromedp.Run(ctx, actions...)
}

// Eval evaluates a JavaScript expression into out.
func (p *Page) Eval(expr string, out any) {
	p.t.Helper()
	p.Run(10*time.Second, chromedp.Evaluate(expr, out))
}

// ServiceCard is the CSS selector of a service's card.
func ServiceCard(namespace, service string) string {
	return fmt.Sprintf(`.service-card[data-service="%s/%s"]`, namespace, service)
}

// WaitServiceReady waits until both the resource table and the service's card show it Ready.
func (p *Page) WaitServiceReady(namespace, service string, timeout time.Duration) {
	p.t.Helper()
	row := fmt.Sprintf(`#resource-groups tr[data-kind="Service"][data-name="%s"][data-namespace="%s"] .badge`, service, namespace)
	card := ServiceCard(namespace, service) + ` .card-head .badge`
	js := fmt.Sprintf(`(() => { const a = document.querySelector('%s'), b = document.querySelector('%s');
		return !!a && !!b && a.textContent === 'Ready' && b.textContent === 'Ready'; })()`, row, card)
	if err := p.run(timeout, chromedp.Poll(js, nil, chromedp.WithPollingInterval(100*time.Millisecond))); err != nil {
		var rowText, cardText string
		_ = p.run(2*time.Second, chromedp.Evaluate(fmt.Sprintf(`(document.querySelector('%s')||{}).textContent||'(none)'`, row), &rowText),
			chromedp.Evaluate(fmt.Sprintf(`(document.querySelector('%s')||{}).textContent||'(none)'`, card), &cardText))
		p.t.Fatalf("service %s/%s not shown Ready within %s: table says %q, card says %q", namespace, service, timeout, rowText, cardText)
	}
}

// Series returns the values a chart line shows: series "ready", "desired" or "rate" of a service card, or any
// other line selected with SeriesAt.
func (p *Page) Series(namespace, service, series string) []float64 {
	p.t.Helper()
	return p.SeriesAt(ServiceCard(namespace, service), series)
}

// SeriesAt returns the data-values of path[data-series=series] inside the element matched by scope ([] when the
// chart has no such line yet).
func (p *Page) SeriesAt(scope, series string) []float64 {
	p.t.Helper()
	var s string
	p.Eval(fmt.Sprintf(`(() => { const e = document.querySelector('%s path[data-series="%s"]');
		return e ? e.getAttribute('data-values') : ''; })()`, scope, series), &s)
	return ParseValues(p.t, s)
}

// WaitRise waits until the service's ready-instances line has risen from its first point to at least minPeak,
// and returns the line.
func (p *Page) WaitRise(namespace, service string, minPeak float64, timeout time.Duration) []float64 {
	p.t.Helper()
	js := fmt.Sprintf(`(() => { const e = document.querySelector('%s path[data-series="ready"]');
		if (!e) return false; const v = e.getAttribute('data-values').split(',').filter(x => x !== '').map(Number);
		return v.length > 1 && Math.max(...v) >= %v && Math.max(...v) > v[0]; })()`, ServiceCard(namespace, service), minPeak)
	if err := p.run(timeout, chromedp.Poll(js, nil, chromedp.WithPollingInterval(200*time.Millisecond))); err != nil {
		p.t.Fatalf("the instance chart of %s/%s did not rise to %v within %s: %v", namespace, service, minPeak, timeout,
			summarize(p.Series(namespace, service, "ready")))
	}
	return p.Series(namespace, service, "ready")
}

// Screenshot saves a full-page PNG to ArtifactDir(t)/name and returns its path.
func (p *Page) Screenshot(name string) string {
	p.t.Helper()
	var shot []byte
	p.Run(20*time.Second, chromedp.FullScreenshot(&shot, 100))
	path := filepath.Join(ArtifactDir(p.t), name)
	if err := os.WriteFile(path, shot, 0o644); err != nil {
		p.t.Fatal(err)
	}
	p.t.Logf("dashboard screenshot: %s (%d bytes)", path, len(shot))
	return path
}

// ParseValues parses a data-values attribute ("0,1,2.5").
func ParseValues(t testing.TB, s string) []float64 {
	t.Helper()
	var out []float64
	for _, f := range strings.Split(s, ",") {
		if f == "" {
			continue
		}
		v, err := strconv.ParseFloat(f, 64)
		if err != nil {
			t.Fatalf("data-values %q: %v", summarizeString(s), err)
		}
		out = append(out, v)
	}
	return out
}

func summarize(v []float64) string {
	if len(v) == 0 {
		return "no points"
	}
	peak := v[0]
	for _, x := range v {
		peak = max(peak, x)
	}
	return fmt.Sprintf("%d points, first %v, peak %v, last %v", len(v), v[0], peak, v[len(v)-1])
}

func summarizeString(s string) string {
	if len(s) > 80 {
		return s[:80] + "..."
	}
	return s
}

// profileDir is a fresh --user-data-dir. Chromium's helper processes may still write to it for a moment after the
// browser exits, so removal is retried with a deadline (t.TempDir's cleanup would fail on that).
func profileDir(t testing.TB) string {
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
