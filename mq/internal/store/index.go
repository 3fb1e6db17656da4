package store

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"

	"github.com/tide-run/tide/mq/internal/commitlog"
	"github.com/tide-run/tide/mq/message"
)

// The message index answers QUERY_MESSAGE: which records of a topic carry a key (a KEYS word or the UNIQ_KEY
// message id), newest first, within a store-time range. It is derived data, like the consume queues: written with
// the record in Put's critical section, fsynced before every checkpoint, cut back and rebuilt from the commit log
// after a crash.
//
// Files under <dir>/index are named by the commit-log position of their first entry (20 digits). A file is a run of
// 28-byte entries
//
//	hash u64 (FNV-1a of "topic#key") | pos i64 | store time i64 (ms) | prev u32 (entry number+1 of the previous entry in the same slot, 0 = none)
//
// and, once full ("sealed"), the slot heads (u32 each, entry number+1 of the newest entry of the slot) and a
// 48-byte trailer: magic u32 | slots u32 | entries u32 | lastPos i64 | beginTs i64 | endTs i64 | pad u32 | crc u32
// (CRC-32 of the slot heads and the trailer before it).
// Only the newest file is unsealed; its slot heads live in memory (Slots*4 bytes) and are rebuilt from its entries
// when the store opens. Memory is bounded by that and a 64 KiB write buffer, whatever the number of messages.
// Retention removes a sealed file once every record it points at is gone from the log.
//
// Entries are appended in commit-log order, so in a slot's chain positions (and, with a monotonic clock, times)
// decrease: a query stops at the first entry older than its range, as Java's IndexFile does. Hash collisions are
// resolved by the caller reading the record (Store.QueryMessage checks topic and key).

const (
	idxEntrySize    = 28
	idxTrailerSize  = 48
	idxMagic        = 0x7469_6478 // "tidx"
	idxPendingLimit = 64 << 10
	// idxMaxKeys caps how many keys of one message are indexed (KEYS is space-separated and user-controlled, at most
	// 32 KiB of properties). Trace messages carry one key per traced message and CloudEvent, hundreds of them.
	idxMaxKeys = 4096
	// idxMaxSteps bounds one query's walk along hash chains, so a hot key cannot make a query (which holds the
	// index lock while it walks the unsealed file) arbitrarily long.
	idxMaxSteps = 1 << 16
	// DefaultIndexSlots and DefaultIndexEntries size index files: 512 KiB of slot heads in memory, 14 MiB files.
	DefaultIndexSlots   = 1 << 17
	DefaultIndexEntries = 1 << 19
)

var errIndexCorrupt = errors.New("store: message index corrupt")

type idxFile struct {
	path    string
	f       commitlog.File
	base    int64 // name: position of the first entry
	n       uint32
	slots   uint32
	lastPos int64
	beginTs int64
	endTs   int64
	sealed  bool
}

type msgIndex struct {
	fs         commitlog.FS
	dir        string
	slots      uint32
	maxEntries uint32

	mu       sync.Mutex
	files    []*idxFile       // oldest first; only the last may be unsealed
	unsynced []commitlog.File // sealed since the last sync: fsynced by the next one (before the checkpoint moves)
	heads    []uint32         // slot heads of the unsealed last file
	pending  []byte           // entries of the unsealed file not yet written
	written  uint32           // entries of the unsealed file on disk
	err      error            // last write failure (retried at the next sync)
	// lostFrom is the position of the first record whose entries could not be added (no new file could be
	// created), or -1. The checkpoint must not move past it: sync fails from then on, so the next start re-indexes
	// from a checkpoint before it.
	lostFrom int64
	keys     []string // scratch for add
}

// idxHash is FNV-1a (64 bits) of topic + "#" + key, written out so the send path hashes without an interface.
func idxHash(topic, key string) uint64 {
	const prime = 1099511628211
	h := uint64(14695981039346656037)
	for i := 0; i < len(topic); i++ {
		h = (h ^ uint64(topic[i])) * prime
	}
	h = (h ^ '#') * prime
	for i := 0; i < len(key); i++ {
		h = (h ^ uint64(key[i])) * prime
	}
	return h
}

