package play_test

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	cdpruntime "github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"
	"github.com/chromedp/chromedp/kb"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/tide-run/tide/controlplane/client"
	"github.com/tide-run/tide/dashboard/dashboardtest"
	"github.com/tide-run/tide/demo/barrage"
	"github.com/tide-run/tide/demo/barrage/play"
	"github.com/tide-run/tide/internal/tailbuf"
	"github.com/tide-run/tide/internal/tracing/traceapi"
	"github.com/tide-run/tide/server"
)

type syncBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// testLogger returns the platform's logger: to stderr with TIDE_DEMO_LOG set, otherwise at Debug level into a
// bounded tail that logTail prints when the test failed.
func testLogger() (*slog.Logger, *tailbuf.Buffer) {
	if os.Getenv("TIDE_DEMO_LOG") != "" {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelInfo})), nil
	}
	tail := &tailbuf.Buffer{Max: 4 << 20}
	return slog.New(slog.NewTextHandler(tail, &slog.HandlerOptions{Level: slog.LevelDebug})), tail
}

// logTail prints the platform log's warnings and errors and the serving data plane's lines (the gateway, the
// autoscaler, the instances), the last 120 of them.
func logTail(t *testing.T, tail *tailbuf.Buffer) string {
	if tail == nil {
		return ""
	}
	var keep []string
	for line := range strings.Lines(tail.String()) {
		if strings.Contains(line, "level=WARN") || strings.Contains(line, "level=ERROR") ||
			strings.Contains(line, "component=serving") || strings.Contains(line, "component=autoscaler") ||
			strings.Contains(line, "response cut") {
			keep = append(keep, line)
		}
	}
	keep = keep[max(0, len(keep)-120):]
	s := fmt.Sprintf("platform log (warnings, errors, serving; last %d lines):\n%s", len(keep), strings.Join(keep, ""))
	t.Log(s)
	return s
}

