package barrage

import (
	"context"
	"crypto/rand"
	"embed"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unicode/utf8"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"
	"go.opentelemetry.io/otel/trace/noop"
)

//go:embed page
var pageFS embed.FS

// Limits of one Send.
const (
	MaxConcurrency = 100
	MaxDuration    = 4 * time.Minute // under Knative's default request timeout (300 s): a Send is one request
	MaxCount       = 100_000
	// lookback is how far behind the newest result the page's poller reads again, for rows committed late (a
	// processor stamps processed_ns before its write commits).
	lookback     = 5 * time.Second
	pollInterval = 100 * time.Millisecond
	pollPage     = 1000
)

// HomePageOptions configure NewHomePage.
type HomePageOptions struct {
	Table     *Table
	Publisher Publisher
	// TraceURL, when set, links each comment to its trace: "{traceId}" is replaced by the comment's trace id.
	TraceURL string
	// Tracer records the page's spans of each comment's trace: "sender" (publishing it; the trace's root),
	// "receiver" (the page reading the processed comment back from the table) and "result" (handing it to the
	// open pages). Nil: none are recorded, and the trace context still travels with each comment.
	Tracer trace.Tracer
	Logger *slog.Logger
}

// maxPendingTraces bounds the sender spans the page remembers until their comments come back (the parents of
// "receiver"); past it a receiver span has no parent but stays in the trace.
const maxPendingTraces = 100_000

// HomePage is the HomePage service's HTTP handler:
//
//	GET  /                 the page (embedded; no external resources)
//	POST /api/send         a Send: {"message","concurrency","durationSeconds","count"}; the response streams its
//	                       progress as NDJSON ({"run","planned"}, then {"sent","failed"}, last {"done":true,...})
//	                       and the comments are published while it lasts (so the Send lives inside a request and an
//	                       instance is never scaled away under it)
//	GET  /api/events       server-sent events: "comment" for each processed comment (read back from the table),
//	                       "stats" every second ({"instances"}); Last-Event-ID or ?since=<unix ns> replays
//	GET  /api/runs/{run}   a run's counts in the table
//	GET  /api/config       the page's settings
//	GET  /healthz
type HomePage struct {
	opts HomePageOptions
	mux  *http.ServeMux
	done chan struct{} // closed by Close: streams end
	once sync.Once
	sent atomic.Int64

	mu      sync.Mutex
	subs    map[chan Result]struct{}
	polling bool

	pendingMu sync.Mutex
	pending   map[string]trace.SpanContext // comment id -> its sender span, until the page reads it back
}

// NewHomePage builds the handler.
func NewHomePage(opts HomePageOptions) (*HomePage, error) {
	if opts.Table == nil || opts.Publisher == nil {
		return nil, errors.New("barrage homepage: a Table and a Publisher are required")
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	if opts.Tracer == nil {
		opts.Tracer = noop.NewTracerProvider().Tracer("")
	}
	h := &HomePage{opts: opts, mux: http.NewServeMux(), done: make(chan struct{}), subs: map[chan Result]struct{}{},
		pending: map[string]trace.SpanContext{}}
	static, _ := fs.Sub(pageFS, "page")
	files := http.FileServerFS(static)
	h.mux.Handle("GET /", securityHeaders(files))
	h.mux.HandleFunc("POST /api/send", h.handleSend)
	h.mux.HandleFunc("GET /api/events", h.handleEvents)
	h.mux.HandleFunc("GET /api/runs/{run}", h.handleRun)
	h.mux.HandleFunc("GET /api/config", func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, map[string]any{"traceURL": opts.TraceURL})
	})
	h.mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusOK) })
	return h, nil
}

func (h *HomePage) ServeHTTP(w http.ResponseWriter, r *http.Request) { h.mux.ServeHTTP(w, r) }

// Close ends the event streams (before the server drains).
func (h *HomePage) Close() { h.once.Do(func() { close(h.done) }) }

// Sent is how many comments this instance has published.
func (h *HomePage) Sent() int64 { return h.sent.Load() }

func securityHeaders(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Security-Policy", "default-src 'self'; img-src 'self' data:; frame-ancestors 'none'")
		w.Header().Set("X-Content-Type-Options", "nosniff")
		next.ServeHTTP(w, r)
	})
}

