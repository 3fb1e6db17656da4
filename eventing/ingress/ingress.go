package ingress

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"mime"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	cebinding "github.com/cloudevents/sdk-go/v2/binding"
	"github.com/cloudevents/sdk-go/v2/binding/spec"
	"github.com/cloudevents/sdk-go/v2/event"
	cehttp "github.com/cloudevents/sdk-go/v2/protocol/http"
	"github.com/cloudevents/sdk-go/v2/types"
	"go.opentelemetry.io/otel/trace"
	"k8s.io/utils/clock"

	"github.com/tide-run/tide/eventing/binding"
	"github.com/tide-run/tide/eventing/bus"
	"github.com/tide-run/tide/eventing/contract"
)

// Extension attribute names the broker manages (the first two are the Broker contract's, see eventing/contract).
const (
	ArrivalTimeExtension = contract.ArrivalTimeExtension
	TTLExtension         = contract.TTLExtension
	// PartitionKeyExtension (CloudEvents partitioning extension) picks the
	// RocketMQ queue; without it the event source does. Events with the same
	// key stay in order for Triggers with ordered delivery.
	PartitionKeyExtension = "partitionkey"
	// DefaultTTL is the TTL given to events entering without one.
	DefaultTTL int32 = 255
)

// Sentinel errors of Publish; the HTTP handler maps them to status codes.
var (
	ErrUnknownBroker  = errors.New("unknown broker")            // 404
	ErrBrokerNotReady = errors.New("broker not ready")          // 503
	ErrInvalidEvent   = contract.ErrInvalidEvent                // 400
	ErrTTLExpired     = contract.ErrTTLExpired                  // 400
	ErrNotStored      = errors.New("event could not be stored") // 503
	ErrInvalidOptions = errors.New("invalid ingress options")
)

// Broker is what the ingress needs to know about a Broker.
type Broker struct {
	// Topic is the RocketMQ topic holding the Broker's events.
	Topic string
	// Ready is false while the Broker is being set up or is failing.
	Ready bool
}

// TopicFor is the RocketMQ topic tide uses for Broker namespace/name:
// "tide-broker-<namespace>-<name>", with characters RocketMQ does not allow in
// topic names (anything but letters, digits, '-' and '_') replaced by '_'.
// Namespaces are DNS labels (no '.') and Kubernetes names never contain '_',
// so the first '_' separates namespace from name and distinct Brokers get
// distinct topics.
func TopicFor(namespace, name string) string {
	clean := func(s string) string {
		return strings.Map(func(r rune) rune {
			if r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_' {
				return r
			}
			return '_'
		}, s)
	}
	return "tide-broker-" + clean(namespace) + "_" + clean(name)
}

// Brokers resolves namespace/name to a Broker. The lead backs it with the
// control-plane store. Implementations must be safe for concurrent use.
type Brokers interface {
	Broker(namespace, name string) (Broker, bool)
}

// BrokersFunc adapts a function to Brokers.
type BrokersFunc func(namespace, name string) (Broker, bool)

// Broker implements Brokers.
func (f BrokersFunc) Broker(namespace, name string) (Broker, bool) { return f(namespace, name) }

// Options configure New.
type Options struct {
	Bus     bus.Bus // required
	Brokers Brokers // required
	// Clock stamps knativearrivaltime. Default: the real clock.
	Clock clock.PassiveClock
	// Logger; default slog.Default(). A component attribute is added.
	Logger *slog.Logger
	// MaxBodyBytes caps a request body. Default 4 MiB (RocketMQ's default
	// maximum message size).
	MaxBodyBytes int64
	// DefaultTTL for events without knativebrokerttl. Default 255.
	DefaultTTL int32
	// TracerProvider records a server span per request and a producer span per stored event (tracing.go). Nil:
	// none, and events keep the distributed-tracing extension they came with.
	TracerProvider trace.TracerProvider
}

// Ingress is the broker ingress. Safe for concurrent use.
type Ingress struct {
	opts   Options
	log    *slog.Logger
	tracer trace.Tracer
	// stats holds *brokerCounters per "namespace/name" of a known Broker.
	stats sync.Map
	// reqMetrics, when set, records every request (metrics.go).
	reqMetrics atomic.Pointer[RequestMetrics]
}

