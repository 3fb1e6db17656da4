package store

import (
	"cmp"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"log/slog"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"k8s.io/utils/clock"

	"github.com/tide-run/tide/mq/internal/commitlog"
	"github.com/tide-run/tide/mq/internal/consumequeue"
	"github.com/tide-run/tide/mq/message"
)

// Errors.
var (
	ErrDiskFull = commitlog.ErrDiskFull
	ErrClosed   = errors.New("store: closed")
)

// Options configure a Store.
type Options struct {
	// Dir is the data directory. Required.
	Dir string
	// SegmentSize of commit-log files. Default 256 MiB.
	SegmentSize int64
	// FlushMode: commitlog.FlushAsync (default) or commitlog.FlushSync.
	FlushMode commitlog.FlushMode
	// FlushInterval of async flushing and of consume-queue/checkpoint flushing. Default 500ms.
	FlushInterval time.Duration
	// RetentionAge deletes commit-log segments last written longer ago than this. Default 72h; negative disables.
	RetentionAge time.Duration
	// MaxDiskBytes caps the commit log's size: the oldest segments go first, and a put that cannot fit even then
	// fails with ErrDiskFull. 0 means no cap.
	MaxDiskBytes int64
	// StoreHost is stamped on stored messages (it is part of offset message ids).
	StoreHost netip.AddrPort
	// FS is the file layer. Default commitlog.OS{}.
	FS commitlog.FS
	// Clock stamps store times and drives retention. Default clock.RealClock{}.
	Clock clock.WithTicker
	// Logger. Default slog.Default().
	Logger *slog.Logger
	// OnFlush is the commit log's fsync observer (commitlog.Options.OnFlush); nil: none.
	OnFlush func(d time.Duration, bytes int64)
	// IndexSlots and IndexEntries size the message index's files (index.go). Defaults DefaultIndexSlots and
	// DefaultIndexEntries; tests make them small to exercise sealing.
	IndexSlots, IndexEntries int
}

type qkey struct {
	topic string
	id    int32
}

// Store holds messages.
type Store struct {
	opts Options
	log  *slog.Logger
	cl   *commitlog.Log

	mu     sync.Mutex // serializes puts and guards queues' creation/removal and closed
	queues map[qkey]*consumequeue.Queue
	closed bool

	// Scratch for Put, guarded by mu: the encoded records, their lengths and positions, and their queues.
	wbuf  []byte
	wlens []int
	wpos  []int64
	wqs   []*consumequeue.Queue

	// OnArrival is called (outside locks) after messages land in a queue; the broker wakes long polls with it.
	OnArrival func(topic string, queueID int32)
	// RetainFrom, when set, is the commit-log position from which records must outlive age-based retention
	// (pending timer messages, timerindex.go); called outside locks.
	RetainFrom func() int64

	diskFull atomic.Pointer[diskFullState] // set while writes fail for lack of space (health.go)

	idx       *msgIndex        // by key and unique id (index.go)
	queueFrom int64            // during recovery: records below it are already in their consume queues
	tombs     map[string]int64 // deleted topic -> log position at its deletion (tombstone.go); guarded by mu

	stop chan struct{}
	done chan struct{}
}

