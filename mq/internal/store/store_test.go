package store

import (
	"errors"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"testing"
	"time"

	clocktesting "k8s.io/utils/clock/testing"

	"github.com/tide-run/tide/mq/internal/commitlog"
	"github.com/tide-run/tide/mq/message"
)

func msg(topic string, q int32, i int, tag string) *message.Message {
	props := map[string]string{"UNIQ_KEY": fmt.Sprint(i)}
	if tag != "" {
		props["TAGS"] = tag
	}
	return &message.Message{Topic: topic, QueueID: q, Body: []byte(fmt.Sprintf("m%d", i)),
		Properties: message.FormatProperties(props), BornHost: netip.MustParseAddrPort("127.0.0.1:9")}
}

// open opens a store and registers the consistency check to run when the test ends.
func open(t *testing.T, opts Options) *Store {
	t.Helper()
	if opts.SegmentSize == 0 {
		opts.SegmentSize = 64 << 10
	}
	s, err := Open(opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := s.Check(); err != nil && !errors.Is(err, ErrClosed) {
			t.Errorf("consistency check: %v", err)
		}
		s.Close()
	})
	return s
}

func TestPutGetFilterAndReopen(t *testing.T) {
	dir := t.TempDir()
	s, err := Open(Options{Dir: dir, SegmentSize: 64 << 10})
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 3000; i++ {
		tag := "a"
		if i%3 == 0 {
			tag = "b"
		}
		if _, _, err := s.Put([]*message.Message{msg("t", int32(i%2), i, tag)}); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.Check(); err != nil {
		t.Fatal(err)
	}
	r, err := s.Get("t", 0, 0, 32, 1<<20, nil)
	if err != nil || r.Status != Found || len(r.Messages) != 32 || r.NextBegin != 32 || r.Max != 1500 {
		t.Fatalf("%v %+v", err, r.Status)
	}
	bh := message.TagsHash("b")
	r, _ = s.Get("t", 0, 0, 32, 1<<20, func(h int64) bool { return h == bh })
	for _, b := range r.Messages {
		m, _, _ := message.Decode(b)
		if message.Property(m.Properties, "TAGS") != "b" {
			t.Fatal("filter let through", m.Properties)
		}
	}
	if r, _ := s.Get("t", 0, 1500, 32, 1<<20, nil); r.Status != OffsetOverflowOne {
		t.Fatal(r.Status)
	}
	s.Close()
	s2 := open(t, Options{Dir: dir})
	if got := s2.MaxOffset("t", 1); got != 1500 {
		t.Fatalf("max after reopen %d", got)
	}
	if _, _, err := s2.Put([]*message.Message{msg("t", 1, 9999, "")}); err != nil {
		t.Fatal(err)
	}
}

func TestRecoveryRebuildsQueuesAfterCrash(t *testing.T) {
	dir := t.TempDir()
	s, err := Open(Options{Dir: dir, SegmentSize: 64 << 10, FlushMode: commitlog.FlushSync})
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 500; i++ {
		s.Put([]*message.Message{msg("t", 0, i, "")})
	}
	// Crash without a final checkpoint: the background loop may not have run; consume queue files may be stale.
	s.cl.Flush()
	close(s.stop)
	<-s.done
	s.cl.Close()
	for _, q := range s.queues {
		q.TruncateTo(100) // simulate lost index writes
		q.Close()
	}
	s2 := open(t, Options{Dir: dir})
	if got := s2.MaxOffset("t", 0); got != 500 {
		t.Fatalf("rebuilt max %d, want 500", got)
	}
}

func TestOffsetByTimeAndRetention(t *testing.T) {
	fc := clocktesting.NewFakeClock(time.Unix(1_700_000_000, 0))
	s := open(t, Options{Dir: t.TempDir(), SegmentSize: 16 << 10, Clock: fc, RetentionAge: time.Hour})
	var t1 int64
	for i := 0; i < 600; i++ {
		if i == 300 {
			fc.Step(time.Minute)
			t1 = fc.Now().UnixMilli()
		}
		s.Put([]*message.Message{msg("t", 0, i, "")})
	}
	if off, _ := s.OffsetByTime("t", 0, t1); off != 300 {
		t.Fatalf("offset by time %d", off)
	}
	if off, _ := s.OffsetByTime("t", 0, t1+time.Hour.Milliseconds()); off != 600 {
		t.Fatalf("future offset %d", off)
	}
	// Segments' mtimes are real time; retention age compares against the fake clock moved far ahead. The store's own
	// retention loop ticks on the same clock and may delete them first, so count segments, not Clean's return.
	before := len(s.cl.Segments())
	fc.SetTime(time.Now().Add(2 * time.Hour))
	if _, err := s.Clean(fc.Now()); err != nil {
		t.Fatal(err)
	}
	if after := len(s.cl.Segments()); before < 2 || after >= before {
		t.Fatalf("retention kept %d of %d segments", after, before)
	}
	if min := s.MinOffset("t", 0); min == 0 {
		t.Fatal("queue min did not move")
	}
	if r, _ := s.Get("t", 0, 0, 32, 1<<20, nil); r.Status != OffsetTooSmall || r.NextBegin != s.MinOffset("t", 0) {
		t.Fatalf("%+v", r.Status)
	}
}

func TestDiskFull(t *testing.T) {
	ffs := commitlog.NewFaultFS(commitlog.OS{})
	s := open(t, Options{Dir: t.TempDir(), FS: ffs})
	s.Put([]*message.Message{msg("t", 0, 0, "")})
	ffs.SetSpaceLeft(50)
	_, _, err := s.Put([]*message.Message{msg("t", 0, 1, "")})
	if !errors.Is(err, ErrDiskFull) {
		t.Fatalf("want disk full, got %v", err)
	}
	ffs.SetSpaceLeft(-1)
	if _, _, err := s.Put([]*message.Message{msg("t", 0, 2, "")}); err != nil {
		t.Fatal(err)
	}
	if s.MaxOffset("t", 0) != 2 {
		t.Fatal("failed put consumed a queue offset")
	}

	capped := open(t, Options{Dir: t.TempDir(), SegmentSize: 4096, MaxDiskBytes: 8192})
	var full error
	for i := 0; i < 500 && full == nil; i++ {
		_, _, full = capped.Put([]*message.Message{msg("t", 0, i, "")})
	}
	if full != nil {
		t.Fatalf("usage cap should delete oldest segments, got %v", full)
	}
}

func TestDeletedIndexIsRebuilt(t *testing.T) {
	dir := t.TempDir()
	s, err := Open(Options{Dir: dir, SegmentSize: 16 << 10})
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 300; i++ {
		s.Put([]*message.Message{msg("t", int32(i%3), i, "x")})
	}
	s.Close()
	if err := os.RemoveAll(filepath.Join(dir, "consumequeue")); err != nil {
		t.Fatal(err)
	}
	s2 := open(t, Options{Dir: dir, SegmentSize: 16 << 10})
	for q := int32(0); q < 3; q++ {
		if got := s2.MaxOffset("t", q); got != 100 {
			t.Fatalf("queue %d rebuilt to %d entries, want 100", q, got)
		}
	}
}
