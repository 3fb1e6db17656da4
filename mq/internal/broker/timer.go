package broker

import (
	"container/heap"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/tide-run/tide/mq/internal/commitlog"
	"github.com/tide-run/tide/mq/message"
	"github.com/tide-run/tide/mq/mqmeta"
)

// MaxTimerDelay is the longest accepted timer delay (Java's timerMaxDelaySec default: 3 days).
const MaxTimerDelay = 72 * time.Hour

// timerMaxHeld is how many pending timer messages the broker keeps in memory by default: the earliest-due ones.
// Later ones stay only on disk (their consume-queue entries) until the held ones are delivered.
const timerMaxHeld = 16384

// timerCheckpointFile, under config/, records the timer's durable progress (see timers).
const timerCheckpointFile = "timerCheckpoint.json"

// legacyTimerGroup is the consumer group under which tide before the checkpoint kept the timer's progress.
const legacyTimerGroup = "%TIMER%"

// timers delivers 5.x timer messages (TIMER_DELIVER_MS, TIMER_DELAY_SEC, TIMER_DELAY_MS) at any time.
//
// A timer message is stored at once, in queue 0 of mqmeta.TimerTopic, with its due time (TIMER_OUT_MS) also in its
// consume-queue entry's tag field (store.queueTagHash), so the pending set is known from 20-byte entries alone.
// Memory is bounded: the heap holds at most about maxHeld entries, the earliest due; when more are pending, the
// heap covers due times up to horizon only, and once everything up to horizon is delivered the queue is scanned
// again from low for the next window.
//
// Invariants (offsets are timer-queue offsets):
//   - C1: every entry at an offset below seen whose due time is at or before through has been delivered (its copy
//     put in its real topic). through only advances when scanned has caught up with seen, to at most now, horizon
//     and the earliest held due time minus 1 ms.
//   - C2: every entry below scanned that is not delivered and is due at or before horizon is in the heap.
//   - C3: no entry below low is pending.
//
// (through, seen, low) is the durable checkpoint, written (config/timerCheckpoint.json) only once the deliveries it
// covers are on disk (the commit log's flushed offset has passed them), so a crash never loses a timer message; after
// a restart the queue is scanned from low, entries below seen due by through are skipped, and everything else is
// pending again. What was delivered after the last checkpoint (about a second's worth) is delivered again: at least
// once, as RocketMQ promises.
type timers struct {
	b       *Broker
	kick    chan struct{}
	maxHeld int
	path    string

	mu          sync.Mutex // guards everything below; the loop holds it for a whole step
	through     int64      // ms
	seen        int64
	scanned     int64
	low         int64
	horizon     int64 // math.MaxInt64 when the heap holds every pending entry below scanned
	rescanning  bool
	newLow      int64 // first pending offset met by the current rescan, -1 if none yet
	legacyBelow int64 // see timerCheckpoint.LegacyBelow
	h           timerHeap

	lastRetain atomic.Int64 // retainFrom's last answer (0, keep everything, until the first)

	lastEnd    int64           // commit-log end after the latest delivery
	pending    []timerCkptWait // checkpoints waiting for their deliveries to be flushed
	written    timerCheckpoint // the checkpoint on disk
	writtenEnd int64           // the lastEnd it covers
	lastWrite  time.Time
}

type timerCheckpoint struct {
	DeliveredThroughMs int64 `json:"deliveredThroughMs"`
	SeenOffset         int64 `json:"seenOffset"`
	LowOffset          int64 `json:"lowOffset"`
	// LegacyBelow: entries below it were stored by a tide without this checkpoint, whose consume-queue entries hold
	// the tag hash instead of the due time; their due time is read from the commit log.
	LegacyBelow int64 `json:"legacyBelow,omitempty"`
}

type timerCkptWait struct {
	cp  timerCheckpoint
	end int64
}

type timerEntry struct {
	due    int64 // ms
	offset int64 // in the timer queue
	pos    int64 // in the commit log
}

type timerHeap []timerEntry

