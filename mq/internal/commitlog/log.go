package commitlog

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/tide-run/tide/mq/message"
)

// BlankMagic marks the unused end of a segment.
const BlankMagic uint32 = 0xCBD43194

// minRecord is the smallest valid stored message (empty body/topic/properties, IPv4 hosts) plus the CRC trailer.
const minRecord = 4 + 4 + 4 + 4 + 4 + 8 + 8 + 4 + 8 + 8 + 8 + 8 + 4 + 8 + 4 + 1 + 2

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// Errors.
var (
	ErrDiskFull   = errors.New("commitlog: disk full")
	ErrBroken     = errors.New("commitlog: log unusable after a failed write")
	ErrOutOfRange = errors.New("commitlog: offset out of range")
	ErrCorrupt    = errors.New("commitlog: corrupt record")
	ErrTooLarge   = errors.New("commitlog: record larger than a segment")
	ErrClosed     = errors.New("commitlog: closed")
)

// FlushMode selects when appends reach the disk.
type FlushMode int

const (
	// FlushAsync fsyncs every FlushInterval; a send is answered once the record is in the page cache.
	FlushAsync FlushMode = iota
	// FlushSync answers a send only after an fsync covering it (group commit: one fsync serves every append that
	// arrived while the previous one ran).
	FlushSync
)

// ParseFlushMode parses "async" or "sync".
func ParseFlushMode(s string) (FlushMode, error) {
	switch s {
	case "", "async":
		return FlushAsync, nil
	case "sync":
		return FlushSync, nil
	}
	return 0, fmt.Errorf("flush mode %q: want async or sync", s)
}

func (m FlushMode) String() string {
	if m == FlushSync {
		return "sync"
	}
	return "async"
}

// Options configure a Log.
type Options struct {
	// Dir holds the segment files. Required.
	Dir string
	// SegmentSize is the size of one segment file. Default 256 MiB. Must exceed the largest record.
	SegmentSize int64
	// FlushMode: FlushAsync (default) or FlushSync.
	FlushMode FlushMode
	// FlushInterval is the async flush period. Default 500ms.
	FlushInterval time.Duration
	// FS is the file layer. Default OS{}.
	FS FS
	// Logger. Default slog.Default().
	Logger *slog.Logger
	// OnFlush, if set, is told how long each fsync of the active segment took and how many bytes it made
	// durable (metrics: tide_mq_flush_duration_seconds). Called from the flushing goroutine.
	OnFlush func(d time.Duration, bytes int64)
}

type segment struct {
	base int64
	f    File
	path string
}

// Log is an append-only segmented log. Appends are serialized by the caller-visible lock inside Append.
type Log struct {
	opts Options
	log  *slog.Logger

	mu       sync.RWMutex // guards segs, writeOff, broken, closed
	segs     []*segment
	writeOff int64
	broken   error
	closed   bool

	flushed atomic.Int64

	wmu     sync.Mutex // guards waiters
	waiters []waiter
	kick    chan struct{}
	stop    chan struct{}
	done    chan struct{}
}

type waiter struct {
	off int64
	fn  func(error)
}

// Visit is called during recovery for each valid record from the scan start, in order; rec is the message bytes
// without the CRC trailer and is only valid during the call.
type Visit func(pos int64, rec []byte) error

func segName(base int64) string { return fmt.Sprintf("%020d", base) }