// Open opens the store, recovering after a crash: the commit log is scanned from the checkpoint (torn tail cut)
// and the consume queues are brought in line with it.
func Open(opts Options) (*Store, error) {
	if opts.FS == nil {
		opts.FS = commitlog.OS{}
	}
	if opts.Clock == nil {
		opts.Clock = clock.RealClock{}
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	if opts.FlushInterval == 0 {
		opts.FlushInterval = 500 * time.Millisecond
	}
	if opts.RetentionAge == 0 {
		opts.RetentionAge = 72 * time.Hour
	}
	s := &Store{opts: opts, log: opts.Logger, queues: map[qkey]*consumequeue.Queue{},
		stop: make(chan struct{}), done: make(chan struct{})}
	if err := opts.FS.MkdirAll(filepath.Join(opts.Dir, "consumequeue")); err != nil {
		return nil, fmt.Errorf("store: %w", err)
	}
	if err := s.loadTombstones(); err != nil {
		return nil, err
	}
	if err := s.openQueues(); err != nil {
		return nil, err
	}
	from := s.readCheckpoint()
	if len(s.queues) == 0 {
		from = 0 // no consume queues at all (first start, or the index was deleted): rebuild them from the whole log
	}
	idx, scanFrom, err := openIndex(opts.FS, filepath.Join(opts.Dir, "index"), uint32(cmp.Or(opts.IndexSlots, DefaultIndexSlots)),
		uint32(cmp.Or(opts.IndexEntries, DefaultIndexEntries)), from)
	if err != nil {
		s.closeQueues()
		return nil, err
	}
	s.idx, s.queueFrom = idx, from
	recovered := 0
	cl, err := commitlog.Open(commitlog.Options{Dir: filepath.Join(opts.Dir, "commitlog"), SegmentSize: opts.SegmentSize,
		FlushMode: opts.FlushMode, FlushInterval: opts.FlushInterval, FS: opts.FS, Logger: opts.Logger, OnFlush: opts.OnFlush},
		scanFrom, func(pos int64, rec []byte) error {
			recovered++
			return s.redispatch(pos, rec)
		})
	if err != nil {
		s.closeQueues()
		idx.close()
		return nil, fmt.Errorf("store: %w", err)
	}
	s.cl = cl
	// Entries beyond the log's end (the log's tail was cut, or a queue got ahead of a lost log write) go.
	end := cl.WriteOffset()
	for _, q := range s.queues {
		if err := trimQueue(q, end); err != nil {
			cl.Close()
			s.closeQueues()
			return nil, err
		}
		if err := q.SetMinByLog(cl.MinOffset()); err != nil {
			cl.Close()
			s.closeQueues()
			return nil, err
		}
	}
	if recovered > 0 {
		s.log.Info("store recovered", "component", "mq.store", "fromOffset", from, "records", recovered, "end", end)
	}
	go s.background()
	return s, nil
}

func trimQueue(q *consumequeue.Queue, end int64) error {
	n := q.Count()
	for n > 0 {
		e, err := q.Get(n-1, 1)
		if err != nil {
			return err
		}
		if len(e) == 1 && e[0].Pos+int64(e[0].Size) <= end && e[0].Size > 0 {
			break
		}
		n--
	}
	return q.TruncateTo(n)
}

func (s *Store) openQueues() error {
	root := filepath.Join(s.opts.Dir, "consumequeue")
	entries, err := os.ReadDir(root)
	if err != nil {
		return fmt.Errorf("store: %w", err)
	}
	for _, te := range entries {
		if !te.IsDir() {
			continue
		}
		names, err := s.opts.FS.List(filepath.Join(root, te.Name()))
		if err != nil {
			return fmt.Errorf("store: %w", err)
		}
		for _, n := range names {
			id, err := strconv.Atoi(n)
			if err != nil {
				continue
			}
			q, err := consumequeue.Open(s.opts.FS, filepath.Join(root, te.Name(), n))
			if err != nil {
				return err
			}
			s.queues[qkey{te.Name(), int32(id)}] = q
		}
	}
	return nil
}

// queue returns the queue, creating it when create is set. Caller holds s.mu.
func (s *Store) queueLocked(topic string, id int32, create bool) (*consumequeue.Queue, error) {
	k := qkey{topic, id}
	if q := s.queues[k]; q != nil || !create {
		return q, nil
	}
	dir := filepath.Join(s.opts.Dir, "consumequeue", topic)
	if err := s.opts.FS.MkdirAll(dir); err != nil {
		return nil, fmt.Errorf("store: %w", err)
	}
	q, err := consumequeue.Open(s.opts.FS, filepath.Join(dir, strconv.Itoa(int(id))))
	if err != nil {
		return nil, err
	}
	s.queues[k] = q
	return q, nil
}

func (s *Store) getQueue(topic string, id int32) *consumequeue.Queue {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.queues[qkey{topic, id}]
}

func (s *Store) redispatch(pos int64, rec []byte) error {
	m, _, err := message.Decode(rec)
	if err != nil {
		return fmt.Errorf("store: recovery decode at %d: %w", pos, err)
	}
	s.idx.add(pos, m.StoreTimestamp, m.Topic, m.SysFlag, m.Properties)
	if pos < s.queueFrom || s.buried(m.Topic, pos) {
		return nil // only the message index needed this record
	}
	q, err := s.queueLocked(m.Topic, m.QueueID, true)
	if err != nil {
		return err
	}
	if m.QueueOffset > q.Count() {
		// The queue lost entries below the checkpoint (should not happen); index what we can reach.
		s.log.Error("consume queue behind the checkpoint", "component", "mq.store", "topic", m.Topic, "queue", m.QueueID,
			"queueOffset", m.QueueOffset, "count", q.Count())
		return nil
	}
	return q.Put(m.QueueOffset, consumequeue.Entry{Pos: pos, Size: int32(len(rec)), TagHash: queueTagHash(m)})
}

func (s *Store) checkpointPath() string { return filepath.Join(s.opts.Dir, "checkpoint") }

func (s *Store) readCheckpoint() int64 {
	b, err := s.opts.FS.ReadFile(s.checkpointPath())
	if err != nil || len(b) != 12 || crc32.ChecksumIEEE(b[:8]) != binary.BigEndian.Uint32(b[8:]) {
		return 0 // no (valid) checkpoint: scan the whole log
	}
	return int64(binary.BigEndian.Uint64(b))
}

// Checkpoint fsyncs the consume queues and records the offset they cover.
func (s *Store) Checkpoint() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return ErrClosed
	}
	covered := s.cl.FlushedOffset()
	qs := make([]*consumequeue.Queue, 0, len(s.queues))
	for _, q := range s.queues {
		qs = append(qs, q)
	}
	s.mu.Unlock()
	for _, q := range qs {
		if err := q.Sync(); err != nil {
			return err
		}
	}
	if err := s.idx.sync(); err != nil {
		return err
	}
	var b [12]byte
	binary.BigEndian.PutUint64(b[:], uint64(covered))
	binary.BigEndian.PutUint32(b[8:], crc32.ChecksumIEEE(b[:8]))
	return commitlog.WriteFileAtomic(s.opts.FS, s.checkpointPath(), b[:])
}

