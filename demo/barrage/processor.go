package barrage

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"sync/atomic"
	"time"

	cehttp "github.com/cloudevents/sdk-go/v2/protocol/http"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"
	"go.opentelemetry.io/otel/trace/noop"
)

// ProcessorOptions configure NewProcessor.
type ProcessorOptions struct {
	Table *Table
	// Instance names this processor instance in the rows it writes (the seed's POD_NAME).
	Instance string
	// Blocked words Filter masks (BlockedSet).
	Blocked map[string]bool
	// Work is the time one comment's write to table storage takes in the seed's deployment (a remote Tablestore
	// round trip); the processor holds the request that long, so containerConcurrency 2 makes a burst need several
	// instances, as it does there. Default 0.
	Work time.Duration
	// Now stamps processed_ns; default time.Now.
	Now func() time.Time
	// Tracer records span "process" in each comment's trace, as a child of the delivery that brought it. Nil: none.
	Tracer trace.Tracer
	Logger *slog.Logger
}

// Processor is the message-processing service's HTTP handler: POST / takes a comment CloudEvent (binary or
// structured), processes it and writes the result row; POST /dead-letter records a comment the Trigger gave up on;
// GET /healthz answers 200.
type Processor struct {
	opts                          ProcessorOptions
	mux                           *http.ServeMux
	processed, dups, rejected, dl atomic.Int64
}

// NewProcessor builds the handler.
func NewProcessor(opts ProcessorOptions) (*Processor, error) {
	if opts.Table == nil {
		return nil, errors.New("barrage processor: a Table is required")
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	if opts.Tracer == nil {
		opts.Tracer = noop.NewTracerProvider().Tracer("")
	}
	p := &Processor{opts: opts, mux: http.NewServeMux()}
	p.mux.HandleFunc("POST /{$}", p.handleComment)
	p.mux.HandleFunc("POST /dead-letter", p.handleDeadLetter)
	p.mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusOK) })
	return p, nil
}

func (p *Processor) ServeHTTP(w http.ResponseWriter, r *http.Request) { p.mux.ServeHTTP(w, r) }

// Stats are the processor's counters since it started.
type ProcessorStats struct{ Processed, Duplicates, Rejected, DeadLettered int64 }

// Stats returns the counters.
func (p *Processor) Stats() ProcessorStats {
	return ProcessorStats{p.processed.Load(), p.dups.Load(), p.rejected.Load(), p.dl.Load()}
}

// handleComment: 202 once the row is stored (or was already); 400 for a comment that can never be processed (the
// Trigger does not retry it and dead-letters it); 500 when the table cannot be written (retried).
func (p *Processor) handleComment(w http.ResponseWriter, r *http.Request) {
	r.Body = http.MaxBytesReader(w, r.Body, MaxMessageBytes+8192)
	ev, err := cehttp.NewEventFromHTTPRequest(r)
	if err != nil {
		p.rejected.Add(1)
		http.Error(w, "not a CloudEvent: "+err.Error(), http.StatusBadRequest)
		return
	}
	c, err := ParseComment(ev.Data())
	if err != nil {
		p.rejected.Add(1)
		p.opts.Logger.Warn("rejecting a malformed comment", "event", ev.ID(), "err", err)
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	// The trace context: the HTTP request's (the Trigger's delivery, when tracing propagates it), else the
	// message's property or record header as the RocketMQSource or KafkaSource mapped it, else the comment's own.
	tp := r.Header.Get("traceparent")
	if !ValidTraceParent(tp) {
		if v, ok := ev.Extensions()["rocketmqheadertraceparent"].(string); ok && ValidTraceParent(v) {
			tp = v
		} else if v, ok := ev.Extensions()["kafkaheadertraceparent"].(string); ok && ValidTraceParent(v) {
			tp = v // a KafkaSource maps the record's traceparent header so
		} else {
			tp = c.TraceParent
		}
	}
	c.TraceParent = tp
	_, span := p.opts.Tracer.Start(contextFrom(r.Context(), tp), SpanProcess, trace.WithSpanKind(trace.SpanKindServer),
		trace.WithAttributes(attribute.String("barrage.comment.id", c.ID), attribute.String("barrage.run", c.Run),
			attribute.String("barrage.processor.instance", p.opts.Instance)))
	defer span.End()
	res := Process(c, p.opts.Blocked)
	span.SetAttributes(attribute.Int("barrage.words.filtered", res.Filtered))
	if p.opts.Work > 0 {
		select {
		case <-time.After(p.opts.Work):
		case <-r.Context().Done():
			http.Error(w, "cancelled", http.StatusServiceUnavailable)
			return
		}
	}
	res.ProcessedNs = p.opts.Now().UnixNano()
	res.Instance = p.opts.Instance
	inserted, err := p.opts.Table.Save(r.Context(), res)
	if err != nil {
		p.opts.Logger.Error("cannot store a comment", "id", c.ID, "err", err)
		span.SetStatus(codes.Error, err.Error())
		http.Error(w, "table storage: "+err.Error(), http.StatusInternalServerError)
		return
	}
	if inserted {
		p.processed.Add(1)
	} else {
		p.dups.Add(1)
	}
	w.WriteHeader(http.StatusAccepted)
}

// handleDeadLetter records a dead-lettered comment event (best effort on its id and run) and answers 202.
func (p *Processor) handleDeadLetter(w http.ResponseWriter, r *http.Request) {
	r.Body = http.MaxBytesReader(w, r.Body, MaxMessageBytes+8192)
	ev, err := cehttp.NewEventFromHTTPRequest(r)
	if err != nil {
		http.Error(w, "not a CloudEvent: "+err.Error(), http.StatusBadRequest)
		return
	}
	var loose struct {
		ID  string `json:"id"`
		Run string `json:"run"`
	}
	_ = json.Unmarshal(ev.Data(), &loose)
	if len(loose.ID) > 200 {
		loose.ID = loose.ID[:200]
	}
	if len(loose.Run) > 200 {
		loose.Run = loose.Run[:200]
	}
	code := fmt.Sprint(ev.Extensions()["knativeerrorcode"])
	if len(code) > 20 {
		code = code[:20]
	}
	if err := p.opts.Table.SaveDeadLetter(r.Context(), ev.Source()+"/"+ev.ID(), loose.ID, loose.Run, code, p.opts.Now()); err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	p.dl.Add(1)
	w.WriteHeader(http.StatusAccepted)
}

// Serve serves h on addr until ctx ends, then drains in-flight requests for up to grace. ready, when not nil,
// receives the bound address.
func Serve(ctx context.Context, addr string, h http.Handler, grace time.Duration, ready func(addr string)) error {
	ln, err := (&net.ListenConfig{}).Listen(ctx, "tcp", addr)
	if err != nil {
		return fmt.Errorf("listen on %s: %w", addr, err)
	}
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second}
	if ready != nil {
		ready(ln.Addr().String())
	}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.Background(), grace)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil {
		return fmt.Errorf("drain: %w", err)
	}
	return nil
}