func (h timerHeap) Len() int { return len(h) }
func (h timerHeap) Less(i, j int) bool {
	return h[i].due < h[j].due || h[i].due == h[j].due && h[i].offset < h[j].offset
}
func (h timerHeap) Swap(i, j int) { h[i], h[j] = h[j], h[i] }
func (h *timerHeap) Push(x any)   { *h = append(*h, x.(timerEntry)) }
func (h *timerHeap) Pop() any {
	old := *h
	e := old[len(old)-1]
	*h = old[:len(old)-1]
	return e
}

func newTimers(b *Broker) (*timers, error) {
	t := &timers{b: b, kick: make(chan struct{}, 1), maxHeld: timerMaxHeld,
		path: filepath.Join(b.opts.DataDir, "config", timerCheckpointFile)}
	data, err := b.opts.FS.ReadFile(t.path)
	switch {
	case err == nil:
		if err := json.Unmarshal(data, &t.written); err != nil {
			return nil, fmt.Errorf("broker: timer checkpoint %s: %w (remove it to deliver every stored timer message again)", t.path, err)
		}
	case os.IsNotExist(err):
		// No checkpoint: a first start, or a data directory of an earlier tide, which kept the first undelivered
		// offset as group %TIMER%'s consumer offset and no due times in the queue's entries.
		if n := b.st.MaxOffset(mqmeta.TimerTopic, 0); n > 0 {
			t.written.LegacyBelow = n
			if p, ok := b.cfg.offset(mqmeta.TimerTopic, legacyTimerGroup, 0); ok {
				t.written = timerCheckpoint{DeliveredThroughMs: b.clock.Now().UnixMilli(), SeenOffset: p, LowOffset: p, LegacyBelow: n}
			}
		}
	default:
		return nil, fmt.Errorf("broker: timer checkpoint: %w", err)
	}
	t.through, t.seen, t.low, t.legacyBelow = t.written.DeliveredThroughMs, t.written.SeenOffset, t.written.LowOffset, t.written.LegacyBelow
	// The queue may have lost its tail in a crash (then offsets above its end will be reused by new messages, which
	// must not count as seen) or its head to retention.
	max, min := b.st.MaxOffset(mqmeta.TimerTopic, 0), b.st.MinOffset(mqmeta.TimerTopic, 0)
	t.seen = clamp(t.seen, min, max)
	t.low = clamp(t.low, min, t.seen)
	t.startRescan()
	return t, nil
}

func clamp(v, lo, hi int64) int64 { return max(lo, min(v, hi)) }

func (t *timers) startRescan() {
	t.h = t.h[:0]
	t.scanned = t.low
	t.horizon = math.MaxInt64
	t.rescanning = true
	t.newLow = -1
}

func (t *timers) wake() {
	select {
	case t.kick <- struct{}{}:
	default:
	}
}

// timerDue returns when a message with timer properties is due, or 0 when it has none, reading them in Java's
// order of precedence: TIMER_DELAY_SEC, then TIMER_DELAY_MS (both from now), then TIMER_DELIVER_MS (epoch ms).
func timerDue(props string, now time.Time) (due int64, ok bool, err error) {
	for _, p := range []struct {
		name string
		unit int64
	}{{message.PropTimerDelaySec, 1000}, {message.PropTimerDelayMS, 1}, {message.PropTimerDeliverMS, 0}} {
		v, found := lookupProperty(props, p.name)
		if !found {
			continue
		}
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil {
			return 0, true, fmt.Errorf("property %s: %q is not an integer", p.name, v)
		}
		if p.unit == 0 {
			return n, true, nil
		}
		nowMs := now.UnixMilli()
		switch { // saturate instead of overflowing: far future is refused, far past is "now"
		case n > (math.MaxInt64-nowMs)/p.unit:
			return math.MaxInt64, true, nil
		case n < (math.MinInt64+nowMs)/p.unit:
			return nowMs, true, nil
		}
		return nowMs + n*p.unit, true, nil
	}
	return 0, false, nil
}

// errTimerIllegal is Java's WHEEL_TIMER_MSG_ILLEGAL answer (code 13), remark word for word.
func errTimerIllegal() error {
	return fmt.Errorf("timer message illegal, the delay time should not be bigger than the max delay %dms; or if set del msg, the delay time should be bigger than the current time",
		MaxTimerDelay.Milliseconds())
}