// BrokerStats are a Broker's ingress counters since this process started.
type BrokerStats struct {
	// Accepted: events stored (answered 202, or Publish returned nil).
	Accepted int64 `json:"accepted"`
	// Rejected: events refused as invalid or out of TTL (400).
	Rejected int64 `json:"rejected"`
	// Failed: events that could not be stored (503); the sender retries.
	Failed int64 `json:"failed"`
}

type brokerCounters struct{ accepted, rejected, failed atomic.Int64 }

func (in *Ingress) counters(namespace, name string) *brokerCounters {
	key := namespace + "/" + name
	if c, ok := in.stats.Load(key); ok {
		return c.(*brokerCounters)
	}
	c, _ := in.stats.LoadOrStore(key, &brokerCounters{})
	return c.(*brokerCounters)
}

// Stats returns a Broker's ingress counters (zero for a Broker that has seen
// no traffic).
func (in *Ingress) Stats(namespace, name string) BrokerStats {
	c, ok := in.stats.Load(namespace + "/" + name)
	if !ok {
		return BrokerStats{}
	}
	bc := c.(*brokerCounters)
	return BrokerStats{Accepted: bc.accepted.Load(), Rejected: bc.rejected.Load(), Failed: bc.failed.Load()}
}

// count records the outcome of n events for a known Broker.
func (in *Ingress) count(namespace, name string, n int, err error) {
	c := in.counters(namespace, name)
	switch {
	case err == nil:
		c.accepted.Add(int64(n))
	case errors.Is(err, ErrInvalidEvent), errors.Is(err, ErrTTLExpired):
		c.rejected.Add(int64(n))
	default:
		c.failed.Add(int64(n))
	}
}

// New validates options and returns an Ingress.
func New(opts Options) (*Ingress, error) {
	if opts.Bus == nil {
		return nil, fmt.Errorf("%w: Bus: required", ErrInvalidOptions)
	}
	if opts.Brokers == nil {
		return nil, fmt.Errorf("%w: Brokers: required", ErrInvalidOptions)
	}
	if opts.Clock == nil {
		opts.Clock = clock.RealClock{}
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	if opts.MaxBodyBytes <= 0 {
		opts.MaxBodyBytes = 4 << 20
	}
	if opts.DefaultTTL <= 0 {
		opts.DefaultTTL = DefaultTTL
	}
	return &Ingress{opts: opts, log: opts.Logger.With("component", "broker-ingress"), tracer: newTracer(opts.TracerProvider)}, nil
}

// Publish stores e in the Broker namespace/name with exactly the semantics of
// an HTTP POST: validation, TTL handling, arrival time. It returns nil once the
// event is durably stored. e is not modified.
func (in *Ingress) Publish(ctx context.Context, namespace, name string, e event.Event) error {
	b, err := in.lookup(namespace, name)
	if err != nil {
		return err
	}
	sctx, span := in.startSend(ctx, &e, namespace, name, b.Topic, trace.SpanContextFromContext(ctx).IsValid())
	m, err := in.prepare(sctx, &e, false)
	if err == nil {
		m.Topic = b.Topic
		err = in.store(ctx, m)
	}
	endSend(span, err)
	in.count(namespace, name, 1, err)
	return err
}

func (in *Ingress) lookup(namespace, name string) (Broker, error) {
	b, ok := in.opts.Brokers.Broker(namespace, name)
	if !ok {
		return Broker{}, fmt.Errorf("%w: %s/%s", ErrUnknownBroker, namespace, name)
	}
	if !b.Ready || b.Topic == "" {
		return Broker{}, fmt.Errorf("%w: %s/%s", ErrBrokerNotReady, namespace, name)
	}
	return b, nil
}

// prepare validates, stamps and encodes one event. It works on a copy unless owned says the caller hands orig
// over (events ServeHTTP just parsed, which nobody else sees): the stamps then go on orig itself.
// sctx carries the event's producer span: the distributed-tracing extension and the message's traceparent
// property are set to it.
func (in *Ingress) prepare(sctx context.Context, orig *event.Event, owned bool) (*bus.Message, error) {
	e := orig
	if !owned {
		c := orig.Clone()
		e = &c
	}
	if err := e.Validate(); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInvalidEvent, err)
	}
	// Extensions() copies the map: take the copy once (before the stamps below, which touch neither the TTL
	// read here nor the partition key).
	exts := e.Extensions()
	ttl := in.opts.DefaultTTL
	if raw, ok := exts[TTLExtension]; ok {
		n, err := types.ToInteger(raw)
		if err != nil {
			return nil, fmt.Errorf("%w: %s: %w", ErrInvalidEvent, TTLExtension, err)
		}
		ttl = max(n-1, 0)
	}
	if ttl <= 0 {
		return nil, fmt.Errorf("%w: %s reached 0 (a reply loop?)", ErrTTLExpired, TTLExtension)
	}
	e.SetExtension(TTLExtension, ttl)
	e.SetExtension(ArrivalTimeExtension, in.opts.Clock.Now().UTC().Format(time.RFC3339Nano))
	setTraceContext(sctx, e)
	body, props, err := binding.Encode(e)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInvalidEvent, err)
	}
	injectMessage(sctx, props)
	key := e.Source()
	if pk, ok := exts[PartitionKeyExtension]; ok {
		if s, err := types.Format(pk); err == nil && s != "" {
			key = s
		}
	}
	return &bus.Message{Body: body, Properties: props, ShardingKey: key}, nil
}