// Open opens (creating if needed) the log in opts.Dir, scans it from offset from to the end (visiting each valid
// record), and cuts any torn tail. The scan starts at the oldest segment when from is below it.
func Open(opts Options, from int64, visit Visit) (*Log, error) {
	if opts.SegmentSize == 0 {
		opts.SegmentSize = 256 << 20
	}
	if opts.SegmentSize < 4096 {
		return nil, fmt.Errorf("commitlog: segment size %d below 4096", opts.SegmentSize)
	}
	if opts.FlushInterval == 0 {
		opts.FlushInterval = 500 * time.Millisecond
	}
	if opts.FS == nil {
		opts.FS = OS{}
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	l := &Log{opts: opts, log: opts.Logger, kick: make(chan struct{}, 1), stop: make(chan struct{}), done: make(chan struct{})}
	if err := opts.FS.MkdirAll(opts.Dir); err != nil {
		return nil, fmt.Errorf("commitlog: %w", err)
	}
	names, err := opts.FS.List(opts.Dir)
	if err != nil {
		return nil, fmt.Errorf("commitlog: %w", err)
	}
	for _, n := range names {
		base, err := strconv.ParseInt(n, 10, 64)
		if err != nil || len(n) != 20 {
			continue // checkpoint and other files live elsewhere; ignore strays
		}
		if base%opts.SegmentSize != 0 {
			return nil, fmt.Errorf("commitlog: segment %s is not aligned to segment size %d (was the size changed?)", n, opts.SegmentSize)
		}
		p := filepath.Join(opts.Dir, n)
		f, err := opts.FS.OpenFile(p, os.O_RDWR, 0o644)
		if err != nil {
			return nil, fmt.Errorf("commitlog: %w", err)
		}
		l.segs = append(l.segs, &segment{base: base, f: f, path: p})
	}
	if len(l.segs) == 0 {
		if _, err := l.newSegment(0); err != nil {
			return nil, err
		}
	}
	if err := l.recover(from, visit); err != nil {
		l.closeFiles()
		return nil, err
	}
	l.flushed.Store(l.writeOff)
	go l.flusher()
	return l, nil
}

func (l *Log) newSegment(base int64) (*segment, error) {
	p := filepath.Join(l.opts.Dir, segName(base))
	f, err := l.opts.FS.OpenFile(p, os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return nil, fmt.Errorf("commitlog: create segment: %w", err)
	}
	s := &segment{base: base, f: f, path: p}
	l.segs = append(l.segs, s)
	return s, nil
}

// recover scans from `from` and sets writeOff; it truncates the tail after the last valid record.
func (l *Log) recover(from int64, visit Visit) error {
	segSize := l.opts.SegmentSize
	start := 0
	if from > l.segs[0].base {
		for i, s := range l.segs {
			if from >= s.base && from < s.base+segSize {
				start = i
				break
			}
			if s.base > from {
				break
			}
			start = i
		}
	} else {
		from = l.segs[0].base
	}
	if from < l.segs[start].base || from >= l.segs[start].base+segSize {
		from = l.segs[start].base
	}
	pos := from
	buf := make([]byte, 0, 64<<10)
	for i := start; i < len(l.segs); i++ {
		s := l.segs[i]
		last := i == len(l.segs)-1
		if pos < s.base {
			pos = s.base
		}
		size, err := s.f.Size()
		if err != nil {
			return fmt.Errorf("commitlog: %w", err)
		}
		r := bufio.NewReaderSize(io.NewSectionReader(s.f, pos-s.base, size-(pos-s.base)), 1<<20)
		end, err := l.scanSegment(s, pos, size, r, &buf, visit)
		if err != nil {
			return err
		}
		if end.next {
			if last {
				// The segment was sealed but its successor never created; the next append creates it.
				pos = s.base + segSize
			}
			continue
		}
		pos = end.pos
		if end.pos-s.base != size {
			l.log.Warn("commit log: cutting torn or unfinished tail", "component", "mq.commitlog", "segment", s.path,
				"validBytes", end.pos-s.base, "fileBytes", size)
			if err := s.f.Truncate(end.pos - s.base); err != nil {
				return fmt.Errorf("commitlog: truncate torn tail: %w", err)
			}
		}
		if !last {
			// A bad record before the last segment means later data cannot be reached consistently.
			l.log.Error("commit log: invalid record before the last segment; dropping later segments", "component", "mq.commitlog",
				"segment", s.path, "offset", end.pos)
			for _, later := range l.segs[i+1:] {
				later.f.Close()
				if err := l.opts.FS.Remove(later.path); err != nil {
					return fmt.Errorf("commitlog: %w", err)
				}
			}
			l.segs = l.segs[:i+1]
		}
		break
	}
	l.writeOff = pos
	return nil
}

type scanEnd struct {
	pos  int64
	next bool // the segment ends normally (blank marker or too little room); continue with the next one
}

func (l *Log) scanSegment(s *segment, pos, fileSize int64, r *bufio.Reader, buf *[]byte, visit Visit) (scanEnd, error) {
	segSize := l.opts.SegmentSize
	for {
		off := pos - s.base
		if segSize-off < 8 {
			if off == fileSize || allZero(r) {
				return scanEnd{pos: pos, next: true}, nil
			}
			return scanEnd{pos: pos}, nil
		}
		hdr, err := r.Peek(8)
		if err != nil {
			return scanEnd{pos: pos}, nil // end of file (or partial header): tail
		}
		n := int64(int32(binary.BigEndian.Uint32(hdr)))
		magic := binary.BigEndian.Uint32(hdr[4:])
		if magic == BlankMagic && n == segSize-off {
			return scanEnd{pos: pos, next: true}, nil
		}
		if magic != message.MagicV1 || n < minRecord-4 || off+n+4 > segSize {
			return scanEnd{pos: pos}, nil
		}
		if cap(*buf) < int(n+4) {
			*buf = make([]byte, n+4)
		}
		rec := (*buf)[:n+4]
		if _, err := io.ReadFull(r, rec); err != nil {
			return scanEnd{pos: pos}, nil
		}
		if crc32.Checksum(rec[:n], castagnoli) != binary.BigEndian.Uint32(rec[n:]) ||
			int64(binary.BigEndian.Uint64(rec[message.PhysicalOffsetPos:])) != pos {
			return scanEnd{pos: pos}, nil
		}
		if visit != nil {
			if err := visit(pos, rec[:n]); err != nil {
				return scanEnd{}, err
			}
		}
		pos += n + 4
	}
}

func allZero(r *bufio.Reader) bool {
	b, _ := r.Peek(8)
	for _, c := range b {
		if c != 0 {
			return false
		}
	}
	return true
}

// Append writes msgs (encoded messages whose PHYSICALOFFSET this fills in) contiguously and returns the position of
// each and the end offset. Either all land or none does. It copies msgs into one buffer; the store's hot path uses
// AppendFramed, which takes them already laid out.
func (l *Log) Append(msgs [][]byte) ([]int64, int64, error) {
	total := 0
	for _, m := range msgs {
		total += len(m) + 4
	}
	buf := make([]byte, 0, total)
	lens := make([]int, len(msgs))
	for i, m := range msgs {
		lens[i] = len(m)
		buf = append(buf, m...)
		buf = append(buf, 0, 0, 0, 0)
	}
	pos := make([]int64, len(msgs))
	end, err := l.AppendFramed(buf, lens, pos)
	if err != nil {
		return nil, 0, err
	}
	for i, m := range msgs {
		copy(m, buf[pos[i]-pos[0]:][:len(m)]) // callers see their PHYSICALOFFSET stamped, as before
	}
	return pos, end, nil
}

// AppendFramed writes records laid out back to back in buf, record i being lens[i] bytes of encoded message
// followed by 4 bytes reserved for its CRC, with one pwrite. It stamps each record's PHYSICALOFFSET and CRC in
// place, stores each position in pos (len(lens) long) and returns the end offset. Either all land or none does.
// buf is not retained: the caller may reuse it once AppendFramed returns.
func (l *Log) AppendFramed(buf []byte, lens []int, pos []int64) (int64, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return 0, ErrClosed
	}
	if l.broken != nil {
		return 0, l.broken
	}
	total := int64(len(buf))
	segSize := l.opts.SegmentSize
	if total > segSize-8 {
		return 0, fmt.Errorf("%w: %d bytes, segment size %d", ErrTooLarge, total, segSize)
	}
	cur := l.segs[len(l.segs)-1]
	if l.writeOff-cur.base+total > segSize || l.writeOff >= cur.base+segSize {
		var err error
		if cur, err = l.roll(cur); err != nil {
			return 0, err
		}
	}
	p := l.writeOff
	at := 0
	for i, n := range lens {
		pos[i] = p
		m := buf[at : at+n]
		binary.BigEndian.PutUint64(m[message.PhysicalOffsetPos:], uint64(p))
		binary.BigEndian.PutUint32(buf[at+n:], crc32.Checksum(m, castagnoli))
		at += n + 4
		p += int64(n) + 4
	}
	if at != len(buf) {
		panic("commitlog: AppendFramed lengths do not cover the buffer") // a caller bug, never input-dependent
	}
	if n, err := cur.f.WriteAt(buf, l.writeOff-cur.base); err != nil {
		werr := fmt.Errorf("commitlog: write %d bytes at %d (%d written): %w", len(buf), l.writeOff, n, err)
		if errors.Is(err, syscall.ENOSPC) {
			werr = fmt.Errorf("%w: %w", ErrDiskFull, werr)
		}
		if terr := cur.f.Truncate(l.writeOff - cur.base); terr != nil {
			l.broken = fmt.Errorf("%w: %w (truncate back failed: %w)", ErrBroken, werr, terr)
			return 0, l.broken
		}
		return 0, werr
	}
	l.writeOff = p
	if l.opts.FlushMode == FlushSync {
		select {
		case l.kick <- struct{}{}:
		default:
		}
	}
	return p, nil
}

