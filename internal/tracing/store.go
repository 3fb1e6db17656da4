package tracing

import (
	"context"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"

	"github.com/tide-run/tide/internal/tracing/traceapi"
)

// DefaultBufferSpans is how many finished spans the in-memory store keeps (TIDE_TRACE_BUFFER overrides it). A
// span of tide's costs well under 2 KiB held (a dozen short attributes), so the store stays under about 16 MiB.
const DefaultBufferSpans = 8192

// Limits applied to what the store keeps of one span, so a hostile or careless exporter (spans reach the store
// from tide itself and through Ingest) cannot make one entry large.
const (
	maxAttrs     = 64
	maxAttrValue = 512
	maxEvents    = 32
	maxLinks     = 16
	maxNameLen   = 256
)

// Store keeps the most recent finished spans in a fixed-size ring and indexes them by trace ID. It is an
// sdktrace.SpanProcessor (register it on a TracerProvider), the sink of tide's memory recorder (memory.go), and
// also takes spans decoded from OTLP (Ingest). Safe for concurrent use; mu guards every field below it.
//
// Invariants: ring has a fixed length (cap); next is the slot written next; seq numbers the spans put, so a
// slot's seq changes when it is overwritten; byTrace[id] is the slot of the newest span held of that trace, and
// each entry links to the slot of the previous span of its trace (prev), valid while that slot still has
// prevSeq. Evicting a slot (always the oldest span overall) therefore cuts the chains that reach it with no
// index update, and removes the trace from byTrace when it was the trace's last span held. Putting a span costs
// one map assignment and no allocation.
type Store struct {
	mu      sync.Mutex
	ring    []entry
	next    int
	full    bool
	seq     uint64
	byTrace map[trace.TraceID]int32
}

// entry holds a span as the SDK or the memory recorder handed it over (converted only when read, which keeps
// adding one cheap) or as already converted from OTLP.
type entry struct {
	ro      sdktrace.ReadOnlySpan
	ms      *memorySpan
	rec     *traceapi.Span
	tid     trace.TraceID
	seq     uint64 // 0 for an empty slot
	prevSeq uint64 // 0 when the span is the first of its trace put
	prev    int32
}

// NewStore returns a Store holding up to n spans (DefaultBufferSpans when n <= 0).
func NewStore(n int) *Store {
	if n <= 0 {
		n = DefaultBufferSpans
	}
	return &Store{ring: make([]entry, n), byTrace: map[trace.TraceID]int32{}}
}

// Capacity is the number of spans held at most.
func (s *Store) Capacity() int { return len(s.ring) }

// OnStart implements sdktrace.SpanProcessor.
func (s *Store) OnStart(context.Context, sdktrace.ReadWriteSpan) {}

// OnEnd implements sdktrace.SpanProcessor: the span is kept (a sampled one only).
func (s *Store) OnEnd(ro sdktrace.ReadOnlySpan) {
	sc := ro.SpanContext()
	if !sc.IsSampled() {
		return
	}
	s.put(entry{ro: ro, tid: sc.TraceID()})
}

// Shutdown implements sdktrace.SpanProcessor.
func (s *Store) Shutdown(context.Context) error { return nil }

// ForceFlush implements sdktrace.SpanProcessor.
func (s *Store) ForceFlush(context.Context) error { return nil }

// Add keeps a span that did not come from this process's SDK (see Ingest). Invalid trace IDs are ignored.
func (s *Store) Add(sp traceapi.Span) {
	tid, err := trace.TraceIDFromHex(sp.TraceID)
	if err != nil || !tid.IsValid() {
		return
	}
	bound(&sp)
	s.put(entry{rec: &sp, tid: tid})
}

func (s *Store) put(e entry) {
	s.mu.Lock()
	defer s.mu.Unlock()
	slot := int32(s.next)
	if s.full {
		if newest, ok := s.byTrace[s.ring[slot].tid]; ok && newest == slot {
			delete(s.byTrace, s.ring[slot].tid) // its last span held
		}
	}
	s.seq++
	e.seq, e.prevSeq = s.seq, 0
	if p, ok := s.byTrace[e.tid]; ok {
		e.prev, e.prevSeq = p, s.ring[p].seq
	}
	s.ring[slot] = e
	s.byTrace[e.tid] = slot
	s.next++
	if s.next == len(s.ring) {
		s.next, s.full = 0, true
	}
}