// TestBarrageEndToEnd deploys seed 003's barrage service with `tide demo barrage` on a real platform the demo
// starts in this process on ephemeral ports (ko:// builds of the processor and the page, RocketMQ with the official
// client, RocketMQSource, Broker, Trigger, the processor scaling with containerConcurrency 2, SQLite table storage),
// and keeps it running for two subtests that share its one build:
//
//   - browser: headless Chromium opens the page, sends 200 comments at concurrency 10 for 10 s with the keyboard,
//     sees all 200 on the stage, and the processor scale above 1 and back to 0 (through the API and on the page);
//   - demo: `tide demo barrage --send hello --concurrency 10 --duration 5s --count 100` against this running tide,
//     which must report lost 0, every comment shown, a peak above 1 and the return to zero.
func TestBarrageEndToEnd(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end demo: skipped with -short")
	}
	dir := t.TempDir()
	wd, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	logger, logs := testLogger()
	platform := server.Options{DataDir: filepath.Join(dir, "tide"), Logger: logger}
	var progress syncBuffer
	ctx, cancel := context.WithTimeout(context.Background(), 6*time.Minute)
	defer cancel()
	start := time.Now()
	res, err := play.Run(ctx, play.Options{
		Server:       "http://127.0.0.1:1", // nothing answers: the demo starts its own tide
		Platform:     &platform,
		Keep:         true,
		SourceDir:    wd,
		OutDir:       filepath.Join(dir, "out"),
		ReadyTimeout: 4 * time.Minute, // a cold build cache compiles modernc.org/sqlite for both programs
		Progress:     &progress,
		Logger:       logger,
	})
	t.Logf("deploy (%v):\n%s", time.Since(start).Round(time.Second), progress.String())
	if err != nil {
		t.Fatalf("demo: %v", err)
	}
	srv := res.Platform
	if !res.Started || srv == nil || res.Sent {
		t.Fatalf("started %v, kept %v, sent %v: the demo must start tide, keep it and not send", res.Started, srv != nil, res.Sent)
	}
	t.Cleanup(func() {
		sctx, scancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer scancel()
		_ = srv.Shutdown(sctx)
		if t.Failed() { // the instances' own logs say what the programs saw
			logTail(t, logs)
			logs, _ := filepath.Glob(filepath.Join(platform.DataDir, "logs", play.Namespace, "*", "*.log"))
			for _, f := range logs {
				b, _ := os.ReadFile(f)
				if len(b) > 4096 {
					b = b[len(b)-4096:]
				}
				t.Logf("%s (tail):\n%s", strings.TrimPrefix(f, platform.DataDir+"/"), b)
			}
		}
	})
	if !strings.HasPrefix(res.PageURL, "http://demo-barrage.default.localhost:") {
		t.Fatalf("page URL %q", res.PageURL)
	}
	api, err := client.New(res.APIURL, nil)
	if err != nil {
		t.Fatal(err)
	}
	api.SetToken(srv.Access().Token)
	instances := func() int {
		k, err := api.KindFor(ctx, "serving.knative.dev/v1", "Revision")
		if err != nil {
			return -1
		}
		revs, _, err := api.List(ctx, k, play.Namespace, client.ListOptions{LabelSelector: "serving.knative.dev/service=" + play.Processor})
		if err != nil {
			return -1
		}
		n := 0
		for _, r := range revs {
			v, _, _ := unstructured.NestedInt64(r.Object, "status", "actualReplicas")
			n += int(v)
		}
		return n
	}

	t.Run("browser", func(t *testing.T) {
		browser(t, res.PageURL, instances, func(id string) (traceapi.Trace, error) { return api.Trace(ctx, id) })
	})

	t.Run("demo", func(t *testing.T) {
		var ns []string
		for _, e := range srv.Endpoints() {
			if e.Name == "rocketmq name server" {
				ns = append(ns, e.URL)
			}
		}
		var out syncBuffer
		start := time.Now()
		dres, err := play.Run(ctx, play.Options{Server: res.APIURL, Token: srv.Access().Token, NameServers: ns,
			SourceDir: wd, OutDir: filepath.Join(dir, "out"), Send: "hello", Concurrency: 10, Duration: 5 * time.Second,
			Count: 100, DrainTimeout: time.Minute, ZeroTimeout: time.Minute, Progress: &out, Logger: logger})
		t.Logf("demo output (%v):\n%s", time.Since(start).Round(time.Second), out.String())
		if strings.Contains(out.String(), "sending again") {
			// Allowed (a person would press Send again), but not expected: keep what the platform saw, in the test's
			// log and in the notes .ci/run prints (a passing package's log is not shown).
			t.Log("the demo had to send again")
			evidence := logTail(t, logs)
			if p := os.Getenv("TIDE_TEST_NOTES"); p != "" {
				if f, err := os.OpenFile(p, os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o644); err == nil {
					fmt.Fprintf(f, "%s: the demo had to send again\n%s\n%s\n", t.Name(), out.String(), evidence)
					f.Close()
				}
			}
		}
		if err != nil {
			t.Fatalf("demo: %v", err)
		}
		var sum strings.Builder
		_ = dres.Summary.WriteText(&sum)
		t.Logf("summary:\n%s", sum.String())
		s := dres.Summary
		if dres.Started || !dres.Sent {
			t.Errorf("started %v (must use the running tide), sent %v", dres.Started, dres.Sent)
		}
		if !s.OK() || s.Sent != 100 || s.Lost != 0 || s.Shown != 100 || s.Processed != 100 || s.NotSent != 0 {
			t.Fatalf("sent %d, not sent %d, processed %d, shown %d, lost %d", s.Sent, s.NotSent, s.Processed, s.Shown, s.Lost)
		}
		if s.P50 <= 0 || s.P99 < s.P50 {
			t.Errorf("latency p50 %v p99 %v", s.P50, s.P99)
		}
		if s.PeakInstances < 2 {
			t.Errorf("peak instances %d: containerConcurrency 2 under 20 comments/s must scale the processor out", s.PeakInstances)
		}
		if !s.BackToZero {
			t.Errorf("the processor did not scale back to zero")
		}
		if b, err := os.ReadFile(dres.SummaryPath); err != nil || !strings.Contains(string(b), "lost                     0") {
			t.Errorf("summary.txt: %v\n%s", err, b)
		}
		if p := os.Getenv("TIDE_BARRAGE_SUMMARY"); p != "" {
			_ = os.WriteFile(p, []byte(sum.String()), 0o644)
		}
	})
}

