package play

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/tide-run/tide/demo/barrage"
)

type driveOptions struct {
	PageURL                   string
	Text                      string
	Concurrency               int
	Duration                  time.Duration
	Count                     int
	DrainTimeout, ZeroTimeout time.Duration
	Instances                 func(context.Context) (int, error)
	Progress                  io.Writer
}

// pageClient reaches the page through tide's gateway: a Knative URL's host (<name>.<ns>.localhost) is dialled on
// the loopback address with its port, as browsers resolve *.localhost.
func pageClient() *http.Client {
	d := &net.Dialer{Timeout: 5 * time.Second}
	tr := &http.Transport{
		DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			host, port, err := net.SplitHostPort(addr)
			if err == nil && (host == "localhost" || strings.HasSuffix(host, ".localhost")) {
				addr = net.JoinHostPort("127.0.0.1", port)
			}
			return d.DialContext(ctx, network, addr)
		},
		MaxIdleConnsPerHost: 4,
	}
	return &http.Client{Transport: tr}
}

// shownComment is a comment the page's event stream delivered, and when.
type shownComment struct {
	res barrage.Result
	at  time.Time
}

// stream follows the page's event stream like the page does (reconnecting with Last-Event-ID) and records each
// comment the first time it arrives.
type stream struct {
	mu        sync.Mutex
	shown     map[string]shownComment
	connected chan struct{}
	once      sync.Once
}

func (s *stream) follow(ctx context.Context, hc *http.Client, pageURL string) {
	last := ""
	for ctx.Err() == nil {
		req, _ := http.NewRequestWithContext(ctx, "GET", pageURL+"/api/events", nil)
		if last != "" {
			req.Header.Set("Last-Event-ID", last)
		}
		resp, err := hc.Do(req)
		if err == nil && resp.StatusCode == http.StatusOK {
			s.once.Do(func() { close(s.connected) })
			last = s.read(resp.Body, last)
		}
		if resp != nil {
			resp.Body.Close()
		}
		select {
		case <-ctx.Done():
		case <-time.After(500 * time.Millisecond):
		}
	}
}

func (s *stream) read(body io.Reader, last string) string {
	sc := bufio.NewScanner(body)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	event, id := "", ""
	for sc.Scan() {
		line := sc.Text()
		switch {
		case line == "":
			event = ""
		case strings.HasPrefix(line, "event: "):
			event = strings.TrimPrefix(line, "event: ")
		case strings.HasPrefix(line, "id: "):
			id = strings.TrimPrefix(line, "id: ")
		case strings.HasPrefix(line, "data: ") && event == "comment":
			var r barrage.Result
			if json.Unmarshal([]byte(strings.TrimPrefix(line, "data: ")), &r) != nil {
				continue
			}
			now := time.Now()
			s.mu.Lock()
			if _, ok := s.shown[r.ID]; !ok {
				s.shown[r.ID] = shownComment{res: r, at: now}
			}
			s.mu.Unlock()
			last = id
		}
	}
	return last
}

// run returns the comments of run shown so far.
func (s *stream) run(run string) []shownComment {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []shownComment
	for _, c := range s.shown {
		if c.res.Run == run {
			out = append(out, c)
		}
	}
	return out
}

// sampler records the processor's instances every 250 ms.
type sampler struct {
	mu     sync.Mutex
	peak   int
	last   int
	series []int
}