// applyTimer reroutes a timer message into the timer topic, as Java's HookUtils.handleScheduleMessage does: a
// delay level wins (the timer properties are dropped), a message that already went through the timer
// (TIMER_OUT_MS set) is not a timer message again, a value that is not an integer or a time more than
// MaxTimerDelay ahead is refused (MESSAGE_ILLEGAL), and a time not in the future means "deliver now".
func (b *Broker) applyTimer(m *message.Message) error {
	if m.Topic == mqmeta.TimerTopic || m.Topic == mqmeta.HalfTopic || m.Topic == mqmeta.ScheduleTopic {
		return nil
	}
	if !hasTimerProperty(m.Properties) {
		return nil
	}
	if message.DelayLevel(m.Properties) > 0 {
		props := message.ParseProperties(m.Properties)
		delete(props, message.PropTimerDeliverMS)
		delete(props, message.PropTimerDelaySec)
		delete(props, message.PropTimerDelayMS)
		m.Properties = message.FormatProperties(props)
		return nil
	}
	if _, done := lookupProperty(m.Properties, message.PropTimerOutMS); done {
		return nil
	}
	now := b.clock.Now()
	due, _, err := timerDue(m.Properties, now)
	if err != nil {
		return fmt.Errorf("%w (%v)", errTimerIllegal(), err)
	}
	if due <= now.UnixMilli() {
		return nil
	}
	if due-now.UnixMilli() > MaxTimerDelay.Milliseconds() {
		return errTimerIllegal()
	}
	props := message.ParseProperties(m.Properties)
	props[message.PropRealTopic] = m.Topic
	props[message.PropRealQueueID] = strconv.Itoa(int(m.QueueID))
	props[message.PropTimerOutMS] = strconv.FormatInt(due, 10)
	m.Properties = message.FormatProperties(props)
	m.Topic = mqmeta.TimerTopic
	m.QueueID = 0
	return nil
}

func hasTimerProperty(props string) bool {
	for _, k := range []string{message.PropTimerDeliverMS, message.PropTimerDelaySec, message.PropTimerDelayMS} {
		if _, ok := lookupProperty(props, k); ok {
			return true
		}
	}
	return false
}

// scan examines timer-queue entries from scanned on (see the invariants on timers). It stops early, to deliver
// first, when the heap is full and the next entry is already due.
func (t *timers) scan() error {
	st := t.b.st
	max, min := st.MaxOffset(mqmeta.TimerTopic, 0), st.MinOffset(mqmeta.TimerTopic, 0)
	if t.scanned < min { // retention removed entries: they can no longer be delivered
		t.scanned = min
		t.seen = clamp(t.seen, min, math.MaxInt64)
		t.low = clamp(t.low, min, math.MaxInt64)
	}
	for t.scanned < max {
		es, err := st.QueueEntries(mqmeta.TimerTopic, 0, t.scanned, 1024)
		if err != nil {
			return fmt.Errorf("read the timer queue at %d: %w", t.scanned, err)
		}
		if len(es) == 0 {
			break
		}
		for _, e := range es {
			off, due := t.scanned, e.TagHash
			if off < t.legacyBelow {
				due = t.legacyDue(e.Pos)
			}
			if !(off < t.seen && due <= t.through) { // not delivered yet
				if due <= t.through && len(t.h) >= t.maxHeld && !t.shrinkTo(t.maxHeld-1) {
					return nil // the heap is full of due entries: deliver them first
				}
				if t.rescanning && t.newLow < 0 {
					t.newLow = off
				}
				if due <= t.horizon {
					heap.Push(&t.h, timerEntry{due: due, offset: off, pos: e.Pos})
					if len(t.h) > t.maxHeld+t.maxHeld/4 {
						t.shrinkTo(t.maxHeld)
					}
				}
			}
			t.scanned++
			t.seen = max64(t.seen, t.scanned)
		}
	}
	if t.scanned >= max && t.rescanning {
		t.rescanning = false
		t.low = t.scanned
		if t.newLow >= 0 {
			t.low = t.newLow
		}
	}
	if !t.rescanning && t.horizon == math.MaxInt64 && len(t.h) == 0 {
		t.low = t.scanned // nothing pending at all
	}
	if t.legacyBelow != 0 && t.low >= t.legacyBelow {
		t.legacyBelow = 0 // every legacy entry is delivered
	}
	return nil
}

