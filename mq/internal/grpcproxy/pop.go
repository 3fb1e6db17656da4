package grpcproxy

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/tide-run/tide/mq/internal/commitlog"
	"github.com/tide-run/tide/mq/internal/store"
	"github.com/tide-run/tide/mq/message"
	"github.com/tide-run/tide/mq/mqmeta"
)

// qref names one queue as a consumer group reads it; topic is the stored topic (a %RETRY% topic included).
type qref struct {
	Group string `json:"group"`
	Topic string `json:"topic"`
	Queue int32  `json:"queue"`
}

// flight is a message handed out and not yet acknowledged.
type flight struct {
	deadline time.Time // visible again after this
	attempts int32     // deliveries by this endpoint so far
	gen      uint64    // the receipt handle's generation: a handle from an earlier delivery no longer acks
	renew    renewal   // a push consumer's delivery, renewed while it is connected (renew.go); not persisted
}

// popQueue is a group's POP progress on one queue. Invariant: every offset in [commit, next) is in inflight or
// acked; commit (the group's committed offset, shared with remoting consumers) never passes an unacknowledged one.
type popQueue struct {
	commit   int64
	next     int64
	inflight map[int64]*flight
	acked    map[int64]bool
}

// popState is the POP table of every group and queue, persisted to path as JSON.
type popState struct {
	s    *Server
	path string

	mu       sync.Mutex // guards everything below; store reads and DLQ writes happen under it
	qs       map[qref]*popQueue
	restored map[qref]persistedQueue // from the file, applied when a queue is first used
	gen      uint64
	dirty    bool
	cursor   map[string]int // round-robin start queue per group@topic
}

type persistedFlight struct {
	Offset   int64 `json:"o"`
	Attempts int32 `json:"a"`
	Deadline int64 `json:"d"`
}

type persistedQueue struct {
	qref
	Commit   int64             `json:"commit"`
	Acked    []int64           `json:"acked,omitempty"`
	Inflight []persistedFlight `json:"inflight,omitempty"`
}

func newPopState(s *Server, path string) (*popState, error) {
	p := &popState{s: s, path: path, qs: map[qref]*popQueue{}, restored: map[qref]persistedQueue{},
		gen: uint64(time.Now().UnixNano()), cursor: map[string]int{}}
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return p, nil
	}
	if err != nil {
		return nil, fmt.Errorf("grpcproxy: reading the in-flight table: %w", err)
	}
	var file struct {
		Queues []persistedQueue `json:"queues"`
	}
	if err := json.Unmarshal(b, &file); err != nil {
		return nil, fmt.Errorf("grpcproxy: %s: %w (move it away to start without it; in-flight messages are then redelivered from the committed offsets)", path, err)
	}
	for _, q := range file.Queues {
		p.restored[q.qref] = q
	}
	return p, nil
}

// persist writes the table when it changed (or always, with force).
func (p *popState) persist(force bool) error {
	p.mu.Lock()
	if !p.dirty && !force {
		p.mu.Unlock()
		return nil
	}
	var file struct {
		Queues []persistedQueue `json:"queues"`
	}
	for _, q := range p.restored { // not touched since the restart: keep them
		file.Queues = append(file.Queues, q)
	}
	for r, q := range p.qs {
		pq := persistedQueue{qref: r, Commit: q.commit}
		for off := range q.acked {
			pq.Acked = append(pq.Acked, off)
		}
		slices.Sort(pq.Acked)
		for off, f := range q.inflight {
			pq.Inflight = append(pq.Inflight, persistedFlight{Offset: off, Attempts: f.attempts, Deadline: f.deadline.UnixMilli()})
		}
		slices.SortFunc(pq.Inflight, func(a, b persistedFlight) int { return int(a.Offset - b.Offset) })
		if len(pq.Acked) == 0 && len(pq.Inflight) == 0 {
			continue // the committed offset says it all
		}
		file.Queues = append(file.Queues, pq)
	}
	p.dirty = false
	p.mu.Unlock()
	b, err := json.Marshal(file)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(p.path), 0o755); err != nil {
		return fmt.Errorf("grpcproxy: %w", err)
	}
	if err := commitlog.WriteFileAtomic(commitlog.OS{}, p.path, b); err != nil {
		p.mu.Lock()
		p.dirty = true
		p.mu.Unlock()
		return err
	}
	return nil
}