// indexKeys calls fn for each key of a stored message the index holds: UNIQ_KEY, then each word of KEYS. Rolled-back
// transaction messages are not indexed (as in Java).
func indexKeys(sysFlag int32, props string, fn func(key string)) {
	if sysFlag&message.FlagTxRollback == message.FlagTxRollback {
		return
	}
	// One pass over the properties for both (this runs for every stored message).
	var uniq, keys string
	for rest := props; rest != "" && (uniq == "" || keys == ""); {
		var kv string
		kv, rest, _ = strings.Cut(rest, "\x02")
		k, v, _ := strings.Cut(kv, "\x01")
		switch k {
		case message.PropUniqKey:
			uniq = v
		case message.PropKeys:
			keys = v
		}
	}
	n := 0
	if uniq != "" {
		fn(uniq)
		n++
	}
	rest := keys
	for rest != "" && n < idxMaxKeys {
		var k string
		k, rest, _ = strings.Cut(rest, " ")
		if k != "" {
			fn(k)
			n++
		}
	}
}

// openIndex loads the index files and cuts them back to what the commit log will re-dispatch: it returns the
// position from which records must be (re)indexed, at most from (the checkpoint). A missing directory (an old data
// directory, or the index deleted) or an invalid file makes it rebuild from the start of what was lost.
func openIndex(fs commitlog.FS, dir string, slots, maxEntries uint32, from int64) (*msgIndex, int64, error) {
	x := &msgIndex{fs: fs, dir: dir, slots: slots, maxEntries: maxEntries, lostFrom: -1}
	need := from
	if _, err := fs.List(dir); errors.Is(err, os.ErrNotExist) {
		need = 0 // no index yet (a data directory from before it, or it was deleted): index the whole log
	}
	if err := fs.MkdirAll(dir); err != nil {
		return nil, 0, fmt.Errorf("store: index: %w", err)
	}
	names, err := fs.List(dir)
	if err != nil {
		return nil, 0, fmt.Errorf("store: index: %w", err)
	}
	var bases []int64
	for _, n := range names {
		b, err := strconv.ParseInt(n, 10, 64)
		if err != nil || len(n) != 20 {
			continue
		}
		bases = append(bases, b)
	}
	sort.Slice(bases, func(i, j int) bool { return bases[i] < bases[j] })
	drop := func(from int) error {
		for _, f := range x.files[from:] {
			f.f.Close()
			if err := fs.Remove(f.path); err != nil {
				return fmt.Errorf("store: index: %w", err)
			}
		}
		x.files = x.files[:from]
		return nil
	}
	for i, b := range bases {
		path := filepath.Join(dir, fmt.Sprintf("%020d", b))
		f, err := fs.OpenFile(path, os.O_CREATE|os.O_RDWR, 0o644)
		if err != nil {
			return nil, 0, fmt.Errorf("store: index: %w", err)
		}
		xf := &idxFile{path: path, f: f, base: b, slots: slots}
		x.files = append(x.files, xf)
		ok := xf.readTrailer()
		if !ok && i < len(bases)-1 {
			// Only the newest file may be unsealed: this one and all after it are rebuilt from the log.
			if err := drop(i); err != nil {
				return nil, 0, err
			}
			need = min(need, b)
			break
		}
	}
	// Files starting at or after the re-dispatch point go; the newest remaining one is cut back to it.
	for len(x.files) > 0 && x.files[len(x.files)-1].base >= need {
		if err := drop(len(x.files) - 1); err != nil {
			return nil, 0, err
		}
	}
	if len(x.files) > 0 {
		last := x.files[len(x.files)-1]
		if !last.sealed || last.lastPos >= need {
			if err := x.reopenLast(need); err != nil {
				return nil, 0, err
			}
		}
	}
	return x, need, nil
}

// readTrailer reports whether the file is a valid sealed index file and loads its header fields.
func (xf *idxFile) readTrailer() bool {
	size, err := xf.f.Size()
	if err != nil || size < idxTrailerSize {
		return false
	}
	t := make([]byte, idxTrailerSize)
	if _, err := xf.f.ReadAt(t, size-idxTrailerSize); err != nil {
		return false
	}
	if binary.BigEndian.Uint32(t) != idxMagic {
		return false
	}
	slots, n := binary.BigEndian.Uint32(t[4:]), binary.BigEndian.Uint32(t[8:])
	if size != int64(n)*idxEntrySize+int64(slots)*4+idxTrailerSize || slots == 0 {
		return false
	}
	heads := make([]byte, int(slots)*4)
	if _, err := xf.f.ReadAt(heads, int64(n)*idxEntrySize); err != nil {
		return false
	}
	if crc32.Update(crc32.ChecksumIEEE(heads), crc32.IEEETable, t[:44]) != binary.BigEndian.Uint32(t[44:]) {
		return false
	}
	xf.slots, xf.n, xf.sealed = slots, n, true
	xf.lastPos = int64(binary.BigEndian.Uint64(t[12:]))
	xf.beginTs = int64(binary.BigEndian.Uint64(t[20:]))
	xf.endTs = int64(binary.BigEndian.Uint64(t[28:]))
	return true
}

