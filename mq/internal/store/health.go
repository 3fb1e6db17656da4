package store

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"syscall"
	"time"
)

// ErrUnhealthy is wrapped by Health while the store refuses writes.
var ErrUnhealthy = errors.New("store refuses writes")

// probeSize is what the space probe writes: a record of a few KiB must fit, and a probe this small costs nothing.
const probeSize = 64 << 10

// diskFullState is a run of writes failing for lack of space.
type diskFullState struct {
	err   error
	since time.Time
}

// Health is nil while the store takes writes. It wraps ErrUnhealthy while the disk is full (a put, the
// checkpoint or the space probe failed with ENOSPC, or MaxDiskBytes is reached with nothing left to delete; it
// clears on the next successful put or probe, which the background loop runs every flush interval while the disk
// is full), and for good once the commit log is broken (a failed write that could not be undone).
func (s *Store) Health() error {
	if err := s.cl.Err(); err != nil {
		return fmt.Errorf("%w: %w", ErrUnhealthy, err)
	}
	if st := s.diskFull.Load(); st != nil {
		return fmt.Errorf("%w: disk full since %s: %w", ErrUnhealthy, st.since.UTC().Format(time.RFC3339), st.err)
	}
	return nil
}

func isNoSpace(err error) bool { return errors.Is(err, ErrDiskFull) || errors.Is(err, syscall.ENOSPC) }

// noteWriteErr records a write that failed for lack of space (other errors say nothing about space).
func (s *Store) noteWriteErr(err error) {
	if isNoSpace(err) && s.diskFull.Load() == nil {
		s.diskFull.CompareAndSwap(nil, &diskFullState{err: err, since: s.opts.Clock.Now()})
	}
}

// noteWriteOK clears the disk-full state after a successful put (one atomic load on the send path).
func (s *Store) noteWriteOK() {
	if s.diskFull.Load() != nil {
		s.diskFull.Store(nil)
	}
}

// probeSpace runs while the disk is full: it writes and removes a small file next to the commit log, and clears
// the state when that succeeds (and MaxDiskBytes leaves room), so readiness recovers when space is freed even if no
// producer tries again.
func (s *Store) probeSpace() {
	if s.diskFull.Load() == nil {
		return
	}
	if s.opts.MaxDiskBytes > 0 && s.cl.WriteOffset()-s.cl.MinOffset()+probeSize > s.opts.MaxDiskBytes && len(s.cl.Segments()) < 2 {
		return // the cap is reached and retention has nothing left to delete
	}
	path := filepath.Join(s.opts.Dir, ".space-probe")
	f, err := s.opts.FS.OpenFile(path, os.O_CREATE|os.O_RDWR|os.O_TRUNC, 0o600)
	if err != nil {
		return
	}
	_, werr := f.WriteAt(make([]byte, probeSize), 0)
	_ = f.Close()
	_ = s.opts.FS.Remove(path)
	if werr == nil {
		s.noteWriteOK()
	}
}