func (in *Ingress) store(ctx context.Context, m *bus.Message) error {
	if err := in.opts.Bus.Send(ctx, m); err != nil {
		return fmt.Errorf("%w: %w", ErrNotStored, err)
	}
	return nil
}

// ServeHTTP implements http.Handler for /<namespace>/<broker>.
func (in *Ingress) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if m := in.reqMetrics.Load(); m != nil {
		sw := &statusWriter{ResponseWriter: w}
		defer m.observe(in, sw, r, time.Now())
		w = sw
	}
	if r.Method != http.MethodPost {
		in.serve(w, r, nil)
		return
	}
	sr, done := in.startRequest(w, r)
	in.serve(sr, r.WithContext(sr.ctx), sr)
	done()
}

func (in *Ingress) serve(w http.ResponseWriter, r *http.Request, sr *spanRecorder) {
	h := w.Header()
	h.Set("Allow", "POST, OPTIONS")
	switch r.Method {
	case http.MethodOptions:
		// CloudEvents HTTP webhook abuse protection: we accept any origin at any rate.
		h.Set("WebHook-Allowed-Origin", "*")
		h.Set("WebHook-Allowed-Rate", "*")
		w.WriteHeader(http.StatusOK)
		return
	case http.MethodPost:
	default:
		http.Error(w, "method not allowed: use POST", http.StatusMethodNotAllowed)
		return
	}
	path := strings.TrimSuffix(r.URL.Path, "/")
	if path == "" {
		http.Error(w, "not found: post to /<namespace>/<broker>", http.StatusNotFound)
		return
	}
	parts := strings.Split(strings.TrimPrefix(path, "/"), "/")
	if len(parts) != 2 || parts[0] == "" || parts[1] == "" {
		http.Error(w, "malformed path: want /<namespace>/<broker>", http.StatusBadRequest)
		return
	}
	b, err := in.lookup(parts[0], parts[1])
	if err != nil {
		in.writeError(w, err)
		return
	}
	r.Body = http.MaxBytesReader(w, r.Body, in.opts.MaxBodyBytes)
	events, err := readEvents(r)
	if err != nil {
		in.counters(parts[0], parts[1]).rejected.Add(1)
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			http.Error(w, fmt.Sprintf("request body larger than %d bytes", in.opts.MaxBodyBytes), http.StatusRequestEntityTooLarge)
			return
		}
		http.Error(w, "cannot read a CloudEvent from the request: "+err.Error(), http.StatusBadRequest)
		return
	}
	// Validate every event of a batch before storing any, so a bad batch
	// changes nothing.
	msgs := make([]*bus.Message, 0, len(events))
	spans := make([]trace.Span, 0, len(events))
	defer func() {
		for _, sp := range spans {
			sp.End() // what endSend did not end: a batch cut short (no-op on ended spans)
		}
	}()
	for i := range events {
		sctx, span := in.startSend(r.Context(), &events[i], parts[0], parts[1], b.Topic, sr != nil && sr.fromHeader)
		spans = append(spans, span)
		m, err := in.prepare(sctx, &events[i], true)
		if err != nil {
			if len(events) > 1 {
				err = fmt.Errorf("batch event %d: %w", i, err)
			}
			endSend(span, err)
			in.count(parts[0], parts[1], len(events), err)
			in.writeError(w, err)
			return
		}
		m.Topic = b.Topic
		msgs = append(msgs, m)
	}
	for i, m := range msgs {
		err := in.store(r.Context(), m)
		endSend(spans[i], err)
		if err != nil {
			// Earlier events of a batch may be stored; the sender's retry
			// duplicates them (at-least-once).
			in.count(parts[0], parts[1], i, nil)
			in.count(parts[0], parts[1], len(msgs)-i, err)
			in.log.Warn("storing event failed", "namespace", parts[0], "broker", parts[1], "err", err)
			in.writeError(w, err)
			return
		}
	}
	in.count(parts[0], parts[1], len(msgs), nil)
	w.WriteHeader(http.StatusAccepted)
}