var traceIDRE = regexp.MustCompile(`^[0-9a-f]{32}$`)

// browser drives the page in headless Chromium.
func browser(t *testing.T, pageURL string, instances func() int, getTrace func(id string) (traceapi.Trace, error)) {
	chromium := dashboardtest.Chromium(t)
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(),
		chromedp.ExecPath(chromium), chromedp.Headless, chromedp.NoSandbox, chromedp.DisableGPU, chromedp.NoFirstRun,
		chromedp.Flag("disable-background-networking", true), chromedp.Flag("hide-scrollbars", true),
		chromedp.UserDataDir(t.TempDir()), chromedp.WindowSize(1280, 900))
	defer cancelAlloc()
	bctx, cancelBrowser := chromedp.NewContext(actx)
	defer func() { _ = chromedp.Cancel(bctx); cancelBrowser() }()
	var mu sync.Mutex
	var problems []string
	chromedp.ListenTarget(bctx, func(ev any) {
		mu.Lock()
		defer mu.Unlock()
		switch ev := ev.(type) {
		case *cdpruntime.EventExceptionThrown:
			problems = append(problems, "exception: "+ev.ExceptionDetails.Error())
		case *cdpruntime.EventConsoleAPICalled:
			if ev.Type == cdpruntime.APITypeError {
				problems = append(problems, "console.error")
			}
		}
	})
	run := func(timeout time.Duration, actions ...chromedp.Action) {
		t.Helper()
		ctx, cancel := context.WithTimeout(bctx, timeout)
		defer cancel()
		if err := chromedp.Run(ctx, actions...); err != nil {
			t.Fatalf("browser: %v", err)
		}
	}
	if err := chromedp.Run(bctx); err != nil {
		t.Fatalf("starting %s: %v", chromium, err)
	}
	run(30*time.Second, chromedp.Navigate(pageURL+"/"), chromedp.WaitVisible(`#send`, chromedp.ByID))

	// Accessibility: every form control has a label, the status is a live region.
	var unlabelled int
	run(5*time.Second, chromedp.Evaluate(`[...document.querySelectorAll("input")].filter(i => !document.querySelector('label[for="'+i.id+'"]')).length`, &unlabelled))
	if unlabelled != 0 {
		t.Errorf("%d inputs without a label", unlabelled)
	}

	// Fill the form and send with the keyboard (Enter in the message field submits the form).
	run(10*time.Second,
		chromedp.Evaluate(`for (const [id, v] of [["concurrency", "10"], ["duration", "10"], ["count", "200"], ["message", ""]])
			document.getElementById(id).value = v; true`, nil),
		chromedp.Focus(`#message`, chromedp.ByID),
		chromedp.SendKeys(`#message`, "hello tide, no spam", chromedp.ByID),
		chromedp.KeyEvent(kb.Enter),
	)
	sentAt := time.Now()
	peakAPI, peakPage, flying, shot := 0, 0, 0, false
	var lastRun struct {
		Run    string `json:"run"`
		Sent   int    `json:"sent"`
		Failed int    `json:"failed"`
	}
	shownOfRun := 0
	deadline := time.Now().Add(90 * time.Second)
	for {
		var st struct {
			Shown   int            `json:"shown"`
			Runs    map[string]int `json:"runs"`
			LastRun *struct {
				Run    string `json:"run"`
				Sent   int    `json:"sent"`
				Failed int    `json:"failed"`
			} `json:"lastRun"`
			Instances int `json:"instances"`
			Flying    int `json:"flying"`
		}
		run(5*time.Second, chromedp.Evaluate(`({shown: barrage.shown, runs: barrage.runs, lastRun: barrage.lastRun || null,
			instances: Number(document.getElementById("count-instances").dataset.value),
			flying: document.querySelectorAll("#stage .comment").length})`, &st))
		peakPage, flying = max(peakPage, st.Instances), max(flying, st.Flying)
		peakAPI = max(peakAPI, instances())
		if !shot && st.Flying >= 15 && time.Since(sentAt) > 4*time.Second {
			shot = true
			screenshot(t, bctx)
		}
		if st.LastRun != nil {
			lastRun.Run, lastRun.Sent, lastRun.Failed = st.LastRun.Run, st.LastRun.Sent, st.LastRun.Failed
			shownOfRun = st.Runs[lastRun.Run]
			if shownOfRun >= 200 {
				break
			}
		}
		if time.Now().After(deadline) {
			var status string
			_ = chromedp.Run(bctx, chromedp.Text(`#status`, &status, chromedp.ByID))
			t.Fatalf("after %v: the stage showed %d comments of run %q (sent %d, failed %d); status %q",
				time.Since(sentAt).Round(time.Second), st.Shown, lastRun.Run, lastRun.Sent, lastRun.Failed, status)
		}
		time.Sleep(200 * time.Millisecond)
	}
	t.Logf("all 200 shown %v after Send; peak processor instances: API %d, page %d; up to %d comments flying at once",
		time.Since(sentAt).Round(100*time.Millisecond), peakAPI, peakPage, flying)
	if lastRun.Sent != 200 || lastRun.Failed != 0 || shownOfRun != 200 {
		t.Errorf("run %s: sent %d, failed %d, shown %d; want 200, 0, 200", lastRun.Run, lastRun.Sent, lastRun.Failed, shownOfRun)
	}
	if flying < 2 {
		t.Errorf("at most %d comments on the stage at once: they must fly across it", flying)
	}
	if peakAPI < 2 || peakPage < 2 {
		t.Errorf("the processor did not scale above 1: peak %d instances (API), %d on the page", peakAPI, peakPage)
	}

	// Every comment carries its trace: the trace id of the traceparent the page started for it, carried through
	// RocketMQ and HTTP to the processor's row; the page links each comment to the trace in tide's dashboard.
	var traces []string
	run(5*time.Second, chromedp.Evaluate(`[...document.querySelectorAll("#recent a")].map(a => a.dataset.trace || "")`, &traces))
	if len(traces) == 0 {
		t.Errorf("no comments in the list of latest comments")
	}
	for _, tr := range traces {
		if !traceIDRE.MatchString(tr) {
			t.Errorf("comment trace id %q: want 32 hex digits", tr)
			break
		}
	}

	// Back to zero, through the API and on the page (the instances' heartbeat rows go when they stop).
	zeroDeadline := time.Now().Add(90 * time.Second)
	for {
		var onPage int
		run(5*time.Second, chromedp.Evaluate(`Number(document.getElementById("count-instances").dataset.value)`, &onPage))
		n := instances()
		if n == 0 && onPage == 0 {
			t.Logf("processor back to zero %v after all comments were shown", time.Since(sentAt).Round(time.Second))
			break
		}
		if time.Now().After(zeroDeadline) {
			t.Fatalf("the processor did not scale back to zero: %d instances (API), %d on the page", n, onPage)
		}
		time.Sleep(250 * time.Millisecond)
	}
	if !shot {
		screenshot(t, bctx)
	}
	openTrace(t, bctx, run, getTrace)
	mu.Lock()
	defer mu.Unlock()
	if len(problems) > 0 {
		t.Errorf("page problems: %v", problems)
	}
}

