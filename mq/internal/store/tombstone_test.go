package store

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	clocktesting "k8s.io/utils/clock/testing"

	"github.com/tide-run/tide/mq/message"
)

// queueBodies reads queue (topic, q) from its min and returns the bodies.
func queueBodies(t *testing.T, s *Store, topic string, q int32) []string {
	t.Helper()
	r, err := s.Get(topic, q, s.MinOffset(topic, q), 1000, 1<<20, nil)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, b := range r.Messages {
		m, _, err := message.Decode(b)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, string(m.Body))
	}
	return out
}

// TestTopicDeletedAndCreatedAgain: a topic deleted and created again under the same name holds only its new
// messages, and keeps holding only them through a crash that rebuilds its queue from the checkpoint and through a
// rebuild of every queue from the whole log (the deleted incarnation's records stay in the log until retention
// but never come back). Check (at cleanup) holds throughout.
func TestTopicDeletedAndCreatedAgain(t *testing.T) {
	dir := t.TempDir()
	s, err := Open(Options{Dir: dir, SegmentSize: 64 << 10})
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 10; i++ {
		if _, _, err := s.Put([]*message.Message{msg("t", 0, i, "")}); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.DeleteTopic("t"); err != nil {
		t.Fatal(err)
	}
	for i := 100; i < 103; i++ {
		if _, _, err := s.Put([]*message.Message{msg("t", 0, i, "")}); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.Check(); err != nil {
		t.Fatalf("after delete and create: %v", err)
	}
	want := []string{"m100", "m101", "m102"}
	if got := queueBodies(t, s, "t", 0); len(got) != 3 || got[0] != want[0] || got[2] != want[2] {
		t.Fatalf("queue after create: %v, want %v", got, want)
	}
	s.Close()

	// Every queue gone (first start after the index was deleted): the rebuild from the whole log skips the old
	// incarnation.
	if err := os.RemoveAll(filepath.Join(dir, "consumequeue")); err != nil {
		t.Fatal(err)
	}
	s2 := open(t, Options{Dir: dir, SegmentSize: 64 << 10})
	if got := queueBodies(t, s2, "t", 0); len(got) != 3 || got[0] != "m100" {
		t.Fatalf("queue after a rebuild from the whole log: %v, want %v", got, want)
	}
	if got := s2.MaxOffset("t", 0); got != 3 {
		t.Fatalf("max offset %d, want 3", got)
	}
}

// TestTombstonesGoWithRetention: once retention has removed every record of the deleted incarnation, its tombstone
// is dropped (the file does not grow with every topic ever deleted).
func TestTombstonesGoWithRetention(t *testing.T) {
	fc := clocktesting.NewFakeClock(time.Now())
	dir := t.TempDir()
	s := open(t, Options{Dir: dir, SegmentSize: 16 << 10, Clock: fc, RetentionAge: time.Hour})
	for i := 0; i < 300; i++ {
		s.Put([]*message.Message{msg("gone", 0, i, "")})
	}
	if err := s.DeleteTopic("gone"); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 300; i++ {
		s.Put([]*message.Message{msg("kept", 0, i, "")})
	}
	s.mu.Lock()
	_, had := s.tombs["gone"]
	s.mu.Unlock()
	if !had {
		t.Fatal("no tombstone for the deleted topic")
	}
	fc.SetTime(time.Now().Add(2 * time.Hour))
	if _, err := s.Clean(fc.Now()); err != nil {
		t.Fatal(err)
	}
	s.mu.Lock()
	_, still := s.tombs["gone"]
	s.mu.Unlock()
	if still {
		t.Fatalf("tombstone kept after retention reached %d", s.cl.MinOffset())
	}
	b, err := os.ReadFile(filepath.Join(dir, "deleted-topics.json"))
	if err != nil || string(b) != "{}" {
		t.Fatalf("deleted-topics.json: %q %v", b, err)
	}
}
