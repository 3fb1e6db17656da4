package broker

import (
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/tide-run/tide/mq/internal/sql92"
	"github.com/tide-run/tide/mq/internal/store"
	"github.com/tide-run/tide/mq/mqmeta"
	"github.com/tide-run/tide/mq/remoting"
)

// Pull request sysFlag bits.
const (
	pullCommitOffset = 1 << 0
	pullSuspend      = 1 << 1
	pullSubscription = 1 << 2
)

// pullMaxBytes bounds one pull answer (Java: 256 KiB in memory; we allow more, well under the 16 MiB frame cap).
const pullMaxBytes = 4 << 20

type pullReq struct {
	conn     *remoting.Conn
	req      *remoting.Command
	group    string
	topic    string
	queue    int32
	offset   int64
	max      int
	match    func(int64) bool
	sql      *sql92.Expr // SQL92 selector evaluated on each message's properties (see sqlfilter.go)
	deadline time.Time
}

func (b *Broker) handlePull(c *remoting.Conn, req *remoting.Command) *remoting.Command {
	f := req.ReadFields()
	p := &pullReq{conn: c, req: req}
	p.group = f.String("consumerGroup")
	p.topic = f.String("topic")
	p.queue = f.Int32("queueId")
	p.offset = f.Int64("queueOffset")
	p.max = int(f.Int32("maxMsgNums"))
	sysFlag := f.Int32("sysFlag")
	commitOffset := f.OptInt64("commitOffset", -1)
	suspend := f.OptInt64("suspendTimeoutMillis", 0)
	subExpr := f.OptString("subscription")
	if f.Err != nil {
		return remoting.Errorf(req, remoting.SystemError, "pull: %v", f.Err)
	}
	t, ok := b.Topic(p.topic)
	if !ok {
		return remoting.Errorf(req, remoting.TopicNotExist, "topic[%s] not exist, apply first please!", p.topic)
	}
	if t.Perm&mqmeta.PermRead == 0 {
		return remoting.Errorf(req, remoting.NoPermission, "the topic[%s] pulling message is forbidden", p.topic)
	}
	if p.queue < 0 || int(p.queue) >= max(t.ReadQueueNums, t.WriteQueueNums) {
		return remoting.Errorf(req, remoting.SystemError, "queueId[%d] is illegal, topic:[%s] topicConfig.readQueueNums:[%d]", p.queue, p.topic, t.ReadQueueNums)
	}
	if p.max <= 0 {
		p.max = 32
	}
	if p.max > 1024 {
		p.max = 1024
	}
	if et := f.OptString("expressionType"); et != "" && !strings.EqualFold(et, "TAG") {
		if resp := b.exprFilter(p, et, subExpr, sysFlag&pullSubscription != 0); resp != nil {
			return resp
		}
	} else if sysFlag&pullSubscription != 0 && subExpr != "" {
		p.match = parseSubscription(subExpr, nil).match
	} else if s := b.clients.subscription(p.group, p.topic); s != nil && s.sqlErr != nil {
		return badSQL(req, s.expr, s.sqlErr)
	} else if s != nil && s.sql != nil {
		p.sql = s.sql
	} else if s != nil && !s.all {
		p.match = s.match
	}
	b.notePull(p)
	if sysFlag&pullCommitOffset != 0 && commitOffset >= 0 {
		b.cfg.setOffset(p.topic, p.group, p.queue, commitOffset)
	}
	resp, found := b.pullOnce(p)
	if found || sysFlag&pullSuspend == 0 || suspend <= 0 {
		return resp
	}
	p.deadline = b.clock.Now().Add(time.Duration(suspend) * time.Millisecond)
	b.polls.add(p)
	return nil
}

// pullOnce runs a pull; found is false only when the answer would be PULL_NOT_FOUND (the case to suspend).
func (b *Broker) pullOnce(p *pullReq) (*remoting.Command, bool) {
	var r store.GetResult
	var err error
	if p.sql != nil {
		r, err = b.getSQL(p)
	} else {
		r, err = b.st.Get(p.topic, p.queue, p.offset, p.max, pullMaxBytes, p.match)
	}
	if err != nil {
		b.log.Error("pull failed", "topic", p.topic, "queue", p.queue, "offset", p.offset, "err", err)
		return remoting.Errorf(p.req, remoting.SystemError, "read failed: %v", err), true
	}
	var code int16
	switch r.Status {
	case store.Found:
		code = remoting.Success
	case store.NoMatchedMessage:
		code = remoting.PullRetryImmediately
	case store.NoMessageInQueue, store.OffsetOverflowOne:
		code = remoting.PullNotFound
	default: // OffsetTooSmall, OffsetOverflowBadly
		code = remoting.PullOffsetMoved
	}
	resp := remoting.NewResponse(p.req, code, "")
	resp.SetExt("nextBeginOffset", strconv.FormatInt(r.NextBegin, 10))
	resp.SetExt("minOffset", strconv.FormatInt(r.Min, 10))
	resp.SetExt("maxOffset", strconv.FormatInt(r.Max, 10))
	resp.SetExt("suggestWhichBrokerId", "0")
	if code == remoting.Success {
		n := 0
		for _, m := range r.Messages {
			n += len(m)
		}
		body := make([]byte, 0, n)
		for _, m := range r.Messages {
			body = append(body, m...)
		}
		resp.Body = body
		b.opts.Counters.noteOut(p.topic, p.group, len(r.Messages), n)
	}
	return resp, code != remoting.PullNotFound
}