// reopenLast makes the newest file the unsealed one again, keeping only entries for positions below need, and
// rebuilds its slot heads.
func (x *msgIndex) reopenLast(need int64) error {
	last := x.files[len(x.files)-1]
	size, err := last.f.Size()
	if err != nil {
		return fmt.Errorf("store: index: %w", err)
	}
	n := size / idxEntrySize
	if last.sealed {
		n = int64(last.n)
	}
	last.sealed, last.slots, last.n, last.lastPos, last.beginTs, last.endTs = false, x.slots, 0, 0, 0, 0
	x.heads = make([]uint32, x.slots)
	buf := make([]byte, 64<<10/idxEntrySize*idxEntrySize)
	for off := int64(0); off < n; {
		k := min(int64(len(buf)/idxEntrySize), n-off)
		b := buf[:k*idxEntrySize]
		if _, err := last.f.ReadAt(b, off*idxEntrySize); err != nil {
			return fmt.Errorf("store: index: read %s: %w", last.path, err)
		}
		for i := int64(0); i < k; i++ {
			e := b[i*idxEntrySize:]
			h, pos, ts := binary.BigEndian.Uint64(e), int64(binary.BigEndian.Uint64(e[8:])), int64(binary.BigEndian.Uint64(e[16:]))
			if pos >= need || pos < last.lastPos {
				n = off + i // cut here: re-dispatched (or out of order, which only a damaged file has)
				break
			}
			// Rewrite prev from the rebuilt heads, so a damaged chain cannot point anywhere.
			slot := uint32(h % uint64(x.slots))
			binary.BigEndian.PutUint32(e[24:], x.heads[slot])
			if _, err := last.f.WriteAt(e[24:28], (off+i)*idxEntrySize+24); err != nil {
				return fmt.Errorf("store: index: %w", err)
			}
			x.heads[slot] = uint32(off+i) + 1
			last.noteEntry(pos, ts)
		}
		off += k
	}
	if err := last.f.Truncate(n * idxEntrySize); err != nil {
		return fmt.Errorf("store: index: cut %s: %w", last.path, err)
	}
	x.written = uint32(n)
	return nil
}

func (xf *idxFile) noteEntry(pos, ts int64) {
	if xf.n == 0 {
		xf.beginTs, xf.endTs = ts, ts
	}
	xf.n++
	xf.lastPos = pos
	xf.beginTs = min(xf.beginTs, ts)
	xf.endTs = max(xf.endTs, ts)
}

// add indexes the record at pos. Called in commit-log order (Put's critical section, or recovery).
func (x *msgIndex) add(pos, ts int64, topic string, sysFlag int32, props string) {
	x.mu.Lock()
	defer x.mu.Unlock()
	keys := x.keys[:0]
	indexKeys(sysFlag, props, func(k string) { keys = append(keys, k) })
	defer func() {
		clear(keys) // the keys point into the message's properties
		if x.keys = keys[:0]; cap(keys) > 256 {
			x.keys = nil // a message with many keys does not pin a large scratch slice
		}
	}()
	nk := len(keys)
	if nk == 0 {
		return
	}
	if len(x.files) > 0 {
		if last := x.files[len(x.files)-1]; pos <= last.lastPos && last.n > 0 {
			return // already indexed (recovery re-dispatching what the index kept)
		}
	}
	if err := x.ensureRoom(pos, uint32(nk)); err != nil {
		x.err = err
		if x.lostFrom < 0 {
			x.lostFrom = pos
		}
		return
	}
	last := x.files[len(x.files)-1]
	for _, k := range keys {
		h := idxHash(topic, k)
		slot := uint32(h % uint64(x.slots))
		var e [idxEntrySize]byte
		binary.BigEndian.PutUint64(e[:], h)
		binary.BigEndian.PutUint64(e[8:], uint64(pos))
		binary.BigEndian.PutUint64(e[16:], uint64(ts))
		binary.BigEndian.PutUint32(e[24:], x.heads[slot])
		x.pending = append(x.pending, e[:]...)
		last.noteEntry(pos, ts)
		x.heads[slot] = last.n
	}
	if len(x.pending) >= idxPendingLimit {
		x.err = x.writePendingLocked()
	}
}