// roll seals cur with a blank marker, fsyncs it and starts the next segment. Caller holds l.mu.
func (l *Log) roll(cur *segment) (*segment, error) {
	segSize := l.opts.SegmentSize
	off := l.writeOff - cur.base
	if off < segSize && segSize-off >= 8 {
		var m [8]byte
		binary.BigEndian.PutUint32(m[:], uint32(segSize-off))
		binary.BigEndian.PutUint32(m[4:], BlankMagic)
		if _, err := cur.f.WriteAt(m[:], off); err != nil {
			_ = cur.f.Truncate(off)
			return nil, l.writeErr(err)
		}
	}
	if err := cur.f.Sync(); err != nil {
		return nil, fmt.Errorf("commitlog: sync sealed segment: %w", err)
	}
	next, err := l.newSegment(cur.base + segSize)
	if err != nil {
		return nil, l.writeErr(err)
	}
	l.writeOff = next.base
	return next, nil
}

func (l *Log) writeErr(err error) error {
	if errors.Is(err, syscall.ENOSPC) {
		return fmt.Errorf("%w: %w", ErrDiskFull, err)
	}
	return fmt.Errorf("commitlog: %w", err)
}

// WhenFlushed calls fn once every byte below off is durable (sync mode), or at once (async mode).
func (l *Log) WhenFlushed(off int64, fn func(error)) {
	if l.opts.FlushMode != FlushSync || l.flushed.Load() >= off {
		fn(nil)
		return
	}
	l.wmu.Lock()
	l.waiters = append(l.waiters, waiter{off: off, fn: fn})
	l.wmu.Unlock()
	select {
	case l.kick <- struct{}{}:
	default:
	}
}