// isBatch reports whether a content type is the JSON batch format, with or
// without parameters (sdk-go's IsHTTPBatch wants an exact match, which a
// "; charset=utf-8" defeats).
func isBatch(contentType string) bool {
	mt, _, err := mime.ParseMediaType(contentType)
	return err == nil && mt == event.ApplicationCloudEventsBatchJSON
}

// readEvents parses one event (binary or structured) or a batch.
func readEvents(r *http.Request) ([]event.Event, error) {
	if isBatch(r.Header.Get("Content-Type")) {
		body, err := io.ReadAll(r.Body)
		if err != nil {
			return nil, err
		}
		var evs []event.Event
		if err := json.Unmarshal(body, &evs); err != nil {
			return nil, fmt.Errorf("batch: %w", err)
		}
		if len(evs) == 0 {
			return nil, errors.New("batch: no events")
		}
		return evs, nil
	}
	msg := cehttp.NewMessageFromHttpRequest(r)
	defer func() { _ = msg.Finish(nil) }()
	if msg.ReadEncoding() == cebinding.EncodingUnknown {
		// The SDK reads a binary-mode request with a spec version it does not know as no CloudEvent at all; say
		// which it is, as Knative's broker does, rather than claim the header is missing.
		if v := r.Header.Get("Ce-Specversion"); v != "" {
			return nil, fmt.Errorf("unsupported ce-specversion %q: want one of %s", v, strings.Join(supportedSpecVersions(), ", "))
		}
		return nil, errors.New("no ce-specversion header and no CloudEvents content type")
	}
	e, err := cebinding.ToEvent(r.Context(), msg)
	if err != nil {
		return nil, err
	}
	return []event.Event{*e}, nil
}

func (in *Ingress) writeError(w http.ResponseWriter, err error) {
	code := http.StatusInternalServerError
	switch {
	case errors.Is(err, ErrUnknownBroker):
		code = http.StatusNotFound
	case errors.Is(err, ErrInvalidEvent), errors.Is(err, ErrTTLExpired):
		code = http.StatusBadRequest
	case errors.Is(err, ErrBrokerNotReady), errors.Is(err, ErrNotStored):
		code = http.StatusServiceUnavailable
	}
	http.Error(w, err.Error(), code)
}

// supportedSpecVersions are the CloudEvents versions the SDK decodes, newest first.
func supportedSpecVersions() []string {
	var vs []string
	for _, v := range spec.VS.Versions() {
		vs = append(vs, v.String())
	}
	return vs
}
