package ratelog

import (
	"context"
	"log/slog"
	"strings"
	"sync"
	"time"

	"k8s.io/utils/clock"
)

// DefaultInterval is how often a repeating kind of record is written when Options.Interval is zero.
const DefaultInterval = 10 * time.Second

// RepeatedKey is the attribute a summary line carries: how many records of its kind it stands for (held back
// during the interval; the line's other attributes are the last one's).
const RepeatedKey = "repeated"

// maxIdleKinds bounds the kinds remembered after their interval ended; beyond it they are swept.
const maxIdleKinds = 1024

// Options configure a Handler.
type Options struct {
	// Interval between lines of one kind. Default DefaultInterval (10s).
	Interval time.Duration
	// Clock for intervals and summary timers. Default the real clock; tests pass a fake clock.
	Clock clock.WithDelayedExecution
	// MinLevel: records below it pass untouched, e.g. slog.LevelWarn when Info lines are events worth a line each
	// ("auto-created topic") and floods come from warnings and errors. The zero value is slog.LevelInfo.
	MinLevel slog.Level
}

// Handler wraps another slog.Handler, rate-limiting each kind of record (see the package doc). Handlers derived
// with WithAttrs / WithGroup share one state, so a logger made once per connection is still counted as one kind
// per message. Safe for concurrent use.
type Handler struct {
	inner  slog.Handler
	prefix string // With/WithGroup attributes and groups, part of every kind's key
	st     *state
}

// state is shared by a Handler and every handler derived from it. mu guards kinds and every kind's fields.
type state struct {
	minLevel slog.Level
	interval time.Duration
	clock    clock.WithDelayedExecution
	mu       sync.Mutex
	kinds    map[string]*kind
}

// kind is one key's window: records arriving before windowEnd are held back and counted; a timer writes the
// summary at windowEnd when any were.
type kind struct {
	windowEnd time.Time
	held      int
	last      slog.Record  // the latest held-back record (cloned)
	out       slog.Handler // the inner handler that record was for
	armed     bool         // a summary timer is pending
	gen       uint64       // identifies the pending timer: a timer whose gen is stale (Flush ran) does nothing
}

// New wraps inner.
func New(inner slog.Handler, opts Options) *Handler {
	if opts.Interval <= 0 {
		opts.Interval = DefaultInterval
	}
	if opts.Clock == nil {
		opts.Clock = clock.RealClock{}
	}
	return &Handler{inner: inner, st: &state{minLevel: opts.MinLevel, interval: opts.Interval, clock: opts.Clock, kinds: map[string]*kind{}}}
}

// Logger is slog.New(New(l.Handler(), opts)): l's lines, rate-limited.
func Logger(l *slog.Logger, opts Options) *slog.Logger { return slog.New(New(l.Handler(), opts)) }

// Enabled defers to the wrapped handler.
func (h *Handler) Enabled(ctx context.Context, level slog.Level) bool {
	return h.inner.Enabled(ctx, level)
}

// WithAttrs returns a handler that adds attrs and shares this one's counts.
func (h *Handler) WithAttrs(attrs []slog.Attr) slog.Handler {
	var b strings.Builder
	b.WriteString(h.prefix)
	for _, a := range attrs {
		b.WriteString(a.String())
		b.WriteByte(0)
	}
	return &Handler{inner: h.inner.WithAttrs(attrs), prefix: b.String(), st: h.st}
}

// WithGroup returns a handler that opens a group and shares this one's counts.
func (h *Handler) WithGroup(name string) slog.Handler {
	return &Handler{inner: h.inner.WithGroup(name), prefix: h.prefix + "\x01" + name + "\x00", st: h.st}
}

// Handle writes r at once when it is the first of its kind in the current interval, and holds it back otherwise.
func (h *Handler) Handle(ctx context.Context, r slog.Record) error {
	if r.Level < h.st.minLevel {
		return h.inner.Handle(ctx, r)
	}
	key := h.prefix + "\x02" + r.Level.String() + "\x00" + r.Message
	st := h.st
	now := st.clock.Now()
	st.mu.Lock()
	k := st.kinds[key]
	if k == nil {
		if len(st.kinds) >= maxIdleKinds {
			st.sweep(now)
		}
		k = &kind{}
		st.kinds[key] = k
	}
	if k.held == 0 && !now.Before(k.windowEnd) {
		k.windowEnd = now.Add(st.interval)
		st.mu.Unlock()
		return h.inner.Handle(ctx, r)
	}
	k.held++
	k.last = r.Clone()
	k.out = h.inner
	arm := !k.armed
	var gen uint64
	if arm {
		k.armed = true
		k.gen++
		gen = k.gen
	}
	wait := max(k.windowEnd.Sub(now), 0)
	st.mu.Unlock()
	if arm {
		// Outside mu: a fake clock runs the callback inside Step while holding its own lock.
		st.clock.AfterFunc(wait, func() { st.summarize(key, gen) })
	}
	return nil
}

// summarize writes key's summary line (when records were held back) and starts its next interval, so a kind that
// keeps repeating is written once per interval.
func (st *state) summarize(key string, gen uint64) {
	st.mu.Lock()
	k := st.kinds[key]
	if k == nil || k.gen != gen {
		st.mu.Unlock()
		return
	}
	k.armed = false
	k.gen++
	r, out, n := k.last, k.out, k.held
	k.held, k.last, k.out = 0, slog.Record{}, nil
	if n > 0 {
		// The timer fires at windowEnd (no clock call here: a fake clock holds its lock while running it).
		k.windowEnd = k.windowEnd.Add(st.interval)
	}
	st.mu.Unlock()
	if n > 0 {
		r.AddAttrs(slog.Int(RepeatedKey, n))
		_ = out.Handle(context.Background(), r)
	}
}

// Flush writes every pending summary now (call it when the program stops, so no count is lost).
func (h *Handler) Flush() {
	st := h.st
	st.mu.Lock()
	type pending struct {
		key string
		gen uint64
	}
	var todo []pending
	for key, k := range st.kinds {
		if k.held > 0 {
			k.gen++ // the pending timer becomes a no-op
			todo = append(todo, pending{key, k.gen})
		}
	}
	st.mu.Unlock()
	for _, p := range todo {
		st.summarize(p.key, p.gen)
	}
}

// sweep forgets kinds whose interval ended with nothing held back. Caller holds mu.
func (st *state) sweep(now time.Time) {
	for key, k := range st.kinds {
		if k.held == 0 && !k.armed && !now.Before(k.windowEnd) {
			delete(st.kinds, key)
		}
	}
}