func (l *Log) flusher() {
	defer close(l.done)
	var tick <-chan time.Time
	if l.opts.FlushMode == FlushAsync {
		t := time.NewTicker(l.opts.FlushInterval)
		defer t.Stop()
		tick = t.C
	}
	for {
		select {
		case <-l.stop:
			err := l.Flush()
			l.release(err, true)
			return
		case <-tick:
			if err := l.Flush(); err != nil {
				l.log.Error("commit log flush failed", "component", "mq.commitlog", "err", err)
			}
		case <-l.kick:
			err := l.Flush()
			l.release(err, false)
		}
	}
}

// release answers waiters covered by the flushed offset (all of them on error or at close).
func (l *Log) release(err error, all bool) {
	flushed := l.flushed.Load()
	l.wmu.Lock()
	var ready []waiter
	keep := l.waiters[:0]
	for _, w := range l.waiters {
		if w.off <= flushed || err != nil || all {
			ready = append(ready, w)
		} else {
			keep = append(keep, w)
		}
	}
	l.waiters = keep
	more := len(keep) > 0
	l.wmu.Unlock()
	for _, w := range ready {
		if w.off <= flushed {
			w.fn(nil)
		} else if err != nil {
			w.fn(err)
		} else {
			w.fn(ErrClosed)
		}
	}
	if more {
		select {
		case l.kick <- struct{}{}:
		default:
		}
	}
}