func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(v)
}

// SendRequest is a Send from the page's form.
type SendRequest struct {
	Message         string  `json:"message"`
	Concurrency     int     `json:"concurrency"`
	DurationSeconds float64 `json:"durationSeconds"`
	// Count is the number of comments, spread evenly over the duration; 0 means one per sender per second.
	Count int `json:"count"`
}

// Plan checks r and returns its duration and count.
func (r SendRequest) Plan() (time.Duration, int, error) {
	switch {
	case strings.TrimSpace(r.Message) == "":
		return 0, 0, errors.New("message: write something to send")
	case utf8.RuneCountInString(r.Message) > MaxTextRunes:
		return 0, 0, fmt.Errorf("message: at most %d characters", MaxTextRunes)
	case r.Concurrency < 1 || r.Concurrency > MaxConcurrency:
		return 0, 0, fmt.Errorf("concurrency: between 1 and %d", MaxConcurrency)
	case r.DurationSeconds <= 0 || r.DurationSeconds > MaxDuration.Seconds():
		return 0, 0, fmt.Errorf("duration: more than 0 and at most %v", MaxDuration)
	case r.Count < 0 || r.Count > MaxCount:
		return 0, 0, fmt.Errorf("count: between 0 and %d", MaxCount)
	}
	d := time.Duration(r.DurationSeconds * float64(time.Second))
	n := r.Count
	if n == 0 {
		n = max(1, int(float64(r.Concurrency)*r.DurationSeconds))
	}
	return d, n, nil
}

// SendProgress is one NDJSON line of a Send's response.
type SendProgress struct {
	Run     string `json:"run,omitempty"`
	Planned int    `json:"planned,omitempty"`
	Sent    int64  `json:"sent"`
	Failed  int64  `json:"failed"`
	Done    bool   `json:"done,omitempty"`
	Error   string `json:"error,omitempty"`
}

func newRunID() string {
	var b [3]byte
	_, _ = rand.Read(b[:])
	return "r" + strconv.FormatInt(time.Now().UnixMilli(), 36) + hex.EncodeToString(b[:])
}

func (h *HomePage) handleSend(w http.ResponseWriter, r *http.Request) {
	var req SendRequest
	if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, 4096)).Decode(&req); err != nil {
		http.Error(w, "bad request: "+err.Error(), http.StatusBadRequest)
		return
	}
	d, n, err := req.Plan()
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	run := newRunID()
	w.Header().Set("Content-Type", "application/x-ndjson")
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("X-Accel-Buffering", "no")
	enc := json.NewEncoder(w)
	flusher, _ := w.(http.Flusher)
	emit := func(p SendProgress) {
		_ = enc.Encode(p)
		if flusher != nil {
			flusher.Flush()
		}
	}
	emit(SendProgress{Run: run, Planned: n})
	var sent, failed atomic.Int64
	finished := make(chan struct{})
	go func() {
		defer close(finished)
		h.runSend(r.Context(), run, req.Message, req.Concurrency, d, n, &sent, &failed)
	}()
	tick := time.NewTicker(250 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case <-finished:
			emit(SendProgress{Run: run, Planned: n, Sent: sent.Load(), Failed: failed.Load(), Done: true})
			h.opts.Logger.Info("send finished", "run", run, "sent", sent.Load(), "failed", failed.Load())
			return
		case <-tick.C:
			emit(SendProgress{Sent: sent.Load(), Failed: failed.Load()})
		}
	}
}

// runSend publishes n comments over d with conc senders: comment i is due at start + i*d/n; each sender takes the
// next due comment, so at most conc publishes are in flight. A publish is retried (5 attempts, backoff) before it
// counts as failed; a failed comment was never stored by the queue.
func (h *HomePage) runSend(ctx context.Context, run, text string, conc int, d time.Duration, n int, sent, failed *atomic.Int64) {
	due := make(chan int)
	var wg sync.WaitGroup
	for range conc {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range due {
				if h.publish(ctx, run, text, i) {
					sent.Add(1)
					h.sent.Add(1)
				} else {
					failed.Add(1)
				}
			}
		}()
	}
	start := time.Now()
	step := d / time.Duration(n)
	for i := 0; i < n; i++ {
		if wait := time.Until(start.Add(time.Duration(i) * step)); wait > 0 {
			select {
			case <-ctx.Done():
			case <-time.After(wait):
			}
		}
		if ctx.Err() != nil {
			failed.Add(int64(n - i))
			break
		}
		select {
		case due <- i:
		case <-ctx.Done():
			failed.Add(int64(n - i))
			i = n
		}
	}
	close(due)
	wg.Wait()
}