// entriesOf returns the spans held of tid, oldest first. s.mu is held.
func (s *Store) entriesOf(tid trace.TraceID) []entry {
	sl, ok := s.byTrace[tid]
	if !ok {
		return nil
	}
	var out []entry
	for {
		e := s.ring[sl]
		out = append(out, e)
		if e.prevSeq == 0 || s.ring[e.prev].seq != e.prevSeq {
			break
		}
		sl = e.prev
	}
	slices.Reverse(out)
	return out
}

// Trace returns the spans held for traceID (hex), in start order; ok is false when none is held.
func (s *Store) Trace(traceID string) (traceapi.Trace, bool) {
	tid, err := trace.TraceIDFromHex(strings.ToLower(traceID))
	if err != nil {
		return traceapi.Trace{}, false
	}
	s.mu.Lock()
	entries := s.entriesOf(tid)
	s.mu.Unlock()
	if len(entries) == 0 {
		return traceapi.Trace{}, false
	}
	out := traceapi.Trace{TraceID: tid.String(), Spans: make([]traceapi.Span, 0, len(entries))}
	for _, e := range entries {
		out.Spans = append(out.Spans, e.span())
	}
	sort.SliceStable(out.Spans, func(i, j int) bool { return out.Spans[i].Start.Before(out.Spans[j].Start) })
	return out, true
}

// Query selects traces for List.
type Query struct {
	// Attr, when set, keeps only traces with a span carrying this attribute; AttrValue, when set, also its value.
	Attr, AttrValue string
	// Name, when set, keeps only traces with a span of this name.
	Name string
	// Limit bounds the answer (default 50, at most 1000).
	Limit int
}

// List summarises the most recently ended traces matching q, newest first.
func (s *Store) List(q Query) []traceapi.Summary {
	if q.Limit <= 0 {
		q.Limit = 50
	}
	q.Limit = min(q.Limit, 1000)
	// Walk the ring from the newest span back, collecting trace IDs in order of their latest span.
	s.mu.Lock()
	n := len(s.ring)
	count := s.next
	if s.full {
		count = n
	}
	var order []trace.TraceID
	seen := map[trace.TraceID]bool{}
	matched := map[trace.TraceID]bool{}
	filtered := q.Attr != "" || q.Name != ""
	for i := 0; i < count; i++ {
		e := s.ring[(s.next-1-i+n)%n]
		if filtered && !matched[e.tid] && e.matches(q) {
			matched[e.tid] = true
		}
		if !seen[e.tid] {
			seen[e.tid] = true
			order = append(order, e.tid)
		}
	}
	var picked [][]entry
	for _, tid := range order {
		if filtered && !matched[tid] {
			continue
		}
		picked = append(picked, s.entriesOf(tid))
		if len(picked) == q.Limit {
			break
		}
	}
	s.mu.Unlock()
	out := make([]traceapi.Summary, 0, len(picked))
	for _, es := range picked {
		out = append(out, summarize(es))
	}
	return out
}

func summarize(es []entry) traceapi.Summary {
	sum := traceapi.Summary{TraceID: es[0].tid.String(), Spans: len(es)}
	held := map[string]bool{}
	spans := make([]traceapi.Span, len(es))
	for i, e := range es {
		spans[i] = e.span()
		held[spans[i].SpanID] = true
	}
	var end time.Time
	services := map[string]bool{}
	var rootStart time.Time
	for _, sp := range spans {
		if sum.Start.IsZero() || sp.Start.Before(sum.Start) {
			sum.Start = sp.Start
		}
		if sp.End.After(end) {
			end = sp.End
		}
		if sp.Status == "error" {
			sum.Errors++
		}
		if sp.Service != "" {
			services[sp.Service] = true
		}
		if (sp.ParentSpanID == "" || !held[sp.ParentSpanID]) && (sum.Root == "" || sp.Start.Before(rootStart)) {
			sum.Root, rootStart = sp.Name, sp.Start
		}
	}
	sum.Duration = end.Sub(sum.Start)
	for s := range services {
		sum.Services = append(sum.Services, s)
	}
	sort.Strings(sum.Services)
	return sum
}

