package broker

import (
	"strconv"
	"time"

	"github.com/tide-run/tide/mq/message"
	"github.com/tide-run/tide/mq/mqmeta"
)

// scheduler delivers delayed messages: queue level-1 of SCHEDULE_TOPIC_XXXX holds level's messages in store-time
// order, so each level is a FIFO whose head is due at storeTimestamp + DelayLevels[level-1]. Progress per level is
// kept as the consumer offset of group %SCHEDULE% on that queue (persisted with the other offsets); a crash between
// re-putting a message and saving progress delivers it twice, never zero times.
type scheduler struct {
	b    *Broker
	kick chan struct{}
}

func newScheduler(b *Broker) *scheduler { return &scheduler{b: b, kick: make(chan struct{}, 1)} }

func (s *scheduler) wake() {
	select {
	case s.kick <- struct{}{}:
	default:
	}
}

func (s *scheduler) run() {
	defer s.b.wg.Done()
	for {
		next := s.deliverDue(s.b.clock.Now())
		wait := time.Second
		if !next.IsZero() {
			if d := next.Sub(s.b.clock.Now()); d < wait {
				wait = d
			}
		}
		if wait < time.Millisecond {
			wait = time.Millisecond
		}
		t := s.b.clock.NewTimer(wait)
		select {
		case <-s.b.stop:
			t.Stop()
			return
		case <-s.kick:
			t.Stop()
		case <-t.C():
		}
	}
}

// deliverDue moves every due message to its real topic and returns when the next one falls due (zero if none).
func (s *scheduler) deliverDue(now time.Time) time.Time {
	b := s.b
	var next time.Time
	for level := 1; level <= len(b.opts.DelayLevels); level++ {
		q := int32(level - 1)
		off, ok := b.cfg.offset(mqmeta.ScheduleTopic, scheduleGroup, q)
		if !ok || off < b.st.MinOffset(mqmeta.ScheduleTopic, q) {
			off = b.st.MinOffset(mqmeta.ScheduleTopic, q)
		}
		max := b.st.MaxOffset(mqmeta.ScheduleTopic, q)
		for off < max {
			m, err := b.st.Entry(mqmeta.ScheduleTopic, q, off)
			if err != nil {
				b.log.Error("reading delayed message failed; skipping it", "level", level, "offset", off, "err", err)
				off++
				continue
			}
			due := time.UnixMilli(m.StoreTimestamp).Add(b.opts.DelayLevels[level-1])
			if due.After(now) {
				if next.IsZero() || due.Before(next) {
					next = due
				}
				break
			}
			if err := s.deliver(m); err != nil {
				b.log.Error("delivering delayed message failed; will retry", "level", level, "offset", off, "err", err)
				if next.IsZero() || now.Add(time.Second).Before(next) {
					next = now.Add(time.Second)
				}
				break
			}
			off++
		}
		b.cfg.setOffset(mqmeta.ScheduleTopic, scheduleGroup, q, off)
	}
	return next
}

func (s *scheduler) deliver(m *message.Message) error {
	b := s.b
	props := message.ParseProperties(m.Properties)
	topic := props[message.PropRealTopic]
	qid, _ := strconv.Atoi(props[message.PropRealQueueID])
	delete(props, message.PropDelayLevel)
	delete(props, message.PropTimerDeliverMS)
	delete(props, message.PropTimerDelaySec)
	delete(props, message.PropTimerDelayMS)
	t, ok := b.Topic(topic)
	if !ok {
		b.log.Warn("dropping delayed message: its topic no longer exists", "topic", topic)
		return nil
	}
	if qid < 0 || qid >= t.WriteQueueNums {
		qid %= t.WriteQueueNums
	}
	out := &message.Message{Topic: topic, QueueID: int32(qid), Flag: m.Flag, SysFlag: m.SysFlag,
		BornTimestamp: m.BornTimestamp, BornHost: m.BornHost, ReconsumeTimes: m.ReconsumeTimes, Body: m.Body,
		Properties: message.FormatProperties(props)}
	_, _, err := b.st.Put([]*message.Message{out})
	return err
}