// ensureRoom makes sure the unsealed file can take n more entries, sealing the full one and starting a new one
// named by pos. Caller holds x.mu.
func (x *msgIndex) ensureRoom(pos int64, n uint32) error {
	if len(x.files) > 0 {
		last := x.files[len(x.files)-1]
		if !last.sealed && last.n+n <= x.maxEntries {
			return nil
		}
		if !last.sealed {
			if err := x.sealLocked(last); err != nil {
				return err
			}
		}
	}
	path := filepath.Join(x.dir, fmt.Sprintf("%020d", pos))
	f, err := x.fs.OpenFile(path, os.O_CREATE|os.O_RDWR|os.O_TRUNC, 0o644)
	if err != nil {
		return fmt.Errorf("store: index: %w", err)
	}
	x.files = append(x.files, &idxFile{path: path, f: f, base: pos, slots: x.slots})
	if x.heads == nil {
		x.heads = make([]uint32, x.slots)
	} else {
		clear(x.heads)
	}
	x.written = 0
	return nil
}

func (x *msgIndex) writePendingLocked() error {
	if len(x.pending) == 0 || len(x.files) == 0 {
		return nil
	}
	last := x.files[len(x.files)-1]
	if _, err := last.f.WriteAt(x.pending, int64(x.written)*idxEntrySize); err != nil {
		return fmt.Errorf("store: index: write %s: %w", last.path, err)
	}
	x.written += uint32(len(x.pending) / idxEntrySize)
	x.pending = x.pending[:0]
	return nil
}

// sealLocked writes the slot heads and trailer after the entries. Caller holds x.mu.
func (x *msgIndex) sealLocked(last *idxFile) error {
	if err := x.writePendingLocked(); err != nil {
		return err
	}
	b := make([]byte, 0, int(x.slots)*4+idxTrailerSize)
	for _, h := range x.heads {
		b = binary.BigEndian.AppendUint32(b, h)
	}
	t := binary.BigEndian.AppendUint32(nil, idxMagic)
	t = binary.BigEndian.AppendUint32(t, x.slots)
	t = binary.BigEndian.AppendUint32(t, last.n)
	t = binary.BigEndian.AppendUint64(t, uint64(last.lastPos))
	t = binary.BigEndian.AppendUint64(t, uint64(last.beginTs))
	t = binary.BigEndian.AppendUint64(t, uint64(last.endTs))
	t = binary.BigEndian.AppendUint32(t, 0)
	// The CRC covers the slot heads too: they are written with the trailer and fsynced only at the next sync.
	t = binary.BigEndian.AppendUint32(t, crc32.Update(crc32.ChecksumIEEE(b), crc32.IEEETable, t))
	b = append(b, t...)
	if _, err := last.f.WriteAt(b, int64(last.n)*idxEntrySize); err != nil {
		return fmt.Errorf("store: index: seal %s: %w", last.path, err)
	}
	// No fsync here, in the send path: the next sync (before the checkpoint covers these entries) does it. A crash
	// before then leaves at worst a torn trailer, and openIndex rebuilds that file from the log.
	x.unsynced = append(x.unsynced, last.f)
	last.sealed = true
	return nil
}

// sync writes buffered entries and fsyncs the unsealed file (before a checkpoint covers them).
func (x *msgIndex) sync() error {
	x.mu.Lock()
	if x.lostFrom >= 0 {
		err := fmt.Errorf("store: index: entries from position %d were not written (%w); the checkpoint stays before them until a restart re-indexes them", x.lostFrom, x.err)
		x.mu.Unlock()
		return err
	}
	err := x.writePendingLocked()
	fs := x.unsynced
	x.unsynced = nil
	if len(x.files) > 0 && !x.files[len(x.files)-1].sealed {
		fs = append(fs, x.files[len(x.files)-1].f)
	}
	if err == nil {
		x.err = nil
	}
	x.mu.Unlock()
	if err != nil {
		x.requeue(fs)
		return err
	}
	for i, f := range fs {
		if err := f.Sync(); err != nil {
			x.requeue(fs[i:])
			return fmt.Errorf("store: index: %w", err)
		}
	}
	return nil
}

