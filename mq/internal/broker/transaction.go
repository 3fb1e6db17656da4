package broker

import (
	"errors"
	"fmt"
	"strconv"
	"sync"
	"time"

	"github.com/tide-run/tide/mq/message"
	"github.com/tide-run/tide/mq/mqmeta"
	"github.com/tide-run/tide/mq/remoting"
)

// txGroup checks transactions; their system topics are mqmeta.HalfTopic and mqmeta.OpHalfTopic (Java's names).
const txGroup = "%TRANS_CHECK%"

// Transaction types in sysFlag / END_TRANSACTION's commitOrRollback.
const (
	txNotType  = 0
	txCommit   = 0x8
	txRollback = 0xC
)

// transactions holds half messages until the producer commits or rolls them back, asking the producer group
// (CHECK_TRANSACTION_STATE on a producer's connection) when it stays silent.
//
// Half messages live in queue 0 of RMQ_SYS_TRANS_HALF_TOPIC in arrival order; every decision is recorded as a
// message in RMQ_SYS_TRANS_OP_HALF_TOPIC whose body is the half message's queue offset, so decisions survive a
// restart. progress (persisted as group %TRANS_CHECK%'s offset on the half queue) is the first half offset not yet
// decided; everything below it is settled.
type transactions struct {
	b *Broker

	mu       sync.Mutex // guards resolved, checks, progress
	resolved map[int64]bool
	checks   map[int64]*txCheck
	progress int64
}

type txCheck struct {
	times int
	last  time.Time
}

func newTransactions(b *Broker) *transactions {
	t := &transactions{b: b, resolved: map[int64]bool{}, checks: map[int64]*txCheck{}}
	t.progress, _ = b.cfg.offset(mqmeta.HalfTopic, txGroup, 0)
	// Rebuild the decided set from the op topic.
	for off, max := b.st.MinOffset(mqmeta.OpHalfTopic, 0), b.st.MaxOffset(mqmeta.OpHalfTopic, 0); off < max; off++ {
		m, err := b.st.Entry(mqmeta.OpHalfTopic, 0, off)
		if err != nil {
			continue
		}
		if half, err := strconv.ParseInt(string(m.Body), 10, 64); err == nil && half >= t.progress {
			t.resolved[half] = true
		}
	}
	return t
}

// prepare turns a half message into its stored form: real topic and queue kept in properties.
func (b *Broker) prepareHalf(m *message.Message) {
	props := message.ParseProperties(m.Properties)
	props[message.PropRealTopic] = m.Topic
	props[message.PropRealQueueID] = strconv.Itoa(int(m.QueueID))
	m.Properties = message.FormatProperties(props)
	m.Topic = mqmeta.HalfTopic
	m.QueueID = 0
	m.SysFlag = m.SysFlag&^message.TxTypeMask | txNotType
}

func (b *Broker) handleEndTransaction(req *remoting.Command) *remoting.Command {
	f := req.ReadFields()
	group := f.String("producerGroup")
	halfOff := f.Int64("tranStateTableOffset")
	pos := f.Int64("commitLogOffset")
	decision := int(f.Int32("commitOrRollback"))
	fromCheck := f.OptBool("fromTransactionCheck", false)
	if f.Err != nil {
		return remoting.Errorf(req, remoting.SystemError, "end transaction: %v", f.Err)
	}
	if decision == txNotType {
		return remoting.NewResponse(req, remoting.Success, "") // unknown: ask again later
	}
	if decision != txCommit && decision != txRollback {
		return remoting.Errorf(req, remoting.SystemError, "end transaction: commitOrRollback %d: want 8 (commit), 12 (rollback) or 0", decision)
	}
	if err := b.EndTransaction(group, halfOff, pos, decision == txCommit, fromCheck); err != nil {
		if errors.Is(err, errNotHalf) {
			return remoting.Errorf(req, remoting.SystemError, "end transaction: %v", err)
		}
		return b.putError(req, err)
	}
	return remoting.NewResponse(req, remoting.Success, "")
}

var errNotHalf = errors.New("not a half message")