func (h *HomePage) publish(ctx context.Context, run, text string, seq int) bool {
	id := fmt.Sprintf("%s-%d", run, seq)
	// The comment's trace starts here, with span "sender"; without a recording tracer the page still starts a
	// trace context of its own, so the processor's row carries a trace id either way.
	_, span := h.opts.Tracer.Start(ctx, SpanSender, trace.WithNewRoot(), trace.WithSpanKind(trace.SpanKindProducer),
		trace.WithAttributes(attribute.String("barrage.comment.id", id), attribute.String("barrage.run", run),
			attribute.String("messaging.operation.type", "send"), attribute.String("messaging.message.id", id)))
	defer span.End()
	tp := traceParentOf(span.SpanContext())
	if tp == "" {
		tp = NewTraceParent()
	} else {
		h.remember(id, span.SpanContext())
	}
	c := Comment{ID: id, Run: run, Seq: seq, Text: text, SentNs: time.Now().UnixNano(), TraceParent: tp}
	body, _ := json.Marshal(c)
	backoff := 100 * time.Millisecond
	for attempt := 1; ; attempt++ {
		err := h.opts.Publisher.Publish(ctx, Message{Key: c.ID, Body: body, TraceParent: tp})
		if err == nil {
			return true
		}
		if attempt == 5 || ctx.Err() != nil {
			h.opts.Logger.Warn("comment not published", "id", c.ID, "attempts", attempt, "err", err)
			span.SetStatus(codes.Error, err.Error())
			h.forget(id)
			return false
		}
		select {
		case <-ctx.Done():
			return false
		case <-time.After(backoff):
		}
		backoff *= 2
	}
}

func (h *HomePage) handleRun(w http.ResponseWriter, r *http.Request) {
	c, err := h.opts.Table.CountRun(r.Context(), r.PathValue("run"))
	if err != nil {
		http.Error(w, err.Error(), http.StatusServiceUnavailable)
		return
	}
	writeJSON(w, c)
}

// handleEvents streams results as server-sent events.
func (h *HomePage) handleEvents(w http.ResponseWriter, r *http.Request) {
	flusher, ok := w.(http.Flusher)
	if !ok {
		http.Error(w, "streaming unsupported", http.StatusInternalServerError)
		return
	}
	var since int64
	if v := r.Header.Get("Last-Event-ID"); v != "" {
		since, _ = strconv.ParseInt(v, 10, 64)
	} else if v := r.URL.Query().Get("since"); v != "" {
		since, _ = strconv.ParseInt(v, 10, 64)
	}
	ch := h.subscribe()
	defer h.unsubscribe(ch)
	w.Header().Set("Content-Type", "text/event-stream")
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("X-Accel-Buffering", "no")
	fmt.Fprintf(w, "retry: 1000\n\n")
	writeResult := func(res Result) {
		b, _ := json.Marshal(res)
		fmt.Fprintf(w, "id: %d\nevent: comment\ndata: %s\n\n", res.ProcessedNs, b)
	}
	if since > 0 { // replay what the client may have missed (it ignores ids it has)
		from := since - int64(lookback)
		for {
			rows, err := h.opts.Table.Since(r.Context(), from, pollPage)
			if err != nil {
				return
			}
			for _, res := range rows {
				writeResult(res)
			}
			if len(rows) < pollPage {
				break
			}
			from = rows[len(rows)-1].ProcessedNs + 1
		}
	}
	flusher.Flush()
	stats := time.NewTicker(time.Second)
	defer stats.Stop()
	sendStats := func() {
		n, err := h.opts.Table.Instances(r.Context(), time.Now().Add(-2*time.Second))
		if err != nil {
			return
		}
		fmt.Fprintf(w, "event: stats\ndata: {\"instances\":%d}\n\n", n)
		flusher.Flush()
	}
	sendStats()
	for {
		select {
		case <-r.Context().Done():
			return
		case <-h.done:
			return
		case res, ok := <-ch:
			if !ok { // too slow: the client reconnects with Last-Event-ID and gets the rest from the table
				return
			}
			writeResult(res)
			for more := true; more; { // batch what is queued into one flush
				select {
				case res, ok := <-ch:
					if !ok {
						flusher.Flush()
						return
					}
					writeResult(res)
				default:
					more = false
				}
			}
			flusher.Flush()
		case <-stats.C:
			sendStats()
		}
	}
}