func (s *Store) background() {
	defer close(s.done)
	t := s.opts.Clock.NewTicker(s.opts.FlushInterval)
	defer t.Stop()
	lastClean := s.opts.Clock.Now()
	for {
		select {
		case <-s.stop:
			return
		case <-t.C():
			if s.opts.FlushMode == commitlog.FlushAsync {
				if err := s.cl.Flush(); err != nil {
					s.log.Error("flush failed", "component", "mq.store", "err", err)
				}
			}
			if err := s.Checkpoint(); err != nil && !errors.Is(err, ErrClosed) {
				s.noteWriteErr(err)
				s.log.Error("checkpoint failed", "component", "mq.store", "err", err)
			}
			s.probeSpace()
			if now := s.opts.Clock.Now(); now.Sub(lastClean) >= 10*time.Second {
				lastClean = now
				if _, err := s.Clean(now); err != nil {
					s.log.Error("retention failed", "component", "mq.store", "err", err)
				}
			}
		}
	}
}

// Clean applies retention at time now and returns how many segments it deleted.
func (s *Store) Clean(now time.Time) (int, error) {
	deleted := 0
	for {
		segs := s.cl.Segments()
		if len(segs) < 2 {
			break
		}
		var total int64
		for _, sg := range segs {
			total += sg.Bytes
		}
		old := s.opts.RetentionAge > 0 && now.Sub(segs[0].ModTime) > s.opts.RetentionAge && !s.retained(segs[1].Base)
		over := s.opts.MaxDiskBytes > 0 && total > s.opts.MaxDiskBytes*9/10
		if !old && !over {
			break
		}
		ok, err := s.cl.DeleteOldest()
		if err != nil {
			return deleted, err
		}
		if !ok {
			break
		}
		deleted++
		s.log.Info("retention deleted a commit-log segment", "component", "mq.store", "base", segs[0].Base,
			"age", now.Sub(segs[0].ModTime).String(), "totalBytes", total)
	}
	if deleted > 0 {
		min := s.cl.MinOffset()
		s.mu.Lock()
		qs := make([]*consumequeue.Queue, 0, len(s.queues))
		for _, q := range s.queues {
			qs = append(qs, q)
		}
		s.mu.Unlock()
		for _, q := range qs {
			if err := q.SetMinByLog(min); err != nil {
				return deleted, err
			}
		}
	}
	// Always: MaxDiskBytes also deletes segments (ensureSpace), between two runs of this.
	if err := s.idx.clean(s.cl.MinOffset()); err != nil {
		return deleted, err
	}
	if err := s.pruneTombstones(s.cl.MinOffset()); err != nil {
		return deleted, err
	}
	return deleted, nil
}

