package store

import (
	"errors"
	"strings"
	"testing"
	"time"

	clocktesting "k8s.io/utils/clock/testing"

	"github.com/tide-run/tide/mq/internal/commitlog"
	"github.com/tide-run/tide/mq/message"
)

// TestHealthWhileDiskFull: Health reports the full disk from the first failed put, stays failing while the disk
// is full (the background probe fails too), and clears once space is back, without any put (the probe), or at
// the next successful put.
func TestHealthWhileDiskFull(t *testing.T) {
	ffs := commitlog.NewFaultFS(commitlog.OS{})
	clk := clocktesting.NewFakeClock(time.Unix(1_700_000_000, 0))
	s := open(t, Options{Dir: t.TempDir(), FS: ffs, Clock: clk})
	if _, _, err := s.Put([]*message.Message{msg("t", 0, 0, "")}); err != nil {
		t.Fatal(err)
	}
	if err := s.Health(); err != nil {
		t.Fatalf("healthy store: %v", err)
	}
	ffs.SetSpaceLeft(0)
	if _, _, err := s.Put([]*message.Message{msg("t", 0, 1, "")}); !errors.Is(err, ErrDiskFull) {
		t.Fatalf("put on a full disk: %v", err)
	}
	err := s.Health()
	if !errors.Is(err, ErrUnhealthy) || !errors.Is(err, ErrDiskFull) || !strings.Contains(err.Error(), "disk full since") {
		t.Fatalf("Health on a full disk: %v", err)
	}
	// Background rounds (checkpoint, probe) on the still-full disk keep it failing.
	for range 3 {
		clk.Step(500 * time.Millisecond)
		s.probeSpace() // what the background loop does each round; called here too so the test does not race it
	}
	if err := s.Health(); err == nil {
		t.Fatal("Health cleared while the disk is still full")
	}
	ffs.SetSpaceLeft(-1)
	// A background round started before space came back may still report its failure: probe until it is over
	// (no new round starts: the clock is fake).
	deadline := time.Now().Add(10 * time.Second)
	for s.probeSpace(); s.Health() != nil; s.probeSpace() {
		if time.Now().After(deadline) {
			t.Fatalf("Health after space came back (probe): %v", s.Health())
		}
		time.Sleep(10 * time.Millisecond)
	}

	// The next failure and a successful put.
	ffs.SetSpaceLeft(0)
	s.Put([]*message.Message{msg("t", 0, 1, "")})
	if s.Health() == nil {
		t.Fatal("second full disk not reported")
	}
	ffs.SetSpaceLeft(-1)
	if _, _, err := s.Put([]*message.Message{msg("t", 0, 1, "")}); err != nil {
		t.Fatal(err)
	}
	if err := s.Health(); err != nil {
		t.Fatalf("Health after a successful put: %v", err)
	}
}

// TestHealthAtTheDiskCap: MaxDiskBytes reached with only the active segment left refuses writes, and Health says
// so while it lasts.
func TestHealthAtTheDiskCap(t *testing.T) {
	s := open(t, Options{Dir: t.TempDir(), SegmentSize: 64 << 10, MaxDiskBytes: 1 << 10})
	var err error
	for i := 0; i < 100 && err == nil; i++ {
		_, _, err = s.Put([]*message.Message{msg("t", 0, i, "")})
	}
	if !errors.Is(err, ErrDiskFull) {
		t.Fatalf("puts past the cap: %v", err)
	}
	s.probeSpace()
	if h := s.Health(); !errors.Is(h, ErrUnhealthy) {
		t.Fatalf("Health at the cap: %v", h)
	}
}
