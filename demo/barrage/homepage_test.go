package barrage

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// loopback stands in for the queue, the source, the Broker and the processor in this package's unit test: it
// processes each published comment straight into the table. The real chain (RocketMQ, RocketMQSource, Broker,
// Trigger, the processor as a Knative Service) is what demo/barrage/play's end-to-end test runs.
type loopback struct {
	t         *Table
	published atomic.Int64
	failEvery int64
}

func (l *loopback) Publish(ctx context.Context, m Message) error {
	n := l.published.Add(1)
	if l.failEvery > 0 && n%l.failEvery == 0 {
		return io.ErrUnexpectedEOF // a transient queue error: the page retries it
	}
	c, err := ParseComment(m.Body)
	if err != nil {
		return err
	}
	if m.TraceParent != c.TraceParent {
		return io.ErrShortWrite
	}
	r := Process(c, BlockedSet(""))
	r.ProcessedNs, r.Instance = time.Now().UnixNano(), "loop"
	_, err = l.t.Save(ctx, r)
	return err
}
func (l *loopback) Close() error { return nil }

// TestHomePageSendAndStream: a Send publishes its comments paced over the duration with retries, streams progress
// as NDJSON, and every result comes back on the event stream; the page and its assets are served with a CSP.
func TestHomePageSendAndStream(t *testing.T) {
	tb := openTestTable(t)
	pub := &loopback{t: tb, failEvery: 7}
	h, err := NewHomePage(HomePageOptions{Table: tb, Publisher: pub})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(h)
	defer srv.Close()
	defer h.Close()

	// The stream first, as the page opens it before Send.
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, "GET", srv.URL+"/api/events", nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if ct := resp.Header.Get("Content-Type"); ct != "text/event-stream" {
		t.Fatalf("events content type %q", ct)
	}
	got := make(chan Result, 100)
	go func() {
		sc := bufio.NewScanner(resp.Body)
		event := ""
		for sc.Scan() {
			line := sc.Text()
			switch {
			case strings.HasPrefix(line, "event: "):
				event = strings.TrimPrefix(line, "event: ")
			case strings.HasPrefix(line, "data: ") && event == "comment":
				var r Result
				if json.Unmarshal([]byte(strings.TrimPrefix(line, "data: ")), &r) == nil {
					got <- r
				}
			}
		}
	}()

	start := time.Now()
	body, _ := json.Marshal(SendRequest{Message: "hello  spam", Concurrency: 4, DurationSeconds: 1, Count: 20})
	sresp, err := http.Post(srv.URL+"/api/send", "application/json", bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	var lines []SendProgress
	sc := bufio.NewScanner(sresp.Body)
	for sc.Scan() {
		var p SendProgress
		if err := json.Unmarshal(sc.Bytes(), &p); err != nil {
			t.Fatalf("progress line %q: %v", sc.Text(), err)
		}
		lines = append(lines, p)
	}
	sresp.Body.Close()
	took := time.Since(start)
	if len(lines) < 2 || lines[0].Run == "" || lines[0].Planned != 20 {
		t.Fatalf("progress %+v", lines)
	}
	last := lines[len(lines)-1]
	if !last.Done || last.Sent != 20 || last.Failed != 0 {
		t.Fatalf("last progress %+v", last)
	}
	if took < 900*time.Millisecond {
		t.Errorf("20 comments over 1 s took %v: not paced", took)
	}
	ids := map[string]bool{}
	for len(ids) < 20 {
		select {
		case r := <-got:
			if r.Run != lines[0].Run || r.Shown != "hello ****" {
				t.Errorf("result %+v", r)
			}
			ids[r.ID] = true
		case <-ctx.Done():
			t.Fatalf("only %d of 20 comments came back on the stream", len(ids))
		}
	}
	cresp, err := http.Get(srv.URL + "/api/runs/" + lines[0].Run)
	if err != nil {
		t.Fatal(err)
	}
	var counts RunCounts
	_ = json.NewDecoder(cresp.Body).Decode(&counts)
	cresp.Body.Close()
	if counts.Processed != 20 {
		t.Errorf("run counts %+v", counts)
	}

	// Bad Sends are refused with the field named.
	for _, bad := range []SendRequest{{Message: "", Concurrency: 1, DurationSeconds: 1}, {Message: "x", Concurrency: 0, DurationSeconds: 1},
		{Message: "x", Concurrency: 1, DurationSeconds: 0}, {Message: "x", Concurrency: 1, DurationSeconds: 1000}} {
		b, _ := json.Marshal(bad)
		r, err := http.Post(srv.URL+"/api/send", "application/json", bytes.NewReader(b))
		if err != nil {
			t.Fatal(err)
		}
		r.Body.Close()
		if r.StatusCode != 400 {
			t.Errorf("%+v: %d, want 400", bad, r.StatusCode)
		}
	}
	// The page and its assets, with a CSP that allows nothing from elsewhere.
	for _, path := range []string{"/", "/app.js", "/style.css"} {
		r, err := http.Get(srv.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(r.Body)
		r.Body.Close()
		if r.StatusCode != 200 || !strings.Contains(r.Header.Get("Content-Security-Policy"), "default-src 'self'") {
			t.Errorf("%s: %d %q", path, r.StatusCode, r.Header.Get("Content-Security-Policy"))
		}
		if strings.Contains(string(b), "http://") || strings.Contains(string(b), "https://") {
			t.Errorf("%s refers to an external URL", path)
		}
	}
}