// legacyDue reads the due time of a timer message stored by an earlier tide from the message itself.
func (t *timers) legacyDue(pos int64) int64 {
	m, _, err := t.b.st.ReadMessage(pos)
	if err != nil {
		return 0 // gone (retention): "due now", and delivery then reports it lost
	}
	due, _ := strconv.ParseInt(message.Property(m.Properties, message.PropTimerOutMS), 10, 64)
	return due
}

func max64(a, b int64) int64 { return max(a, b) }

// shrinkTo keeps at most n entries, the earliest due, and lowers horizon below the rest, which a later rescan finds
// again (entries due at the cut are all dropped, so C2 holds). It refuses (false, nothing changed) when it would
// drop an entry due at or before through: horizon must stay at or above through.
func (t *timers) shrinkTo(n int) bool {
	if len(t.h) <= n {
		return true
	}
	slices.SortFunc(t.h, func(a, b timerEntry) int {
		switch {
		case timerHeap{a, b}.Less(0, 1):
			return -1
		case timerHeap{b, a}.Less(0, 1):
			return 1
		}
		return 0
	})
	// A sorted slice is a heap, so the heap stays valid whatever happens next.
	cut := t.h[n].due
	if cut <= t.through {
		return false
	}
	for n > 0 && t.h[n-1].due >= cut {
		n--
	}
	clear(t.h[n:])
	t.h = t.h[:n]
	t.horizon = cut - 1
	return true
}

// deliverDue runs one step of the timer at time now: scan, deliver what is due, advance through, record the
// checkpoint; it returns when it wants to run again (zero: when woken).
func (t *timers) deliverDue(now time.Time) time.Time {
	t.mu.Lock()
	defer t.mu.Unlock()
	b := t.b
	nowMs := now.UnixMilli()
	retry := now.Add(time.Second)
	for {
		before := [3]int64{t.scanned, t.through, t.lastEnd}
		if !t.rescanning && t.horizon != math.MaxInt64 && t.through >= t.horizon {
			t.startRescan() // the window is delivered: load the next one
		}
		if err := t.scan(); err != nil {
			b.log.Error("timer: scanning failed; will retry", "err", err)
			return retry
		}
		if err := t.deliverBatch(now); err != nil {
			b.log.Error("timer: delivering failed; will retry", "err", err)
			t.noteCheckpoint(now)
			return retry
		}
		if len(t.h) > 0 && t.h[0].due <= nowMs {
			continue // more due than one batch
		}
		if t.scanned >= t.seen {
			to := min(nowMs, t.horizon)
			if len(t.h) > 0 {
				to = min(to, t.h[0].due-1)
			}
			t.through = max(t.through, to)
		}
		if before == [3]int64{t.scanned, t.through, t.lastEnd} {
			break // no progress (a clock set back): wait
		}
		if t.scanned < b.st.MaxOffset(mqmeta.TimerTopic, 0) ||
			!t.rescanning && t.horizon != math.MaxInt64 && t.through >= t.horizon {
			continue // the scan stopped early, or the window is done
		}
		break
	}
	t.noteCheckpoint(now)
	if len(t.h) > 0 {
		return time.UnixMilli(t.h[0].due)
	}
	return time.Time{}
}

// timerBatch bounds how many due messages one put re-stores.
const timerBatch = 256