// requeue keeps files whose fsync failed (or did not run) for the next sync.
func (x *msgIndex) requeue(fs []commitlog.File) {
	x.mu.Lock()
	defer x.mu.Unlock()
	for _, f := range fs {
		if len(x.files) == 0 || f != x.files[len(x.files)-1].f || x.files[len(x.files)-1].sealed {
			x.unsynced = append(x.unsynced, f)
		}
	}
}

// clean removes sealed files whose every entry points below the log's min.
func (x *msgIndex) clean(logMin int64) error {
	x.mu.Lock()
	defer x.mu.Unlock()
	for len(x.files) > 1 && x.files[0].sealed && x.files[0].lastPos < logMin {
		f := x.files[0]
		for i, u := range x.unsynced {
			if u == f.f {
				x.unsynced = append(x.unsynced[:i], x.unsynced[i+1:]...)
				break
			}
		}
		f.f.Close()
		if err := x.fs.Remove(f.path); err != nil {
			return fmt.Errorf("store: index: %w", err)
		}
		x.files = x.files[1:]
	}
	return nil
}

func (x *msgIndex) close() {
	x.mu.Lock()
	defer x.mu.Unlock()
	for _, f := range x.files {
		f.f.Close()
	}
	x.files = nil
}

// entryAt reads entry i (0-based) of file xf. For the unsealed file the caller holds x.mu.
func (x *msgIndex) entryAt(xf *idxFile, unsealed bool, i uint32, buf []byte) ([]byte, error) {
	if unsealed && i >= x.written {
		off := int(i-x.written) * idxEntrySize
		if off+idxEntrySize > len(x.pending) {
			return nil, fmt.Errorf("%w: entry %d of %s beyond its end", errIndexCorrupt, i, xf.path)
		}
		return x.pending[off : off+idxEntrySize], nil
	}
	if _, err := xf.f.ReadAt(buf[:idxEntrySize], int64(i)*idxEntrySize); err != nil {
		return nil, fmt.Errorf("store: index: read %s: %w", xf.path, err)
	}
	return buf[:idxEntrySize], nil
}

// IndexStats is where the index stands: the store time and commit-log position of the newest indexed record (the
// QUERY_MESSAGE response's indexLastUpdateTimestamp and indexLastUpdatePhyoffset).
type IndexStats struct {
	LastTimestamp, LastPos int64
	Files                  int
}

func (x *msgIndex) stats() IndexStats {
	x.mu.Lock()
	defer x.mu.Unlock()
	st := IndexStats{Files: len(x.files)}
	if len(x.files) > 0 {
		last := x.files[len(x.files)-1]
		st.LastTimestamp, st.LastPos = last.endTs, last.lastPos
	}
	return st
}

// lookup returns the positions of entries for (topic, key) stored in [begin, end] ms, newest first, at most max.
func (x *msgIndex) lookup(topic, key string, max int, begin, end int64) ([]int64, error) {
	h := idxHash(topic, key)
	var out []int64
	steps := 0
	// The unsealed file is walked under the lock (its heads and buffer change with every put); sealed files are
	// immutable, so the lock is only held to copy the list and sends do not wait on a query's disk reads.
	x.mu.Lock()
	files := slices.Clone(x.files)
	if n := len(files); n > 0 && !files[n-1].sealed {
		var err error
		out, steps, err = x.walk(files[n-1], true, h, max, begin, end, out, steps)
		files = files[:n-1]
		if err != nil {
			x.mu.Unlock()
			return out, err
		}
	}
	x.mu.Unlock()
	for fi := len(files) - 1; fi >= 0 && len(out) < max && steps < idxMaxSteps; fi-- {
		xf := files[fi]
		if xf.endTs < begin {
			break // older files are older still
		}
		var err error
		if out, steps, err = x.walk(xf, false, h, max, begin, end, out, steps); err != nil {
			return out, err
		}
	}
	return out, nil
}