// EndTransaction commits or rolls back the half message of producer group group stored at commit-log offset pos
// (offset halfOff in the half topic). A transaction decided already is a success (a late check answer). Errors
// wrap errNotHalf when pos is not that half message, else the store's error.
func (b *Broker) EndTransaction(group string, halfOff, pos int64, commit, fromCheck bool) error {
	half, _, err := b.st.ReadMessage(pos)
	if err != nil {
		return fmt.Errorf("%w: no half message at commit-log offset %d: %w", errNotHalf, pos, err)
	}
	if half.Topic != mqmeta.HalfTopic || half.QueueOffset != halfOff || message.Property(half.Properties, message.PropProducerGroup) != group {
		return fmt.Errorf("%w: the message at %d is not group %s's half message %d", errNotHalf, pos, group, halfOff)
	}
	t := b.tx
	t.mu.Lock()
	done := t.resolved[halfOff] || halfOff < t.progress
	if !done {
		t.resolved[halfOff] = true
	}
	t.mu.Unlock()
	if done {
		return nil
	}
	if commit {
		props := message.ParseProperties(half.Properties)
		topic := props[message.PropRealTopic]
		qid, _ := strconv.Atoi(props[message.PropRealQueueID])
		delete(props, message.PropRealTopic)
		delete(props, message.PropRealQueueID)
		delete(props, message.PropTxPrepared)
		out := &message.Message{Topic: topic, QueueID: int32(qid), Flag: half.Flag, SysFlag: half.SysFlag&^message.TxTypeMask | txCommit,
			BornTimestamp: half.BornTimestamp, BornHost: half.BornHost, ReconsumeTimes: half.ReconsumeTimes, Body: half.Body,
			PreparedTxOff: pos, Properties: message.FormatProperties(props)}
		if tc, ok := b.Topic(topic); ok && (qid < 0 || qid >= tc.WriteQueueNums) {
			out.QueueID = int32(qid % max(tc.WriteQueueNums, 1))
		}
		if err := b.applyTimer(out); err != nil {
			b.log.Warn("committed transactional message has a bad timer; delivering it now", "err", err)
		}
		b.applyDelay(out)
		if _, _, err := b.st.Put([]*message.Message{out}); err != nil {
			t.mu.Lock()
			delete(t.resolved, halfOff)
			t.mu.Unlock()
			return err
		}
	}
	op := &message.Message{Topic: mqmeta.OpHalfTopic, Body: []byte(strconv.FormatInt(halfOff, 10)),
		Properties: message.FormatProperties(map[string]string{message.PropTags: "d"})}
	if _, _, err := b.st.Put([]*message.Message{op}); err != nil {
		b.log.Error("recording a transaction decision failed; it may be checked again", "halfOffset", halfOff, "err", err)
	}
	b.log.Debug("transaction ended", "group", group, "halfOffset", halfOff, "commit", commit, "fromCheck", fromCheck)
	return nil
}

// checkOnce advances progress over decided half messages and asks producers about old undecided ones.
func (t *transactions) checkOnce(now time.Time) {
	b := t.b
	t.mu.Lock()
	for t.resolved[t.progress] {
		delete(t.resolved, t.progress)
		delete(t.checks, t.progress)
		t.progress++
	}
	from := t.progress
	t.mu.Unlock()
	b.cfg.setOffset(mqmeta.HalfTopic, txGroup, 0, from)
	for off, max := from, b.st.MaxOffset(mqmeta.HalfTopic, 0); off < max; off++ {
		t.mu.Lock()
		decided := t.resolved[off]
		t.mu.Unlock()
		if decided {
			continue
		}
		m, err := b.st.Entry(mqmeta.HalfTopic, 0, off)
		if err != nil {
			t.decide(off) // gone (retention): nothing left to decide
			continue
		}
		if now.Sub(time.UnixMilli(m.StoreTimestamp)) < b.opts.TransactionImmunity {
			break // later half messages are younger still
		}
		t.mu.Lock()
		st := t.checks[off]
		if st == nil {
			st = &txCheck{}
			t.checks[off] = st
		}
		due := st.last.IsZero() || now.Sub(st.last) >= b.opts.TransactionCheckInterval
		giveUp := st.times >= b.opts.TransactionCheckMax
		if due && !giveUp {
			st.times++
			st.last = now
		}
		t.mu.Unlock()
		if giveUp {
			b.log.Warn("transaction never decided; discarding the half message", "halfOffset", off,
				"producerGroup", message.Property(m.Properties, message.PropProducerGroup), "checks", st.times)
			t.decide(off)
			continue
		}
		if due {
			b.sendCheck(m, off)
		}
	}
}

func (t *transactions) decide(off int64) {
	t.mu.Lock()
	t.resolved[off] = true
	t.mu.Unlock()
}

// sendCheck asks one connected producer of the half message's group for the transaction's state. The message goes
// out with its real topic and queue, as Java sends it.
func (b *Broker) sendCheck(m *message.Message, halfOff int64) {
	group := message.Property(m.Properties, message.PropProducerGroup)
	conns := b.clients.producerConns(group)
	if len(conns) == 0 {
		b.hooks.check(m, halfOff) // a RocketMQ 5 (gRPC) producer's group
		return
	}
	out := *m
	out.Topic = message.Property(m.Properties, message.PropRealTopic)
	if q, err := strconv.Atoi(message.Property(m.Properties, message.PropRealQueueID)); err == nil {
		out.QueueID = int32(q)
	}
	body := out.Append(nil)
	uniq := message.Property(m.Properties, message.PropUniqKey)
	req := remoting.NewRequest(remoting.CheckTransactionState, map[string]string{
		"tranStateTableOffset": strconv.FormatInt(halfOff, 10),
		"commitLogOffset":      strconv.FormatInt(m.PhysicalOffset, 10),
		"msgId":                uniq,
		"transactionId":        uniq,
		"offsetMsgId":          message.OffsetMsgID(m.StoreHost, m.PhysicalOffset),
	}, body)
	_ = conns[int(halfOff)%len(conns)].Send(req)
}

func (t *transactions) run() {
	b := t.b
	defer b.wg.Done()
	tick := b.clock.NewTicker(b.opts.TransactionCheckTick)
	defer tick.Stop()
	for {
		select {
		case <-b.stop:
			return
		case <-tick.C():
			t.checkOnce(b.clock.Now())
		}
	}
}