// PutResult locates one stored message.
type PutResult struct {
	Pos         int64
	QueueOffset int64
	Size        int
	MsgID       string
}

// Put stores msgs (a batch for one topic-queue, or sends for any queues stored together) with one commit-log write
// and returns where they landed and the commit-log end offset to wait on with WhenFlushed. Either all land or none
// does; messages of one queue take consecutive queue offsets in msgs' order. It stamps QueueOffset,
// StoreTimestamp, StoreHost and PhysicalOffset.
func (s *Store) Put(msgs []*message.Message) ([]PutResult, int64, error) {
	if len(msgs) == 0 {
		return nil, 0, nil
	}
	var size int64
	for _, m := range msgs {
		if err := m.Validate(); err != nil {
			return nil, 0, err
		}
		size += int64(m.Size()) + 4
	}
	if s.opts.MaxDiskBytes > 0 {
		if err := s.ensureSpace(size); err != nil {
			s.noteWriteErr(err)
			return nil, 0, err
		}
	}
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil, 0, ErrClosed
	}
	now := s.opts.Clock.Now().UnixMilli()
	// Records are encoded straight into s.wbuf in the commit log's layout (each followed by room for its CRC), so
	// a put costs one copy of each message and one pwrite, with no per-message buffers.
	buf := s.wbuf[:0]
	lens := s.wlens[:0]
	qs := s.wqs[:0]
	for i, m := range msgs {
		q, err := s.queueLocked(m.Topic, m.QueueID, true)
		if err != nil {
			s.mu.Unlock()
			return nil, 0, err
		}
		// In a batch, entries for the same queue earlier in it are not in the queue yet: continue after the latest
		// (a batch is normally all one queue, so this finds it at j = i-1).
		off := q.Count()
		for j := i - 1; j >= 0; j-- {
			if qs[j] == q {
				off = msgs[j].QueueOffset + 1
				break
			}
		}
		qs = append(qs, q)
		m.QueueOffset = off
		m.StoreTimestamp = now
		m.StoreHost = s.opts.StoreHost
		start := len(buf)
		buf = m.Append(buf)
		lens = append(lens, len(buf)-start)
		buf = append(buf, 0, 0, 0, 0) // CRC, filled in by the log
	}
	res := make([]PutResult, len(msgs))
	pos := s.wpos[:0]
	for range msgs {
		pos = append(pos, 0)
	}
	end, err := s.cl.AppendFramed(buf, lens, pos)
	if err != nil {
		s.keepScratch(buf, lens, pos, qs)
		s.mu.Unlock()
		s.noteWriteErr(err)
		return nil, 0, err
	}
	s.noteWriteOK()
	for i, m := range msgs {
		m.PhysicalOffset = pos[i]
		e := consumequeue.Entry{Pos: pos[i], Size: int32(lens[i]), TagHash: queueTagHash(m)}
		if err := qs[i].Put(m.QueueOffset, e); err != nil {
			// The record is in the log; recovery would index it. Keep serving by reporting the failure.
			s.keepScratch(buf, lens, pos, qs)
			s.mu.Unlock()
			return nil, 0, fmt.Errorf("store: index: %w", err)
		}
		s.idx.add(pos[i], now, m.Topic, m.SysFlag, m.Properties)
		res[i] = PutResult{Pos: pos[i], QueueOffset: m.QueueOffset, Size: lens[i], MsgID: message.OffsetMsgID(s.opts.StoreHost, pos[i])}
	}
	s.keepScratch(buf, lens, pos, qs)
	s.mu.Unlock()
	if s.OnArrival != nil {
		seen := map[qkey]bool{}
		for _, m := range msgs {
			k := qkey{m.Topic, m.QueueID}
			if !seen[k] {
				seen[k] = true
				s.OnArrival(m.Topic, m.QueueID)
			}
		}
	}
	return res, end, nil
}

// scratchLimit caps the encode buffer Put keeps between calls, so one large batch does not pin memory.
const scratchLimit = 1 << 20

// keepScratch keeps Put's buffers for the next call. Caller holds s.mu.
func (s *Store) keepScratch(buf []byte, lens []int, pos []int64, qs []*consumequeue.Queue) {
	if cap(buf) > scratchLimit {
		buf, lens, pos, qs = nil, nil, nil, nil
	}
	clear(qs) // do not keep deleted queues reachable
	s.wbuf, s.wlens, s.wpos, s.wqs = buf[:0], lens[:0], pos[:0], qs[:0]
}