// walk follows hash h's chain in one file, appending matching positions. For the unsealed file the caller holds x.mu.
func (x *msgIndex) walk(xf *idxFile, unsealed bool, h uint64, max int, begin, end int64, out []int64, steps int) ([]int64, int, error) {
	if xf.n == 0 || xf.endTs < begin || xf.beginTs > end {
		return out, steps, nil
	}
	var buf [idxEntrySize]byte
	slot := uint32(h % uint64(xf.slots))
	var next uint32
	if unsealed {
		next = x.heads[slot]
	} else {
		if _, err := xf.f.ReadAt(buf[:4], int64(xf.n)*idxEntrySize+int64(slot)*4); err != nil {
			return out, steps, fmt.Errorf("store: index: read %s: %w", xf.path, err)
		}
		next = binary.BigEndian.Uint32(buf[:4])
	}
	for next != 0 && len(out) < max && steps < idxMaxSteps {
		steps++
		if next > xf.n {
			return out, steps, fmt.Errorf("%w: %s: chain points at entry %d of %d", errIndexCorrupt, xf.path, next, xf.n)
		}
		e, err := x.entryAt(xf, unsealed, next-1, buf[:])
		if err != nil {
			return out, steps, err
		}
		eh, pos, ts, prev := binary.BigEndian.Uint64(e), int64(binary.BigEndian.Uint64(e[8:])), int64(binary.BigEndian.Uint64(e[16:])), binary.BigEndian.Uint32(e[24:])
		if eh == h && ts >= begin && ts <= end {
			out = append(out, pos)
		}
		if ts < begin || prev >= next {
			break
		}
		next = prev
	}
	return out, steps, nil
}

// checkIndex verifies invariant 5: every entry is reachable from its slot, and the entries are exactly the keys of
// the records in [logMin, write offset) that their files cover.
func (s *Store) checkIndex() error {
	x := s.idx
	x.mu.Lock()
	defer x.mu.Unlock()
	type ent struct {
		hash uint64
		pos  int64
	}
	have := map[ent]int{}
	var buf [idxEntrySize]byte
	for fi, xf := range x.files {
		unsealed := fi == len(x.files)-1 && !xf.sealed
		reached := uint32(0)
		for slot := uint32(0); slot < xf.slots; slot++ {
			var next uint32
			if unsealed {
				next = x.heads[slot]
			} else {
				if _, err := xf.f.ReadAt(buf[:4], int64(xf.n)*idxEntrySize+int64(slot)*4); err != nil {
					return fmt.Errorf("invariant 5: %s: %w", xf.path, err)
				}
				next = binary.BigEndian.Uint32(buf[:4])
			}
			for next != 0 {
				if next > xf.n || reached > xf.n {
					return fmt.Errorf("invariant 5: %s: slot %d chain broken at entry %d of %d", xf.path, slot, next, xf.n)
				}
				e, err := x.entryAt(xf, unsealed, next-1, buf[:])
				if err != nil {
					return fmt.Errorf("invariant 5: %w", err)
				}
				h, pos, prev := binary.BigEndian.Uint64(e), int64(binary.BigEndian.Uint64(e[8:])), binary.BigEndian.Uint32(e[24:])
				if uint32(h%uint64(xf.slots)) != slot || prev >= next {
					return fmt.Errorf("invariant 5: %s: entry %d in the wrong chain", xf.path, next-1)
				}
				if pos >= s.cl.MinOffset() {
					have[ent{h, pos}]++
				}
				reached++
				next = prev
			}
		}
		if reached != xf.n {
			return fmt.Errorf("invariant 5: %s: %d of %d entries reachable from their slots", xf.path, reached, xf.n)
		}
	}
	var covered int64 = -1
	if len(x.files) > 0 {
		covered = x.files[len(x.files)-1].lastPos
	}
	err := s.cl.Scan(s.cl.MinOffset(), func(pos int64, rec []byte) error {
		if pos > covered {
			return nil
		}
		m, _, err := message.Decode(rec)
		if err != nil {
			return fmt.Errorf("invariant 5: record at %d: %w", pos, err)
		}
		var missing string
		indexKeys(m.SysFlag, m.Properties, func(k string) {
			e := ent{idxHash(m.Topic, k), pos}
			if have[e] == 0 && missing == "" {
				missing = k
			}
			have[e]--
		})
		if missing != "" {
			return fmt.Errorf("invariant 5: record at %d (%s) not indexed by key %q", pos, m.Topic, missing)
		}
		return nil
	})
	if err != nil {
		return err
	}
	for e, n := range have {
		if n > 0 {
			return fmt.Errorf("invariant 5: index entry for position %d matches no key of a record there", e.pos)
		}
	}
	return nil
}