// longPolls holds suspended pulls per queue and answers them when messages arrive or their deadline passes.
type longPolls struct {
	b       *Broker
	mu      sync.Mutex // guards waiting, dirty and closed
	waiting map[qkey][]*pullReq
	dirty   map[qkey]bool
	// closed is set by drain (shutdown): from then on no pull is parked, each is answered "busy" at once.
	closed bool
	kick   chan struct{}
}

type qkey struct {
	topic string
	queue int32
}

func newLongPolls(b *Broker) *longPolls {
	return &longPolls{b: b, waiting: map[qkey][]*pullReq{}, dirty: map[qkey]bool{}, kick: make(chan struct{}, 1)}
}

func (l *longPolls) add(p *pullReq) {
	k := qkey{p.topic, p.queue}
	l.mu.Lock()
	if l.closed {
		l.mu.Unlock()
		_ = p.conn.Reply(p.req, shuttingDown(p.req))
		return
	}
	l.waiting[k] = append(l.waiting[k], p)
	// A message may have landed between the pull's read and this registration: look again.
	l.dirty[k] = true
	l.mu.Unlock()
	l.signal()
}

func (l *longPolls) signal() {
	select {
	case l.kick <- struct{}{}:
	default:
	}
}

// arrived is called by the store after a put; it only marks the queue so producers never wait on consumers.
//
// Invariant: a put that lands after a suspended pull's last read leaves its queue marked dirty until that pull is
// read again. The queue is marked even when nobody waits on it, because wake takes waiters out of the map while it
// re-reads them: an arrival during that read must still be seen when they are parked again.
func (l *longPolls) arrived(topic string, q int32) {
	k := qkey{topic, q}
	l.mu.Lock()
	l.dirty[k] = true
	waiters := len(l.waiting[k]) > 0
	l.mu.Unlock()
	if waiters {
		l.signal()
	}
}

func (l *longPolls) run() {
	defer l.b.wg.Done()
	t := l.b.clock.NewTicker(100 * time.Millisecond)
	defer t.Stop()
	for {
		select {
		case <-l.b.stop:
			l.drain()
			return
		case <-l.kick:
			l.wake()
		case <-t.C():
			l.expire(l.b.clock.Now())
		}
	}
}

func (l *longPolls) wake() {
	l.mu.Lock()
	var batch []*pullReq
	for k := range l.dirty {
		batch = append(batch, l.waiting[k]...)
		delete(l.waiting, k)
	}
	clear(l.dirty)
	l.mu.Unlock()
	var again []*pullReq
	for _, p := range batch {
		if p.conn.Closed() {
			continue
		}
		resp, found := l.b.pullOnce(p)
		if !found {
			again = append(again, p)
			continue
		}
		_ = p.conn.Reply(p.req, resp)
	}
	if l.repark(again) {
		l.signal()
	}
}

// repark suspends pulls again after wake found nothing for them, and reports whether a message arrived on one of
// their queues while they were out of the map (then they must be read again, or they would sleep to their deadline).
func (l *longPolls) repark(again []*pullReq) (arrivedMeanwhile bool) {
	if len(again) == 0 {
		return false
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, p := range again {
		k := qkey{p.topic, p.queue}
		l.waiting[k] = append(l.waiting[k], p)
		arrivedMeanwhile = arrivedMeanwhile || l.dirty[k]
	}
	return arrivedMeanwhile
}

func (l *longPolls) expire(now time.Time) {
	var due []*pullReq
	l.mu.Lock()
	for k, ps := range l.waiting {
		keep := ps[:0]
		for _, p := range ps {
			if p.conn.Closed() {
				continue
			}
			if !now.Before(p.deadline) {
				due = append(due, p)
			} else {
				keep = append(keep, p)
			}
		}
		if len(keep) == 0 {
			delete(l.waiting, k)
		} else {
			l.waiting[k] = keep
		}
	}
	l.mu.Unlock()
	for _, p := range due {
		resp, _ := l.b.pullOnce(p)
		_ = p.conn.Reply(p.req, resp)
	}
}

// DrainPolls answers every suspended pull now (at shutdown, before connections close), and every pull that parks
// after it, with SYSTEM_BUSY, so clients do not wait for their timeout.
//
// Why busy and not "no new message": a client answered PULL_NOT_FOUND pulls again at once, on the connection about
// to close, and the official Go client (v2.1.2) does not fail the requests of a closed connection, so that pull
// waited out its 30 s timeout before the consumer resumed on the restarted broker. An error answer makes both
// official clients wait their pull-error delay (3 s) and then pull on a new connection. Nothing is skipped: the
// offset a busy answer leaves is the one the client pulls from next.
func (b *Broker) DrainPolls() { b.polls.drain() }

// drain answers every suspended pull with SYSTEM_BUSY and closes the long-poll table (see DrainPolls).
func (l *longPolls) drain() {
	l.mu.Lock()
	l.closed = true
	var all []*pullReq
	for k, ps := range l.waiting {
		all = append(all, ps...)
		delete(l.waiting, k)
	}
	l.mu.Unlock()
	for _, p := range all {
		_ = p.conn.Reply(p.req, shuttingDown(p.req))
	}
}

// shuttingDown is the answer to a pull that arrives, or was parked, while the broker shuts down.
func shuttingDown(req *remoting.Command) *remoting.Command {
	return remoting.Errorf(req, remoting.SystemBusy, "[SHUTTING_DOWN] the broker is shutting down, pull again later")
}

// Suspended counts suspended pulls (operators and tests).
func (b *Broker) Suspended() int {
	b.polls.mu.Lock()
	defer b.polls.mu.Unlock()
	n := 0
	for _, ps := range b.polls.waiting {
		n += len(ps)
	}
	return n
}