func (s *Store) ensureSpace(need int64) error {
	// Segments are contiguous, so the log's size is its extent: no file system calls on the send path.
	total := func() int64 { return s.cl.WriteOffset() - s.cl.MinOffset() }
	for total()+need > s.opts.MaxDiskBytes {
		ok, err := s.cl.DeleteOldest()
		if err != nil {
			return err
		}
		if !ok {
			return fmt.Errorf("%w: commit log would exceed the %d-byte disk limit", ErrDiskFull, s.opts.MaxDiskBytes)
		}
		min := s.cl.MinOffset()
		s.mu.Lock()
		for _, q := range s.queues {
			_ = q.SetMinByLog(min)
		}
		s.mu.Unlock()
	}
	return nil
}

// WhenFlushed calls fn once the log is durable up to end (at once in async mode).
func (s *Store) WhenFlushed(end int64, fn func(error)) { s.cl.WhenFlushed(end, fn) }

// GetStatus says what a Get found.
type GetStatus int

// Get statuses, mirroring Java's GetMessageStatus.
const (
	Found GetStatus = iota
	NoMatchedMessage
	NoMessageInQueue
	OffsetOverflowOne
	OffsetOverflowBadly
	OffsetTooSmall
)

// GetResult is what Get returns.
type GetResult struct {
	Status    GetStatus
	Messages  [][]byte // stored message bytes, in queue order
	Offsets   []int64  // queue offset of each message
	NextBegin int64
	Min, Max  int64
}

// Get reads up to maxMsgs messages of a queue from offset, skipping those whose tag hash match rejects (nil accepts
// all), and at most maxBytes of them (at least one).
func (s *Store) Get(topic string, id int32, offset int64, maxMsgs int, maxBytes int, match func(tagHash int64) bool) (GetResult, error) {
	q := s.getQueue(topic, id)
	if q == nil {
		return GetResult{Status: NoMessageInQueue}, nil
	}
	r := GetResult{Min: q.MinOffset(), Max: q.Count()}
	switch {
	case r.Max == 0:
		r.Status, r.NextBegin = NoMessageInQueue, 0
		if offset != 0 {
			r.Status = OffsetOverflowBadly
		}
		return r, nil
	case offset < r.Min:
		r.Status, r.NextBegin = OffsetTooSmall, r.Min
		return r, nil
	case offset == r.Max:
		r.Status, r.NextBegin = OffsetOverflowOne, offset
		return r, nil
	case offset > r.Max:
		r.Status, r.NextBegin = OffsetOverflowBadly, r.Max
		return r, nil
	}
	scan := maxMsgs
	if match != nil && scan < 1024 {
		scan = 1024 // filtered pulls look further so a sparse tag does not cost one round trip per 32 entries
	}
	entries, err := q.Get(offset, scan)
	if err != nil {
		return r, err
	}
	logMin := s.cl.MinOffset()
	bytes := 0
	next := offset
	for i, e := range entries {
		if len(r.Messages) >= maxMsgs || (bytes > 0 && bytes+int(e.Size) > maxBytes) {
			break
		}
		next = offset + int64(i) + 1
		if e.Pos < logMin {
			continue
		}
		if match != nil && !match(e.TagHash) {
			continue
		}
		b, err := s.cl.ReadAt(e.Pos, int(e.Size))
		if err != nil {
			if errors.Is(err, commitlog.ErrOutOfRange) {
				continue // deleted by retention meanwhile
			}
			return r, err
		}
		r.Messages = append(r.Messages, b)
		r.Offsets = append(r.Offsets, offset+int64(i))
		bytes += len(b)
	}
	r.NextBegin = next
	if len(r.Messages) > 0 {
		r.Status = Found
	} else {
		r.Status = NoMatchedMessage
	}
	return r, nil
}

// MaxOffset is the queue's next offset (0 for an unknown queue).
func (s *Store) MaxOffset(topic string, id int32) int64 {
	if q := s.getQueue(topic, id); q != nil {
		return q.Count()
	}
	return 0
}

// MinOffset is the queue's first readable offset.
func (s *Store) MinOffset(topic string, id int32) int64 {
	if q := s.getQueue(topic, id); q != nil {
		return q.MinOffset()
	}
	return 0
}