// deliverBatch re-puts up to timerBatch due messages into their real topics with one store write.
func (t *timers) deliverBatch(now time.Time) error {
	b := t.b
	nowMs := now.UnixMilli()
	var due []timerEntry
	var outs []*message.Message
	for len(t.h) > 0 && t.h[0].due <= nowMs && len(due) < timerBatch {
		e := heap.Pop(&t.h).(timerEntry)
		m, _, err := b.st.ReadMessage(e.pos)
		if errors.Is(err, commitlog.ErrOutOfRange) {
			b.log.Error("timer: a pending timer message was deleted by retention before it fell due; it is lost",
				"offset", e.offset, "due", time.UnixMilli(e.due).UTC())
			continue
		}
		if err != nil {
			heap.Push(&t.h, e)
			for _, d := range due {
				heap.Push(&t.h, d)
			}
			return fmt.Errorf("read timer message at offset %d: %w", e.offset, err)
		}
		due = append(due, e)
		if out := b.timerOut(m, now); out != nil {
			outs = append(outs, out)
		}
	}
	if len(outs) == 0 {
		return nil
	}
	_, end, err := b.st.Put(outs)
	if err != nil {
		for _, d := range due {
			heap.Push(&t.h, d)
		}
		return err
	}
	t.lastEnd = end
	// In sync mode the flusher runs for waiters only: ask it to cover the deliveries, so the checkpoint can follow
	// without waiting for the next send.
	b.st.WhenFlushed(end, func(error) {})
	return nil
}

// timerOut is the message a due timer message becomes in its real topic, as Java's TimerMessageStore builds it:
// properties kept (TIMER_OUT_MS and the sender's timer property included) but REAL_TOPIC and REAL_QID, plus
// TIMER_ENQUEUE_MS (when it entered the timer) and TIMER_DEQUEUE_MS (now). nil if its topic is gone.
func (b *Broker) timerOut(m *message.Message, now time.Time) *message.Message {
	props := message.ParseProperties(m.Properties)
	topic := props[message.PropRealTopic]
	qid, _ := strconv.Atoi(props[message.PropRealQueueID])
	delete(props, message.PropRealTopic)
	delete(props, message.PropRealQueueID)
	props[message.PropTimerEnqueueMS] = strconv.FormatInt(m.StoreTimestamp, 10)
	props[message.PropTimerDequeueMS] = strconv.FormatInt(now.UnixMilli(), 10)
	tc, ok := b.Topic(topic)
	if !ok || tc.WriteQueueNums <= 0 {
		b.log.Warn("timer: dropping a due message: its topic no longer exists", "topic", topic)
		return nil
	}
	if qid < 0 || qid >= tc.WriteQueueNums {
		qid %= tc.WriteQueueNums
		if qid < 0 {
			qid += tc.WriteQueueNums
		}
	}
	return &message.Message{Topic: topic, QueueID: int32(qid), Flag: m.Flag, SysFlag: m.SysFlag,
		BornTimestamp: m.BornTimestamp, BornHost: m.BornHost, ReconsumeTimes: m.ReconsumeTimes, Body: m.Body,
		Properties: message.FormatProperties(props)}
}

// noteCheckpoint queues the current progress to be written once its deliveries are flushed, and writes the newest
// such checkpoint at most once a second. Caller holds t.mu.
func (t *timers) noteCheckpoint(now time.Time) {
	if now.Sub(t.lastWrite) >= time.Second {
		t.low = max(t.low, t.pendingLow())
	}
	cp := timerCheckpoint{DeliveredThroughMs: t.through, SeenOffset: t.seen, LowOffset: t.low, LegacyBelow: t.legacyBelow}
	if t.rescanning { // the rescan has not found the new low yet
		cp.LowOffset = min(t.low, t.written.LowOffset)
	}
	if n := len(t.pending); n == 0 || t.pending[n-1].cp != cp {
		if n > 0 && t.pending[n-1].end == t.lastEnd {
			t.pending[n-1].cp = cp // the same deliveries: the newer progress replaces it
		} else {
			t.pending = append(t.pending, timerCkptWait{cp: cp, end: t.lastEnd})
		}
	}
	if now.Sub(t.lastWrite) < time.Second {
		return
	}
	t.writeFlushed(now)
}

// pendingLow is the lowest timer-queue offset that may still be pending: exact while the heap holds every pending
// entry (no window), else the low of the last rescan. Caller holds t.mu.
func (t *timers) pendingLow() int64 {
	if t.rescanning || t.horizon != math.MaxInt64 {
		return t.low
	}
	low := t.scanned
	for _, e := range t.h {
		low = min(low, e.offset)
	}
	return low
}

// retainFrom is the store's RetainFrom: the commit-log position of the earliest possibly pending timer message,
// so age-based retention keeps the segments of timers not delivered yet (a disk cap still deletes them).
func (t *timers) retainFrom() int64 {
	// The store's background loop (flush, checkpoint) calls this: never wait for a long step to end.
	if !t.mu.TryLock() {
		return t.lastRetain.Load()
	}
	defer t.mu.Unlock()
	pos := t.retainFromLocked()
	t.lastRetain.Store(pos)
	return pos
}