// queue returns a queue's state, loading it from the committed offset and the persisted table. Locked.
func (p *popState) queue(r qref) *popQueue {
	if q := p.qs[r]; q != nil {
		return q
	}
	b := p.s.b
	commit, ok := b.Offset(r.Topic, r.Group, r.Queue)
	if !ok {
		commit = b.InitialOffset(r.Topic, r.Queue)
		if mqmeta.IsRetryTopic(r.Topic) {
			commit = b.Store().MinOffset(r.Topic, r.Queue)
		}
		b.SetOffset(r.Topic, r.Group, r.Queue, commit)
	}
	saved, restored := p.restored[r]
	if restored && saved.Commit > commit {
		// The table was written after the offsets: its commit only ever passed acknowledged messages.
		commit = saved.Commit
		b.SetOffset(r.Topic, r.Group, r.Queue, commit)
	}
	q := &popQueue{commit: commit, next: commit, inflight: map[int64]*flight{}, acked: map[int64]bool{}}
	if restored {
		delete(p.restored, r)
		for _, off := range saved.Acked {
			if off >= commit {
				p.markAcked(q, off)
			}
		}
		for _, f := range saved.Inflight {
			if f.Offset >= commit {
				p.gen++
				q.inflight[f.Offset] = &flight{deadline: time.UnixMilli(f.Deadline), attempts: f.Attempts, gen: p.gen}
			}
		}
	}
	p.qs[r] = q
	return q
}

// advance moves commit over acknowledged offsets and commits it. Locked.
func (p *popState) advance(r qref, q *popQueue) {
	old := q.commit
	for q.acked[q.commit] {
		delete(q.acked, q.commit)
		q.commit++
	}
	if q.commit > q.next {
		q.next = q.commit
	}
	if q.commit != old {
		p.s.b.SetOffset(r.Topic, r.Group, r.Queue, q.commit)
		p.dirty = true
	}
}

// delivery is one message handed to a receive.
type delivery struct {
	m       *message.Message
	handle  string
	attempt int32
}

// receiveReq is what a receive asks for.
type receiveReq struct {
	group, topic string
	filter       *filter
	batch        int
	invisible    time.Duration
	fifo         bool
	maxAttempts  int32
	renewFor     string // a push consumer's client id (auto_renew): its deliveries are renewed (renew.go)
}