// ReadMessage reads the message stored at commit-log offset pos.
func (s *Store) ReadMessage(pos int64) (*message.Message, []byte, error) {
	return s.cl.ReadMessage(pos)
}

// ReadAt reads a queue entry's message.
func (s *Store) Entry(topic string, id int32, offset int64) (*message.Message, error) {
	q := s.getQueue(topic, id)
	if q == nil {
		return nil, fmt.Errorf("store: no queue %s/%d", topic, id)
	}
	es, err := q.Get(offset, 1)
	if err != nil {
		return nil, err
	}
	if len(es) == 0 {
		return nil, fmt.Errorf("store: %s/%d has no offset %d", topic, id, offset)
	}
	m, _, err := s.cl.ReadMessage(es[0].Pos)
	return m, err
}

// OffsetByTime returns the first queue offset whose message was stored at or after ts (ms), or the max offset.
func (s *Store) OffsetByTime(topic string, id int32, ts int64) (int64, error) {
	q := s.getQueue(topic, id)
	if q == nil {
		return 0, nil
	}
	lo, hi := q.MinOffset(), q.Count()
	for lo < hi {
		mid := (lo + hi) / 2
		es, err := q.Get(mid, 1)
		if err != nil || len(es) == 0 {
			return 0, err
		}
		head, err := s.cl.ReadAt(es[0].Pos, message.StoreTimestampPos(message.FlagBornHostV6)+8)
		if err != nil {
			lo = mid + 1 // deleted meanwhile
			continue
		}
		sf := int32(binary.BigEndian.Uint32(head[message.PhysicalOffsetPos+8:]))
		p := message.StoreTimestampPos(sf)
		if int64(binary.BigEndian.Uint64(head[p:])) >= ts {
			hi = mid
		} else {
			lo = mid + 1
		}
	}
	return lo, nil
}

// Queues lists the queue ids present for topic.
func (s *Store) Queues(topic string) []int32 {
	s.mu.Lock()
	defer s.mu.Unlock()
	var ids []int32
	for k := range s.queues {
		if k.topic == topic {
			ids = append(ids, k.id)
		}
	}
	return ids
}

// DeleteTopic removes the topic's consume queues; its records stay in the commit log until retention removes
// them. A tombstone at the current end keeps recovery, and a topic created again under the name, from indexing
// them (tombstone.go).
func (s *Store) DeleteTopic(topic string) error {
	if err := s.cl.Flush(); err != nil {
		return err
	}
	s.mu.Lock()
	// The tombstone first (durable), then the queues: records of topic below this position are the old
	// incarnation's, whatever is created under the name later (tombstone.go).
	prev, had := s.tombs[topic]
	s.tombs[topic] = s.cl.WriteOffset()
	if err := s.writeTombstonesLocked(); err != nil {
		if had {
			s.tombs[topic] = prev
		} else {
			delete(s.tombs, topic)
		}
		s.mu.Unlock()
		return err
	}
	for k, q := range s.queues {
		if k.topic == topic {
			q.Close()
			delete(s.queues, k)
		}
	}
	s.mu.Unlock()
	if err := os.RemoveAll(filepath.Join(s.opts.Dir, "consumequeue", topic)); err != nil {
		return fmt.Errorf("store: %w", err)
	}
	return s.Checkpoint()
}

// Stats are store-wide numbers for operators.
type Stats struct {
	MinOffset, WriteOffset, FlushedOffset int64
	Segments                              int
	Bytes                                 int64
}

// Stats reports the commit log's extent.
func (s *Store) Stats() Stats {
	segs := s.cl.Segments()
	st := Stats{MinOffset: s.cl.MinOffset(), WriteOffset: s.cl.WriteOffset(), FlushedOffset: s.cl.FlushedOffset(), Segments: len(segs)}
	for _, sg := range segs {
		st.Bytes += sg.Bytes
	}
	return st
}

func (s *Store) closeQueues() {
	for _, q := range s.queues {
		q.Close()
	}
}

// Close flushes everything, writes a final checkpoint and closes the files.
func (s *Store) Close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.mu.Unlock()
	close(s.stop)
	<-s.done
	err := s.cl.Flush()
	if cerr := s.Checkpoint(); err == nil {
		err = cerr
	}
	s.mu.Lock()
	s.closed = true
	s.closeQueues()
	s.idx.close()
	s.mu.Unlock()
	if cerr := s.cl.Close(); err == nil {
		err = cerr
	}
	return err
}
