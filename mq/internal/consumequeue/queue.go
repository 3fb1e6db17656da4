package consumequeue

import (
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"sync"

	"github.com/tide-run/tide/mq/internal/commitlog"
)

// EntrySize is the size of one entry.
const EntrySize = 20

// ErrGap is returned when an entry would leave a hole.
var ErrGap = errors.New("consumequeue: entry would leave a gap")

// Entry locates one message.
type Entry struct {
	Pos     int64 // commit-log offset
	Size    int32 // message size (without the log's CRC trailer)
	TagHash int64
}

// pendingLimit is how many bytes of new entries are kept in memory before they are written to the file. Entries
// are derived data (recovery rebuilds them from the commit log above the checkpoint, and Sync writes them before
// a checkpoint is taken), so buffering them saves a write system call per message without risking anything.
const pendingLimit = 64 << 10

// Queue is one topic-queue index file. Entries [0, written) are in the file; [written, count) in pending.
type Queue struct {
	f    commitlog.File
	path string

	mu      sync.RWMutex // guards count, written, pending, min, dirty
	count   int64
	written int64
	pending []byte
	min     int64
	dirty   bool
}

// Open opens or creates the queue file at path.
func Open(fs commitlog.FS, path string) (*Queue, error) {
	f, err := fs.OpenFile(path, os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return nil, fmt.Errorf("consumequeue: %w", err)
	}
	size, err := f.Size()
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("consumequeue: %w", err)
	}
	q := &Queue{f: f, path: path, count: size / EntrySize, written: size / EntrySize}
	if size%EntrySize != 0 {
		if err := f.Truncate(q.count * EntrySize); err != nil {
			f.Close()
			return nil, fmt.Errorf("consumequeue: cut partial entry: %w", err)
		}
	}
	return q, nil
}

// Path is the file path.
func (q *Queue) Path() string { return q.path }

// Put writes entry at queue offset off; off may rewrite an existing entry (recovery) or append (off == Count()).
func (q *Queue) Put(off int64, e Entry) error {
	q.mu.Lock()
	defer q.mu.Unlock()
	if off > q.count {
		return fmt.Errorf("%w: offset %d, count %d (%s)", ErrGap, off, q.count, q.path)
	}
	var b [EntrySize]byte
	binary.BigEndian.PutUint64(b[:], uint64(e.Pos))
	binary.BigEndian.PutUint32(b[8:], uint32(e.Size))
	binary.BigEndian.PutUint64(b[12:], uint64(e.TagHash))
	q.dirty = true
	switch {
	case off < q.written:
		if _, err := q.f.WriteAt(b[:], off*EntrySize); err != nil {
			return fmt.Errorf("consumequeue: write: %w", err)
		}
		return nil
	case off < q.count:
		copy(q.pending[(off-q.written)*EntrySize:], b[:])
		return nil
	}
	q.pending = append(q.pending, b[:]...)
	q.count++
	if len(q.pending) >= pendingLimit {
		return q.writePendingLocked()
	}
	return nil
}

// writePendingLocked writes buffered entries to the file. Caller holds q.mu.
func (q *Queue) writePendingLocked() error {
	if len(q.pending) == 0 {
		return nil
	}
	if _, err := q.f.WriteAt(q.pending, q.written*EntrySize); err != nil {
		_ = q.f.Truncate(q.written * EntrySize)
		return fmt.Errorf("consumequeue: write: %w", err)
	}
	q.written = q.count
	q.pending = q.pending[:0]
	return nil
}

// Get returns up to max entries starting at from (fewer at the end).
func (q *Queue) Get(from int64, max int) ([]Entry, error) {
	q.mu.RLock()
	count := q.count
	if from >= count || from < 0 || max <= 0 {
		q.mu.RUnlock()
		return nil, nil
	}
	n := count - from
	if n > int64(max) {
		n = int64(max)
	}
	b := make([]byte, n*EntrySize)
	// Entries below written come from the file, the rest from pending (copied under the lock).
	fileN := int64(0)
	if from < q.written {
		fileN = min(n, q.written-from)
	}
	if fileN < n {
		start := (from + fileN - q.written) * EntrySize
		copy(b[fileN*EntrySize:], q.pending[start:start+(n-fileN)*EntrySize])
	}
	q.mu.RUnlock()
	if fileN > 0 {
		if _, err := q.f.ReadAt(b[:fileN*EntrySize], from*EntrySize); err != nil {
			return nil, fmt.Errorf("consumequeue: read: %w", err)
		}
	}
	out := make([]Entry, n)
	for i := range out {
		p := b[i*EntrySize:]
		out[i] = Entry{Pos: int64(binary.BigEndian.Uint64(p)), Size: int32(binary.BigEndian.Uint32(p[8:])),
			TagHash: int64(binary.BigEndian.Uint64(p[12:]))}
	}
	return out, nil
}

// Count is the number of entries (the queue's max offset, exclusive).
func (q *Queue) Count() int64 {
	q.mu.RLock()
	defer q.mu.RUnlock()
	return q.count
}

// MinOffset is the first entry whose message is still in the commit log.
func (q *Queue) MinOffset() int64 {
	q.mu.RLock()
	defer q.mu.RUnlock()
	return q.min
}

// SetMinByLog moves MinOffset past entries whose messages lie below logMin (deleted by retention).
func (q *Queue) SetMinByLog(logMin int64) error {
	count := q.Count()
	lo, hi := q.MinOffset(), count
	for lo < hi {
		mid := (lo + hi) / 2
		e, err := q.Get(mid, 1)
		if err != nil {
			return err
		}
		if len(e) == 1 && e[0].Pos >= logMin {
			hi = mid
		} else {
			lo = mid + 1
		}
	}
	q.mu.Lock()
	if lo > q.min {
		q.min = lo
	}
	q.mu.Unlock()
	return nil
}

// TruncateTo keeps the first n entries.
func (q *Queue) TruncateTo(n int64) error {
	q.mu.Lock()
	defer q.mu.Unlock()
	if n >= q.count {
		return nil
	}
	if n >= q.written {
		q.pending = q.pending[:(n-q.written)*EntrySize]
		q.count = n
		if q.min > n {
			q.min = n
		}
		return nil
	}
	if err := q.f.Truncate(n * EntrySize); err != nil {
		return fmt.Errorf("consumequeue: truncate: %w", err)
	}
	q.pending = q.pending[:0]
	q.written = n
	q.count = n
	if q.min > n {
		q.min = n
	}
	q.dirty = true
	return nil
}

// Sync writes buffered entries and fsyncs the file if it changed.
func (q *Queue) Sync() error {
	q.mu.Lock()
	dirty := q.dirty
	q.dirty = false
	err := q.writePendingLocked()
	q.mu.Unlock()
	if err != nil {
		q.mu.Lock()
		q.dirty = true
		q.mu.Unlock()
		return err
	}
	if !dirty {
		return nil
	}
	if err := q.f.Sync(); err != nil {
		q.mu.Lock()
		q.dirty = true
		q.mu.Unlock()
		return fmt.Errorf("consumequeue: fsync: %w", err)
	}
	return nil
}

// Close writes buffered entries and closes the file.
func (q *Queue) Close() error {
	q.mu.Lock()
	err := q.writePendingLocked()
	q.mu.Unlock()
	if cerr := q.f.Close(); err == nil {
		err = cerr
	}
	return err
}