func (h *HomePage) subscribe() chan Result {
	ch := make(chan Result, 4096)
	h.mu.Lock()
	defer h.mu.Unlock()
	h.subs[ch] = struct{}{}
	if !h.polling {
		h.polling = true
		go h.poll()
	}
	return ch
}

func (h *HomePage) unsubscribe(ch chan Result) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if _, ok := h.subs[ch]; ok {
		delete(h.subs, ch)
		close(ch)
	}
}

// poll reads new results from the table while anyone listens and hands each to every subscriber once. It reads
// again the last `lookback` of processed_ns (rows may commit after later-stamped ones) and skips ids it has seen.
func (h *HomePage) poll() {
	seen := map[string]int64{}
	cursor := time.Now().Add(-lookback).UnixNano()
	t := time.NewTicker(pollInterval)
	defer t.Stop()
	for {
		h.mu.Lock()
		if len(h.subs) == 0 {
			h.polling = false
			h.mu.Unlock()
			return
		}
		h.mu.Unlock()
		from := cursor - int64(lookback)
		for {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			rows, err := h.opts.Table.Since(ctx, from, pollPage)
			cancel()
			if err != nil {
				h.opts.Logger.Warn("reading results", "err", err)
				break
			}
			for _, res := range rows {
				if _, ok := seen[res.ID]; ok {
					continue
				}
				seen[res.ID] = res.ProcessedNs
				cursor = max(cursor, res.ProcessedNs)
				h.received(res)
			}
			if len(rows) < pollPage {
				break
			}
			from = rows[len(rows)-1].ProcessedNs
		}
		for id, ns := range seen { // forget what the next reads cannot return
			if ns < cursor-2*int64(lookback) {
				delete(seen, id)
			}
		}
		select {
		case <-h.done:
			return
		case <-t.C:
		}
	}
}

func (h *HomePage) broadcast(res Result) {
	h.mu.Lock()
	defer h.mu.Unlock()
	for ch := range h.subs {
		select {
		case ch <- res:
		default: // a subscriber that cannot keep up is dropped; its client reconnects and replays
			delete(h.subs, ch)
			close(ch)
		}
	}
}

// remember keeps a sender span until its comment comes back (bounded by maxPendingTraces).
func (h *HomePage) remember(id string, sc trace.SpanContext) {
	h.pendingMu.Lock()
	defer h.pendingMu.Unlock()
	if len(h.pending) < maxPendingTraces {
		h.pending[id] = sc
	}
}

// forget drops a comment's sender span and returns it.
func (h *HomePage) forget(id string) (trace.SpanContext, bool) {
	h.pendingMu.Lock()
	defer h.pendingMu.Unlock()
	sc, ok := h.pending[id]
	delete(h.pending, id)
	return sc, ok
}

// received hands a result read back from the table to the open pages, recording spans "receiver" (from the
// processor's stamp to the page's read) and "result" (the hand-off) in the comment's trace.
func (h *HomePage) received(res Result) {
	sc, ok := h.forget(res.ID)
	if !ok || !sc.IsValid() {
		h.broadcast(res)
		return
	}
	ctx := trace.ContextWithSpanContext(context.Background(), sc)
	attrs := trace.WithAttributes(attribute.String("barrage.comment.id", res.ID), attribute.String("barrage.run", res.Run),
		attribute.String("barrage.processor.instance", res.Instance))
	ctx, recv := h.opts.Tracer.Start(ctx, SpanReceiver, trace.WithSpanKind(trace.SpanKindConsumer), attrs,
		trace.WithTimestamp(time.Unix(0, res.ProcessedNs)))
	_, shown := h.opts.Tracer.Start(ctx, SpanResult, attrs)
	h.broadcast(res)
	shown.End()
	recv.End()
}