// screenshot keeps the page as barrage.png in the artifact dir, and at $TIDE_BARRAGE_SCREENSHOT when set (the
// README's docs/barrage.png is made that way).
func screenshot(t *testing.T, bctx context.Context) {
	ctx, cancel := context.WithTimeout(bctx, 20*time.Second)
	defer cancel()
	var shot []byte
	if err := chromedp.Run(ctx, chromedp.FullScreenshot(&shot, 100)); err != nil {
		t.Errorf("screenshot: %v", err)
		return
	}
	paths := []string{filepath.Join(dashboardtest.ArtifactDir(t), "barrage.png")}
	if p := os.Getenv("TIDE_BARRAGE_SCREENSHOT"); p != "" {
		paths = append(paths, p)
	}
	for _, p := range paths {
		if err := os.WriteFile(p, shot, 0o644); err != nil {
			t.Errorf("screenshot: %v", err)
		}
	}
	t.Logf("page screenshot: %s (%d bytes)", strings.Join(paths, ", "), len(shot))
}

// openTrace follows one comment's link to its trace: tide holds one trace per comment in which the page's spans
// (sender, then receiver and result), tide's hops (source, Broker ingress, Trigger delivery, gateway) and the
// processor's span (process) are joined parent to child, and the dashboard's trace view draws them.
func openTrace(t *testing.T, bctx context.Context, run func(time.Duration, ...chromedp.Action), getTrace func(string) (traceapi.Trace, error)) {
	t.Helper()
	var href string
	run(5*time.Second, chromedp.Evaluate(`(document.querySelector("#recent a[href]") || {}).href || ""`, &href))
	_, id, ok := strings.Cut(href, "/dashboard/traces#")
	if !ok || !traceIDRE.MatchString(id) {
		t.Fatalf("a comment's link %q: want <tide API>/dashboard/traces#<trace id>", href)
	}
	// The programs export in batches (every 5 s by default): wait for the four spans.
	var tr traceapi.Trace
	byName := map[string]traceapi.Span{}
	deadline := time.Now().Add(30 * time.Second)
	for {
		var err error
		tr, err = getTrace(id)
		clear(byName)
		for _, sp := range tr.Spans {
			byName[sp.Name] = sp
		}
		if err == nil && byName[barrage.SpanSender].SpanID != "" && byName[barrage.SpanProcess].SpanID != "" &&
			byName[barrage.SpanReceiver].SpanID != "" && byName[barrage.SpanResult].SpanID != "" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("trace %s after 30 s: %v; spans %v", id, err, names(tr.Spans))
		}
		time.Sleep(250 * time.Millisecond)
	}
	parent := map[string]string{}
	byID := map[string]traceapi.Span{}
	for _, sp := range tr.Spans {
		parent[sp.SpanID], byID[sp.SpanID] = sp.ParentSpanID, sp
	}
	sender := byName[barrage.SpanSender]
	if sender.ParentSpanID != "" || sender.Service != "barrage-homepage" {
		t.Errorf("sender: %+v; want the root, from barrage-homepage", sender)
	}
	// process descends from sender through tide's hops.
	var hops []string
	reached := false
	for id, i := parent[byName[barrage.SpanProcess].SpanID], 0; id != "" && i < 50; id, i = parent[id], i+1 {
		if id == sender.SpanID {
			reached = true
			break
		}
		hops = append(hops, byID[id].Name+" ("+byID[id].Service+")")
	}
	if !reached || len(hops) == 0 {
		t.Errorf("process does not descend from sender through tide's hops (%v); spans %v", hops, names(tr.Spans))
	}
	if byName[barrage.SpanReceiver].ParentSpanID != sender.SpanID || byName[barrage.SpanResult].ParentSpanID != byName[barrage.SpanReceiver].SpanID {
		t.Errorf("receiver and result: want sender -> receiver -> result; spans %v", names(tr.Spans))
	}
	t.Logf("comment trace %s: sender -> %v -> process; receiver, result", id, hops)

	// The link opens the dashboard's trace view, which draws the same spans. In a tab of its own, as a person
	// would open it: the page stays open, so its event stream keeps it from scaling to zero before the demo
	// subtest uses it (the page was scaled down under the next Send once; see docs/STATUS.md).
	tctx, cancelTab := chromedp.NewContext(bctx)
	defer cancelTab()
	ctx, cancel := context.WithTimeout(tctx, 30*time.Second)
	defer cancel()
	var drawn []string
	if err := chromedp.Run(ctx, chromedp.Navigate(href), chromedp.WaitVisible(`#waterfall .wf-row`, chromedp.ByQuery),
		chromedp.Evaluate(`[...document.querySelectorAll("#waterfall .wf-row")].map(r => r.dataset.name)`, &drawn)); err != nil {
		t.Fatalf("the trace view: %v", err)
	}
	for _, want := range []string{barrage.SpanSender, barrage.SpanProcess, barrage.SpanReceiver, barrage.SpanResult} {
		if !slices.Contains(drawn, want) {
			t.Errorf("the dashboard's trace view draws %v: no %q", drawn, want)
		}
	}
}

func names(spans []traceapi.Span) []string {
	var out []string
	for _, sp := range spans {
		out = append(out, sp.Name+"/"+sp.Service)
	}
	return out
}