func (s *sampler) loop(ctx context.Context, instances func(context.Context) (int, error)) {
	t := time.NewTicker(250 * time.Millisecond)
	defer t.Stop()
	for {
		if n, err := instances(ctx); err == nil {
			s.mu.Lock()
			s.peak, s.last = max(s.peak, n), n
			s.series = append(s.series, n)
			s.mu.Unlock()
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

func (s *sampler) now() (peak, last int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.peak, s.last
}

// drive runs one Send through the page and reports.
func drive(ctx context.Context, o driveOptions) (Summary, error) {
	sum := Summary{Text: o.Text, Concurrency: o.Concurrency, Duration: o.Duration}
	hc := pageClient()
	pageURL := strings.TrimSuffix(o.PageURL, "/")
	if _, err := url.Parse(pageURL); err != nil {
		return sum, fmt.Errorf("barrage demo: page URL %q: %w", pageURL, err)
	}
	sctx, stop := context.WithCancel(ctx)
	defer stop()
	st := &stream{shown: map[string]shownComment{}, connected: make(chan struct{})}
	go st.follow(sctx, hc, pageURL)
	smp := &sampler{}
	go smp.loop(sctx, o.Instances)
	select {
	case <-st.connected:
	case <-time.After(60 * time.Second):
		return sum, fmt.Errorf("barrage demo: the page's event stream %s/api/events did not answer in 60s", pageURL)
	case <-ctx.Done():
		return sum, ctx.Err()
	}

	// The page's own send path: the request the Send button makes. A request that fails is tried again (3 attempts
	// in all), as a person would press Send again: the page's instance may have been stopping (scale-down) when the
	// request reached it. One that failed before the page named its run published nothing (the page names the run
	// before it publishes); one cut after that ended its run early (the page stops sending when the request ends),
	// and the new attempt is a new run: the summary is the last run's, the cut run's comments are still processed
	// and shown under their own run.
	var last barrage.SendProgress
	planned := 0
	for attempt := 1; ; attempt++ {
		var err error
		last, planned, err = sendOnce(ctx, hc, pageURL, o, st, smp, &sum)
		if err == nil {
			break
		}
		if attempt == 3 || ctx.Err() != nil {
			return sum, err
		}
		if sum.Run != "" {
			fmt.Fprintf(o.Progress, "  the send stream of run %s was cut after %d comments (%v); sending again as a new run\n",
				sum.Run, last.Sent, err)
			sum.Run = ""
		} else {
			fmt.Fprintf(o.Progress, "  the send did not start (%v); sending again\n", err)
		}
		select {
		case <-ctx.Done():
			return sum, ctx.Err()
		case <-time.After(time.Second):
		}
	}
	sum.Planned, sum.Sent, sum.NotSent = planned, int(last.Sent), int(last.Failed)
	sentAt := time.Now()

	// Wait until every sent comment is shown or dead-lettered.
	fmt.Fprintf(o.Progress, "sent %d; waiting for the page to show them\n", sum.Sent)
	deadline := sentAt.Add(o.DrainTimeout)
	var counts barrage.RunCounts
	for {
		counts, _ = runCounts(ctx, hc, pageURL, sum.Run)
		if len(st.run(sum.Run))+counts.DeadLettered >= sum.Sent || time.Now().After(deadline) {
			break
		}
		select {
		case <-ctx.Done():
			return sum, ctx.Err()
		case <-time.After(250 * time.Millisecond):
		}
	}
	shown := st.run(sum.Run)
	sum.Shown, sum.Processed, sum.Duplicates, sum.DeadLettered = len(shown), counts.Processed, counts.Duplicates, counts.DeadLettered
	sum.Lost = max(0, sum.Sent-sum.Shown-sum.DeadLettered)
	var lastShown time.Time
	lat := make([]time.Duration, 0, len(shown))
	for _, c := range shown {
		lat = append(lat, c.at.Sub(time.Unix(0, c.res.SentNs)))
		if c.at.After(lastShown) {
			lastShown = c.at
		}
	}
	sum.P50, sum.P99 = percentile(lat, 50), percentile(lat, 99)

	// Back to zero: the processor's instances after the burst.
	fmt.Fprintf(o.Progress, "shown %d; waiting for the processor to scale back to zero\n", sum.Shown)
	zeroDeadline := time.Now().Add(o.ZeroTimeout)
	for {
		if n, err := o.Instances(ctx); err == nil && n == 0 {
			sum.BackToZero = true
			if !lastShown.IsZero() {
				sum.ZeroAfter = time.Since(lastShown)
			}
			break
		}
		if time.Now().After(zeroDeadline) {
			break
		}
		select {
		case <-ctx.Done():
			return sum, ctx.Err()
		case <-time.After(250 * time.Millisecond):
		}
	}
	sum.PeakInstances, _ = smp.now()
	return sum, nil
}

// sendOnce makes one Send request and reads its progress to the end. sum.Run is set once the page named the run.
func sendOnce(ctx context.Context, hc *http.Client, pageURL string, o driveOptions, st *stream, smp *sampler, sum *Summary) (last barrage.SendProgress, planned int, err error) {
	body, _ := json.Marshal(barrage.SendRequest{Message: o.Text, Concurrency: o.Concurrency,
		DurationSeconds: o.Duration.Seconds(), Count: o.Count})
	req, _ := http.NewRequestWithContext(ctx, "POST", pageURL+"/api/send", bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	resp, err := hc.Do(req)
	if err != nil {
		return last, 0, fmt.Errorf("barrage demo: send: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
		return last, 0, fmt.Errorf("barrage demo: send: %s: %s", resp.Status, strings.TrimSpace(string(b)))
	}
	sc := bufio.NewScanner(resp.Body)
	lastPrint := time.Now()
	for sc.Scan() {
		var p barrage.SendProgress
		if err := json.Unmarshal(sc.Bytes(), &p); err != nil {
			return last, planned, fmt.Errorf("barrage demo: send progress %q: %w", sc.Text(), err)
		}
		if p.Run != "" && sum.Run == "" {
			sum.Run, planned = p.Run, p.Planned
			fmt.Fprintf(o.Progress, "sending %d comments %q, %d at a time over %v (run %s)\n", planned, o.Text, o.Concurrency, o.Duration, p.Run)
		}
		last = p
		if time.Since(lastPrint) >= 2*time.Second {
			lastPrint = time.Now()
			peak, now := smp.now()
			fmt.Fprintf(o.Progress, "  sent %d/%d, shown %d, processor instances %d (peak %d)\n", p.Sent, planned,
				len(st.run(sum.Run)), now, peak)
		}
	}
	if !last.Done {
		return last, planned, fmt.Errorf("barrage demo: the send stream ended before the send finished (run %q, %d sent so far; %v)",
			sum.Run, last.Sent, sc.Err())
	}
	return last, planned, nil
}

func runCounts(ctx context.Context, hc *http.Client, pageURL, run string) (barrage.RunCounts, error) {
	var c barrage.RunCounts
	rctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(rctx, "GET", pageURL+"/api/runs/"+url.PathEscape(run), nil)
	resp, err := hc.Do(req)
	if err != nil {
		return c, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return c, fmt.Errorf("run counts: %s", resp.Status)
	}
	return c, json.NewDecoder(resp.Body).Decode(&c)
}
