package ratelog

import (
	"bytes"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	clocktesting "k8s.io/utils/clock/testing"
)

// lines collects what the wrapped handler writes.
type lines struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (l *lines) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.Write(p)
}

func (l *lines) get() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	s := strings.TrimSpace(l.buf.String())
	if s == "" {
		return nil
	}
	return strings.Split(s, "\n")
}

func newLogger(t *testing.T) (*slog.Logger, *Handler, *lines, *clocktesting.FakeClock) {
	t.Helper()
	out := &lines{}
	clk := clocktesting.NewFakeClock(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
	h := New(slog.NewTextHandler(out, &slog.HandlerOptions{ReplaceAttr: dropTime}), Options{Interval: 10 * time.Second, Clock: clk})
	return slog.New(h), h, out, clk
}

func dropTime(_ []string, a slog.Attr) slog.Attr {
	if a.Key == slog.TimeKey {
		return slog.Attr{}
	}
	return a
}

func TestFloodIsOneLinePerInterval(t *testing.T) {
	log, _, out, clk := newLogger(t)
	for i := range 1000 {
		log.Warn("closing connection: bad frame", "remote", i)
	}
	if got := out.get(); len(got) != 1 || !strings.Contains(got[0], "remote=0") {
		t.Fatalf("during the first interval: %q, want only the first record", got)
	}
	clk.Step(10 * time.Second) // the summary timer fires
	got := out.get()
	if len(got) != 2 || !strings.Contains(got[1], "remote=999") || !strings.Contains(got[1], "repeated=999") {
		t.Fatalf("after the interval: %q, want a summary of the 999 held back carrying the last one's attributes", got)
	}
	// Still flooding: one summary per interval, never a line per record.
	for range 3 {
		for i := range 50 {
			log.Warn("closing connection: bad frame", "remote", i)
		}
		clk.Step(10 * time.Second)
	}
	got = out.get()
	if len(got) != 5 {
		t.Fatalf("after three more intervals of flood: %d lines, want 5:\n%s", len(got), strings.Join(got, "\n"))
	}
	for _, l := range got[2:] {
		if !strings.Contains(l, "repeated=50") {
			t.Errorf("summary %q, want repeated=50", l)
		}
	}
	// Quiet for an interval: the next record is written at once again.
	clk.Step(10 * time.Second)
	log.Warn("closing connection: bad frame", "remote", "late")
	if got := out.get(); len(got) != 6 || strings.Contains(got[5], "repeated") || !strings.Contains(got[5], "remote=late") {
		t.Fatalf("after a quiet interval: %q", got)
	}
}

func TestKindsAreCountedApart(t *testing.T) {
	log, _, out, clk := newLogger(t)
	broker := log.With("component", "mq.broker")
	namesrv := log.With("component", "mq.namesrv")
	for range 10 {
		broker.Warn("bad frame")
		namesrv.Warn("bad frame")
		broker.Error("bad frame") // another level is another kind
		broker.Warn("write failed")
		broker.With("remote", "x").Warn("bad frame") // other With attributes: another kind
	}
	if got := out.get(); len(got) != 5 {
		t.Fatalf("first records of five kinds: %d lines:\n%s", len(got), strings.Join(got, "\n"))
	}
	clk.Step(10 * time.Second)
	got := out.get()
	if len(got) != 10 {
		t.Fatalf("with summaries: %d lines, want 10:\n%s", len(got), strings.Join(got, "\n"))
	}
	for _, l := range got[5:] {
		if !strings.Contains(l, "repeated=9") {
			t.Errorf("summary %q, want repeated=9", l)
		}
	}
}

func TestSingleRecordsPassUntouched(t *testing.T) {
	log, _, out, clk := newLogger(t)
	log.Info("started")
	clk.Step(11 * time.Second)
	log.Info("started")
	clk.Step(11 * time.Second)
	if got := out.get(); len(got) != 2 || strings.Contains(strings.Join(got, ""), "repeated") {
		t.Fatalf("records an interval apart: %q", got)
	}
}

func TestFlushWritesPendingCounts(t *testing.T) {
	log, h, out, clk := newLogger(t)
	for range 5 {
		log.Error("checkpoint failed", "err", "no space left on device")
	}
	h.Flush()
	got := out.get()
	if len(got) != 2 || !strings.Contains(got[1], "repeated=4") {
		t.Fatalf("after Flush: %q", got)
	}
	clk.Step(time.Minute) // the stopped timer writes nothing more
	if got := out.get(); len(got) != 2 {
		t.Fatalf("after the interval: %q", got)
	}
}

func TestEnabledFollowsInner(t *testing.T) {
	h := New(slog.NewTextHandler(&lines{}, &slog.HandlerOptions{Level: slog.LevelWarn}), Options{})
	if h.Enabled(t.Context(), slog.LevelInfo) || !h.Enabled(t.Context(), slog.LevelError) {
		t.Fatal("Enabled does not follow the wrapped handler's level")
	}
}

func TestManyKindsAreSwept(t *testing.T) {
	log, h, _, clk := newLogger(t)
	for i := range 3 * maxIdleKinds {
		log.With("conn", i).Info("hello")
		if i%maxIdleKinds == 0 {
			clk.Step(11 * time.Second)
		}
	}
	h.st.mu.Lock()
	n := len(h.st.kinds)
	h.st.mu.Unlock()
	if n > 2*maxIdleKinds {
		t.Fatalf("%d kinds remembered, want them swept", n)
	}
}

func TestConcurrentUse(t *testing.T) {
	log, h, out, clk := newLogger(t)
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 1000 {
				log.Warn("flood", "g", g)
			}
		}()
	}
	wg.Wait()
	clk.Step(10 * time.Second)
	h.Flush()
	got := out.get()
	if len(got) != 2 || !strings.Contains(got[1], "repeated=7999") {
		t.Fatalf("8000 concurrent records: %q", got)
	}
}

func TestBelowMinLevelPassesUntouched(t *testing.T) {
	out := &lines{}
	clk := clocktesting.NewFakeClock(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
	log := slog.New(New(slog.NewTextHandler(out, nil), Options{Clock: clk, MinLevel: slog.LevelWarn}))
	for i := range 5 {
		log.Info("auto-created topic", "topic", i)
		log.Warn("bad frame", "remote", i)
	}
	got := out.get()
	if n := len(got); n != 6 {
		t.Fatalf("%d lines, want the 5 Info lines and the first warning:\n%s", n, strings.Join(got, "\n"))
	}
}