// receive hands out up to batch visible messages of topic (and of the group's retry topic whose origin is topic).
// Lapsed ones come first, then new ones. FIFO: a queue with a message still invisible gives nothing; otherwise
// its lapsed messages come again in order before anything newer. It returns the next time something lapses.
func (p *popState) receive(ctx context.Context, rq receiveReq) ([]delivery, time.Time, error) {
	t, ok := p.s.b.Topic(rq.topic)
	if !ok {
		return nil, time.Time{}, errTopicGone
	}
	refs := make([]qref, 0, t.ReadQueueNums+1)
	retry := mqmeta.RetryTopic(rq.group)
	if _, ok := p.s.b.Topic(retry); ok {
		refs = append(refs, qref{rq.group, retry, 0})
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	key := rq.group + "@" + rq.topic
	start := p.cursor[key]
	p.cursor[key] = start + 1
	for i := 0; i < t.ReadQueueNums; i++ {
		refs = append(refs, qref{rq.group, rq.topic, int32((start + i) % t.ReadQueueNums)})
	}
	now := p.s.b.Clock().Now()
	var out []delivery
	bytes := 0
	full := func() bool { return len(out) >= rq.batch || bytes >= maxReceiveBytes }
	var wake time.Time
	noteWake := func(d time.Time) {
		if wake.IsZero() || d.Before(wake) {
			wake = d
		}
	}
	for _, r := range refs {
		if full() {
			break
		}
		q := p.queue(r)
		var lapsed []int64
		blocked := false
		for off, f := range q.inflight {
			if f.deadline.After(now) {
				noteWake(f.deadline)
				blocked = true
			} else {
				lapsed = append(lapsed, off)
			}
		}
		if rq.fifo && blocked {
			continue
		}
		slices.Sort(lapsed)
		for _, off := range lapsed {
			if full() {
				break
			}
			f := q.inflight[off]
			m, err := p.s.b.Store().Entry(r.Topic, r.Queue, off)
			if err != nil { // gone (retention): nothing left to deliver
				delete(q.inflight, off)
				p.markAcked(q, off)
				continue
			}
			if r.Topic == retry && message.Property(m.Properties, message.PropRetryTopic) != rq.topic {
				continue
			}
			if m.ReconsumeTimes+f.attempts >= rq.maxAttempts {
				if err := p.deadLetter(ctx, rq.group, m, m.ReconsumeTimes+f.attempts); err != nil {
					return out, wake, err
				}
				delete(q.inflight, off)
				p.markAcked(q, off)
				continue
			}
			f.attempts++
			out = append(out, p.handOut(r, m, f, rq.invisible, now))
			f.renew = newRenewal(rq.renewFor, now)
			bytes += len(m.Body)
		}
		if rq.fifo && len(q.inflight) > 0 {
			p.advance(r, q)
			continue // the queue's earlier messages are out again: nothing newer before they are done
		}
		for !full() {
			res, err := p.s.b.Store().Get(r.Topic, r.Queue, q.next, rq.batch-len(out), maxReceiveBytes-bytes, nil)
			if err != nil {
				return out, wake, err
			}
			if res.Status == store.OffsetTooSmall || res.Status == store.OffsetOverflowBadly {
				// Retention removed messages below next, or the queue is shorter than the commit (deleted and
				// re-created topic): continue from what is there, as a pull would after "offset moved".
				for off := q.commit; off < res.NextBegin; off++ {
					if q.inflight[off] == nil {
						p.markAcked(q, off)
					}
				}
				q.next = res.NextBegin
				if res.Status == store.OffsetOverflowBadly {
					q.commit, q.next = res.NextBegin, res.NextBegin
					clear(q.acked)
					p.s.b.SetOffset(r.Topic, r.Group, r.Queue, q.commit)
				}
				continue
			}
			if len(res.Messages) == 0 {
				if res.Status == store.NoMatchedMessage && res.NextBegin > q.next { // entries below the log's start
					for off := q.next; off < res.NextBegin; off++ {
						if q.inflight[off] == nil {
							p.markAcked(q, off)
						}
					}
					q.next = res.NextBegin
					continue
				}
				break
			}
			stop := false
			for i, raw := range res.Messages {
				off := res.Offsets[i]
				if off < q.next || q.inflight[off] != nil || q.acked[off] {
					if off >= q.next {
						q.next = off + 1
					}
					continue
				}
				m, _, err := message.Decode(raw)
				if err != nil {
					p.s.log.Warn("undecodable stored message skipped", "topic", r.Topic, "queue", r.Queue, "offset", off, "err", err)
					p.markAcked(q, off)
					q.next = off + 1
					continue
				}
				if r.Topic == retry && message.Property(m.Properties, message.PropRetryTopic) != rq.topic {
					stop = true // another topic's retry: it waits for a receive of that topic
					break
				}
				q.next = off + 1
				if !rq.filter.match(m) {
					p.markAcked(q, off) // not for this subscription: consumed, as Apache's pop does
					continue
				}
				if m.ReconsumeTimes >= rq.maxAttempts {
					if err := p.deadLetter(ctx, rq.group, m, m.ReconsumeTimes); err != nil {
						return out, wake, err
					}
					p.markAcked(q, off)
					continue
				}
				f := &flight{attempts: 1, renew: newRenewal(rq.renewFor, now)}
				q.inflight[off] = f
				out = append(out, p.handOut(r, m, f, rq.invisible, now))
				bytes += len(m.Body)
			}
			if stop {
				break
			}
		}
		p.advance(r, q)
	}
	return out, wake, nil
}

// markAcked records off as done (acknowledged, filtered out, dead-lettered or gone). Locked.
func (p *popState) markAcked(q *popQueue, off int64) {
	delete(q.inflight, off)
	q.acked[off] = true
	p.dirty = true
}

// handOut makes f a fresh delivery of m. Locked.
func (p *popState) handOut(r qref, m *message.Message, f *flight, invisible time.Duration, now time.Time) delivery {
	p.gen++
	f.gen = p.gen
	f.deadline = now.Add(invisible)
	p.dirty = true
	return delivery{m: m, handle: encodeHandle(r, m.QueueOffset, f.gen, f.deadline), attempt: m.ReconsumeTimes + f.attempts}
}

// deadLetter stores m in the group's %DLQ% topic, marked as Java's send-back marks dead letters. Locked.
func (p *popState) deadLetter(ctx context.Context, group string, m *message.Message, reconsumed int32) error {
	props := message.ParseProperties(m.Properties)
	origin := props[message.PropRetryTopic]
	if origin == "" {
		origin = m.Topic
		props[message.PropRetryTopic] = origin
	}
	id := props[message.PropOriginMessageID]
	if id == "" {
		id = props[message.PropUniqKey]
	}
	if id == "" {
		id = message.OffsetMsgID(m.StoreHost, m.PhysicalOffset)
	}
	props[message.PropOriginMessageID] = id
	props[message.PropDLQOriginTopic] = origin
	props[message.PropDLQOriginMsgID] = id
	delete(props, message.PropDelayLevel)
	delete(props, message.PropTimerDeliverMS)
	delete(props, message.PropTimerDelaySec)
	delete(props, message.PropTimerDelayMS)
	dlq := mqmeta.DLQTopic(group)
	if _, ok := p.s.b.SystemTopic(dlq); !ok {
		return fmt.Errorf("topic %s cannot be created", dlq)
	}
	out := &message.Message{Topic: dlq, Flag: m.Flag, SysFlag: m.SysFlag &^ message.TxTypeMask, BornTimestamp: m.BornTimestamp,
		BornHost: m.BornHost, ReconsumeTimes: reconsumed, Body: m.Body, Properties: message.FormatProperties(props)}
	if _, err := p.s.b.Put(ctx, []*message.Message{out}, false); err != nil {
		return fmt.Errorf("dead-lettering a message of %s: %w", origin, err)
	}
	p.s.log.Info("message dead-lettered", "group", group, "topic", origin, "deliveries", reconsumed, "messageId", id)
	return nil
}

// handle is a decoded receipt handle.
type handle struct {
	ref      qref
	offset   int64
	gen      uint64
	deadline time.Time
}

// encodeHandle writes "1 queue offset gen deadlineMs topic" (the topic last: it is the only part with free text).
func encodeHandle(r qref, off int64, gen uint64, deadline time.Time) string {
	return "1 " + strconv.Itoa(int(r.Queue)) + " " + strconv.FormatInt(off, 10) + " " + strconv.FormatUint(gen, 10) +
		" " + strconv.FormatInt(deadline.UnixMilli(), 10) + " " + r.Topic
}

func decodeHandle(group, s string) (handle, bool) {
	parts := strings.SplitN(s, " ", 6)
	if len(parts) != 6 || parts[0] != "1" {
		return handle{}, false
	}
	q, err1 := strconv.ParseInt(parts[1], 10, 32)
	off, err2 := strconv.ParseInt(parts[2], 10, 64)
	gen, err3 := strconv.ParseUint(parts[3], 10, 64)
	dl, err4 := strconv.ParseInt(parts[4], 10, 64)
	if err1 != nil || err2 != nil || err3 != nil || err4 != nil || parts[5] == "" {
		return handle{}, false
	}
	return handle{ref: qref{group, parts[5], int32(q)}, offset: off, gen: gen, deadline: time.UnixMilli(dl)}, true
}

// Errors of handle operations, mapped to v2 codes by the callers.
var (
	errHandleExpired = errors.New("receipt handle is expired")
	errHandleStale   = errors.New("receipt handle is not the message's current one (it was redelivered or its invisible time changed)")
	errTopicGone     = errors.New("topic not found")
)

// ack acknowledges the delivery h names. Acknowledging a message already acknowledged succeeds.
func (p *popState) ack(h handle) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	q := p.queue(h.ref)
	if h.offset < q.commit || q.acked[h.offset] {
		return nil
	}
	f := q.inflight[h.offset]
	if f == nil {
		return errHandleStale
	}
	if f.gen != h.gen {
		if p.s.b.Clock().Now().After(h.deadline) {
			return errHandleExpired
		}
		return errHandleStale
	}
	if p.s.b.Clock().Now().After(f.deadline) {
		return errHandleExpired
	}
	delete(q.inflight, h.offset)
	p.markAcked(q, h.offset)
	p.advance(h.ref, q)
	return nil
}