// Flush fsyncs everything written so far.
func (l *Log) Flush() error {
	l.mu.RLock()
	target := l.writeOff
	if len(l.segs) == 0 || l.closed {
		l.mu.RUnlock()
		return nil
	}
	cur := l.segs[len(l.segs)-1]
	l.mu.RUnlock()
	if target <= l.flushed.Load() {
		return nil
	}
	// Earlier segments were fsynced when sealed, so syncing the active one covers target.
	start := time.Now()
	if err := cur.f.Sync(); err != nil {
		return fmt.Errorf("commitlog: fsync: %w", err)
	}
	if l.opts.OnFlush != nil {
		l.opts.OnFlush(time.Since(start), target-l.flushed.Load())
	}
	for {
		old := l.flushed.Load()
		if target <= old || l.flushed.CompareAndSwap(old, target) {
			return nil
		}
	}
}

// ReadAt reads n bytes at pos (one record's message bytes when n is its size).
func (l *Log) ReadAt(pos int64, n int) ([]byte, error) {
	l.mu.RLock()
	if pos < l.segs[0].base || pos+int64(n) > l.writeOff {
		l.mu.RUnlock()
		return nil, fmt.Errorf("%w: [%d,%d) outside [%d,%d)", ErrOutOfRange, pos, pos+int64(n), l.segs[0].base, l.writeOff)
	}
	s := l.findLocked(pos)
	l.mu.RUnlock()
	b := make([]byte, n)
	if _, err := s.f.ReadAt(b, pos-s.base); err != nil {
		return nil, fmt.Errorf("commitlog: read at %d: %w", pos, err)
	}
	return b, nil
}

// ReadMessage reads and decodes the record at pos, verifying its CRC.
func (l *Log) ReadMessage(pos int64) (*message.Message, []byte, error) {
	head, err := l.ReadAt(pos, 4)
	if err != nil {
		return nil, nil, err
	}
	n := int(int32(binary.BigEndian.Uint32(head)))
	if n < minRecord-4 || n > int(l.opts.SegmentSize) {
		return nil, nil, fmt.Errorf("%w: size %d at %d", ErrCorrupt, n, pos)
	}
	rec, err := l.ReadAt(pos, n+4)
	if err != nil {
		return nil, nil, err
	}
	if crc32.Checksum(rec[:n], castagnoli) != binary.BigEndian.Uint32(rec[n:]) {
		return nil, nil, fmt.Errorf("%w: CRC mismatch at %d", ErrCorrupt, pos)
	}
	m, _, err := message.Decode(rec[:n])
	if err != nil {
		return nil, nil, fmt.Errorf("%w: at %d: %w", ErrCorrupt, pos, err)
	}
	return m, rec[:n], nil
}