func (t *timers) retainFromLocked() int64 {
	st := t.b.st
	low := max(t.pendingLow(), st.MinOffset(mqmeta.TimerTopic, 0))
	es, err := st.QueueEntries(mqmeta.TimerTopic, 0, low, 1)
	if err != nil {
		t.b.log.Error("timer: reading the timer queue for retention failed; keeping every segment", "err", err)
		return 0
	}
	if len(es) == 0 {
		return math.MaxInt64 // nothing pending
	}
	return es[0].Pos
}

// writeFlushed writes the newest pending checkpoint whose deliveries are on disk. Caller holds t.mu.
func (t *timers) writeFlushed(now time.Time) {
	flushed := t.b.st.FlushedOffset()
	i := -1
	for j, p := range t.pending {
		if p.end <= flushed {
			i = j
		}
	}
	if i < 0 {
		return
	}
	w := t.pending[i]
	t.pending = append(t.pending[:0], t.pending[i+1:]...)
	// Only progress that matters for a restart is worth an fsync: through alone moves with the clock, and with no
	// delivery since the last write no entry below seen fell due in between.
	if w.cp.SeenOffset == t.written.SeenOffset && w.cp.LowOffset == t.written.LowOffset && w.end == t.writtenEnd &&
		w.cp.LegacyBelow == t.written.LegacyBelow && t.lastWrite != (time.Time{}) {
		return
	}
	data, _ := json.Marshal(w.cp)
	if err := commitlog.WriteFileAtomic(t.b.opts.FS, t.path, data); err != nil {
		t.b.log.Error("timer: writing the checkpoint failed; a restart will deliver more again", "err", err)
		return
	}
	t.written, t.writtenEnd, t.lastWrite = w.cp, w.end, now
}

// close writes the final checkpoint at shutdown, after flushing the deliveries it covers.
func (t *timers) close() error {
	t.mu.Lock()
	defer t.mu.Unlock()
	if err := t.b.st.Flush(); err != nil {
		return fmt.Errorf("timer: flush before the last checkpoint: %w", err)
	}
	t.noteCheckpoint(t.b.clock.Now())
	t.writeFlushed(t.b.clock.Now())
	return nil
}

func (t *timers) run() {
	b := t.b
	defer b.wg.Done()
	for {
		next := t.deliverDue(b.clock.Now())
		wait := time.Second // also how often a checkpoint waiting for the flusher is retried
		if !next.IsZero() {
			wait = min(wait, next.Sub(b.clock.Now()))
		}
		wait = max(wait, time.Millisecond)
		tm := b.clock.NewTimer(wait)
		select {
		case <-b.stop:
			tm.Stop()
			return
		case <-t.kick:
			tm.Stop()
		case <-tm.C():
		}
	}
}

// lookupProperty is message.Property that also tells a property with an empty value from a missing one.
func lookupProperty(props, key string) (string, bool) {
	for len(props) > 0 {
		pair := props
		if i := strings.IndexByte(props, '\x02'); i >= 0 {
			pair, props = props[:i], props[i+1:]
		} else {
			props = ""
		}
		if len(pair) > len(key) && pair[len(key)] == '\x01' && pair[:len(key)] == key {
			return pair[len(key)+1:], true
		}
	}
	return "", false
}

// ApplySchedule reroutes a message with a timer property (TIMER_DELIVER_MS, TIMER_DELAY_SEC, TIMER_DELAY_MS) or a
// delay level (DELAY) into the timer or schedule topic, exactly as a remoting send is treated; its error is the
// MESSAGE_ILLEGAL refusal (Apache's remark). In-process producers (the 5.x gRPC endpoint: delivery_timestamp ->
// TIMER_DELIVER_MS) call it before storing, so the properties stay the one interface to delayed delivery.
func (b *Broker) ApplySchedule(m *message.Message) error {
	if err := b.applyTimer(m); err != nil {
		return err
	}
	b.applyDelay(m)
	return nil
}