func (e entry) matches(q Query) bool {
	if e.rec != nil {
		if q.Name != "" && e.rec.Name != q.Name {
			return false
		}
		if q.Attr == "" {
			return true
		}
		v, ok := e.rec.Attributes[q.Attr]
		return ok && (q.AttrValue == "" || v == q.AttrValue)
	}
	if e.ms != nil {
		if q.Name != "" && e.ms.name != q.Name {
			return false
		}
		if q.Attr == "" {
			return true
		}
		v, ok := e.ms.attr(q.Attr)
		return ok && (q.AttrValue == "" || valueMatches(v, q.AttrValue))
	}
	if q.Name != "" && e.ro.Name() != q.Name {
		return false
	}
	if q.Attr == "" {
		return true
	}
	for _, kv := range e.ro.Attributes() {
		if string(kv.Key) == q.Attr {
			return q.AttrValue == "" || valueMatches(kv.Value, q.AttrValue)
		}
	}
	return false
}

// valueMatches compares a value in its string form; a string slice (e.g. messaging.rocketmq.message.keys) matches
// when one of its elements does.
func valueMatches(v attribute.Value, want string) bool {
	if v.Type() == attribute.STRINGSLICE {
		for _, s := range v.AsStringSlice() {
			if s == want {
				return true
			}
		}
	}
	return v.Emit() == want
}

// span converts an entry to its wire form.
func (e entry) span() traceapi.Span {
	if e.rec != nil {
		return *e.rec
	}
	if e.ms != nil {
		return e.ms.span()
	}
	ro := e.ro
	sc := ro.SpanContext()
	sp := traceapi.Span{
		TraceID: sc.TraceID().String(), SpanID: sc.SpanID().String(), Name: ro.Name(),
		Kind: kindName(ro.SpanKind()), Start: ro.StartTime(), End: ro.EndTime(),
		Attributes: attrMap(ro.Attributes()),
	}
	if p := ro.Parent(); p.IsValid() {
		sp.ParentSpanID = p.SpanID().String()
	}
	if r := ro.Resource(); r != nil {
		if v, ok := r.Set().Value("service.name"); ok {
			sp.Service = v.Emit()
		}
	}
	switch st := ro.Status(); st.Code {
	case codes.Error:
		sp.Status, sp.StatusMessage = "error", st.Description
	case codes.Ok:
		sp.Status = "ok"
	default:
		sp.Status = "unset"
	}
	for _, ev := range ro.Events() {
		sp.Events = append(sp.Events, traceapi.Event{Name: ev.Name, Time: ev.Time, Attributes: attrMap(ev.Attributes)})
	}
	for _, l := range ro.Links() {
		sp.Links = append(sp.Links, traceapi.Link{TraceID: l.SpanContext.TraceID().String(), SpanID: l.SpanContext.SpanID().String()})
	}
	bound(&sp)
	return sp
}

func attrMap(kvs []attribute.KeyValue) map[string]string {
	if len(kvs) == 0 {
		return nil
	}
	m := make(map[string]string, len(kvs))
	for _, kv := range kvs {
		if kv.Valid() {
			m[string(kv.Key)] = kv.Value.Emit() // a later value of a key wins, as the SDK dedupes them
		}
	}
	return m
}

func kindName(k trace.SpanKind) string {
	switch k {
	case trace.SpanKindServer:
		return "server"
	case trace.SpanKindClient:
		return "client"
	case trace.SpanKindProducer:
		return "producer"
	case trace.SpanKindConsumer:
		return "consumer"
	default:
		return "internal"
	}
}

// bound trims a span to the store's limits.
func bound(sp *traceapi.Span) {
	sp.Name = truncate(sp.Name, maxNameLen)
	sp.StatusMessage = truncate(sp.StatusMessage, maxAttrValue)
	sp.Attributes = boundAttrs(sp.Attributes)
	if len(sp.Events) > maxEvents {
		sp.Events = sp.Events[:maxEvents]
	}
	for i := range sp.Events {
		sp.Events[i].Name = truncate(sp.Events[i].Name, maxNameLen)
		sp.Events[i].Attributes = boundAttrs(sp.Events[i].Attributes)
	}
	if len(sp.Links) > maxLinks {
		sp.Links = sp.Links[:maxLinks]
	}
}

func boundAttrs(m map[string]string) map[string]string {
	if len(m) == 0 {
		return m
	}
	out := make(map[string]string, min(len(m), maxAttrs))
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		if len(out) == maxAttrs {
			break
		}
		out[truncate(k, maxNameLen)] = truncate(m[k], maxAttrValue)
	}
	return out
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n]
}
