package server_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/tide-run/tide/controlplane/client"
	"github.com/tide-run/tide/dashboard/dashboardtest"
	"github.com/tide-run/tide/internal/tracing/traceapi"
	"github.com/tide-run/tide/server"
	"github.com/tide-run/tide/server/servertest"
)

// TestBrowserTracePage opens the dashboard's trace page in headless Chromium on a running platform: the trace list
// shows a trace, /dashboard/traces#<id> draws its waterfall (one row per span, children under their parent), a
// selected row shows its attributes, and the page logs no errors.
func TestBrowserTracePage(t *testing.T) {
	s := servertest.RunServer(t, server.Options{})
	c, err := client.New(s.APIURL(), nil)
	if err != nil {
		t.Fatal(err)
	}
	const id = "5bf92f3577b34da6a3ce929d0e0e4736"
	now := time.Now().UTC()
	if err := c.PostSpans(context.Background(), []traceapi.Span{
		{TraceID: id, SpanID: "00000000000000b1", Name: "sender", Start: now, End: now.Add(4 * time.Millisecond), Attributes: map[string]string{"comment.id": "42"}},
		{TraceID: id, SpanID: "00000000000000b2", ParentSpanID: "00000000000000b1", Name: "process", Kind: "consumer", Start: now.Add(time.Millisecond), End: now.Add(3 * time.Millisecond)},
	}); err != nil {
		t.Fatal(err)
	}
	p := dashboardtest.Open(t, s.APIURL()+"/")
	var rows []string
	var listed bool
	var detail string
	p.Run(30*time.Second,
		chromedp.Navigate(s.APIURL()+"/dashboard/traces#"+id),
		chromedp.WaitVisible(`#trace-list tr[data-trace="`+id+`"]`),
		chromedp.WaitVisible(`.wf-row[data-name="process"]`),
		chromedp.Evaluate(`[...document.querySelectorAll('.wf-row')].map(r => r.dataset.name)`, &rows),
		chromedp.Evaluate(`!!document.querySelector('#trace-list tr[data-trace="`+id+`"]')`, &listed),
		chromedp.Click(`.wf-row[data-name="sender"]`),
		chromedp.Text(`#span-detail`, &detail),
	)
	if !listed || len(rows) != 2 || rows[0] != "sender" || rows[1] != "process" {
		t.Fatalf("listed %v, waterfall rows %v; want sender then process", listed, rows)
	}
	if want := "comment.id = 42"; !strings.Contains(detail, want) {
		t.Errorf("span detail %q lacks %q", detail, want)
	}
	p.Screenshot("traces.png")
	p.NoProblems()
}