// change gives the delivery h names a new invisible time and returns its new handle.
func (p *popState) change(h handle, d time.Duration) (string, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	q := p.queue(h.ref)
	f := q.inflight[h.offset]
	now := p.s.b.Clock().Now()
	if f == nil || f.gen != h.gen {
		if now.After(h.deadline) {
			return "", errHandleExpired
		}
		return "", errHandleStale
	}
	if now.After(f.deadline) {
		return "", errHandleExpired
	}
	p.gen++
	f.gen = p.gen
	f.deadline = now.Add(d)
	f.renew = renewal{} // the client decided its time itself (a push consumer's nack): Apache stops renewing too
	p.dirty = true
	return encodeHandle(h.ref, h.offset, f.gen, f.deadline), nil
}

// forward dead-letters the delivery h names (the client gave up on it) and acknowledges it.
func (p *popState) forward(ctx context.Context, h handle) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	q := p.queue(h.ref)
	if h.offset < q.commit || q.acked[h.offset] {
		return nil
	}
	f := q.inflight[h.offset]
	if f == nil || f.gen != h.gen {
		return errHandleStale
	}
	m, err := p.s.b.Store().Entry(h.ref.Topic, h.ref.Queue, h.offset)
	if err != nil {
		return err
	}
	if err := p.deadLetter(ctx, h.ref.Group, m, m.ReconsumeTimes+f.attempts); err != nil {
		return err
	}
	delete(q.inflight, h.offset)
	p.markAcked(q, h.offset)
	p.advance(h.ref, q)
	return nil
}