func (l *Log) findLocked(pos int64) *segment {
	lo, hi := 0, len(l.segs)-1
	for lo < hi {
		mid := (lo + hi + 1) / 2
		if l.segs[mid].base <= pos {
			lo = mid
		} else {
			hi = mid - 1
		}
	}
	return l.segs[lo]
}

// MinOffset is the first offset still stored.
func (l *Log) MinOffset() int64 {
	l.mu.RLock()
	defer l.mu.RUnlock()
	return l.segs[0].base
}

// WriteOffset is the end of the last record.
func (l *Log) WriteOffset() int64 {
	l.mu.RLock()
	defer l.mu.RUnlock()
	return l.writeOff
}

// FlushedOffset is the durable end.
func (l *Log) FlushedOffset() int64 { return l.flushed.Load() }

// Err is the error wrapping ErrBroken once a failed write could not be undone (the log then refuses every write),
// nil otherwise.
func (l *Log) Err() error {
	l.mu.RLock()
	defer l.mu.RUnlock()
	return l.broken
}

// SegmentInfo describes a segment for retention decisions.
type SegmentInfo struct {
	Base    int64
	Bytes   int64
	ModTime time.Time
	Active  bool
}

// Segments lists the segments, oldest first.
func (l *Log) Segments() []SegmentInfo {
	l.mu.RLock()
	defer l.mu.RUnlock()
	out := make([]SegmentInfo, 0, len(l.segs))
	for i, s := range l.segs {
		sz, _ := s.f.Size()
		mt, _ := s.f.ModTime()
		out = append(out, SegmentInfo{Base: s.base, Bytes: sz, ModTime: mt, Active: i == len(l.segs)-1})
	}
	return out
}

// DeleteOldest removes the oldest segment if it is not the active one and returns whether it did.
func (l *Log) DeleteOldest() (bool, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(l.segs) < 2 {
		return false, nil
	}
	s := l.segs[0]
	s.f.Close()
	if err := l.opts.FS.Remove(s.path); err != nil {
		return false, fmt.Errorf("commitlog: delete segment: %w", err)
	}
	l.segs = l.segs[1:]
	return true, nil
}

// Scan visits every valid record in [from, WriteOffset()) (Check and tests use it).
func (l *Log) Scan(from int64, visit Visit) error {
	l.mu.RLock()
	segs := append([]*segment(nil), l.segs...)
	end := l.writeOff
	l.mu.RUnlock()
	if from < segs[0].base {
		from = segs[0].base
	}
	pos := from
	buf := make([]byte, 0, 64<<10)
	for _, s := range segs {
		if pos >= s.base+l.opts.SegmentSize || pos >= end {
			continue
		}
		if pos < s.base {
			pos = s.base
		}
		size, err := s.f.Size()
		if err != nil {
			return err
		}
		if s.base+size > end {
			size = end - s.base
		}
		r := bufio.NewReaderSize(io.NewSectionReader(s.f, pos-s.base, size-(pos-s.base)), 1<<20)
		e, err := l.scanSegment(s, pos, size, r, &buf, visit)
		if err != nil {
			return err
		}
		if !e.next {
			if e.pos != s.base+size {
				return fmt.Errorf("%w: scan stopped at %d, segment data ends at %d", ErrCorrupt, e.pos, s.base+size)
			}
			pos = e.pos
		} else {
			pos = s.base + l.opts.SegmentSize
		}
	}
	return nil
}

func (l *Log) closeFiles() {
	for _, s := range l.segs {
		s.f.Close()
	}
}

// Close flushes, answers pending waiters and closes the files.
func (l *Log) Close() error {
	l.mu.Lock()
	if l.closed {
		l.mu.Unlock()
		return nil
	}
	l.mu.Unlock()
	close(l.stop)
	<-l.done
	l.mu.Lock()
	defer l.mu.Unlock()
	l.closed = true
	var err error
	for _, s := range l.segs {
		if e := s.f.Close(); e != nil && err == nil {
			err = e
		}
	}
	return err
}
