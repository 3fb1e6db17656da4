package broker

import (
	"container/heap"
	"fmt"
	"strconv"
	"sync"
	"time"

	"github.com/tide-run/tide/mq/message"
	"github.com/tide-run/tide/mq/mqmeta"
)

// The timer's consumer group and the property that records when a timer message fell due; its topic is
// mqmeta.TimerTopic.
const (
	timerGroup   = "%TIMER%"
	propTimerOut = "TIMER_OUT_MS"
)

// MaxTimerDelay is the longest accepted timer delay (Java's timerMaxDelaySec default: 3 days).
const MaxTimerDelay = 72 * time.Hour

// timers delivers timer messages at any time, unlike delay levels. Pending ones are kept in a min-heap by due
// time, rebuilt after a restart from the timer queue above progress (the first offset not yet delivered, persisted
// as group %TIMER%'s offset). A message delivered after an earlier one that was still pending is delivered again
// after a restart: at least once, never lost.
type timers struct {
	b    *Broker
	kick chan struct{}

	mu        sync.Mutex // guards h, delivered, progress, scanned
	h         timerHeap
	delivered map[int64]bool
	progress  int64
	scanned   int64
}

type timerEntry struct {
	due    int64 // ms
	offset int64
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

func newTimers(b *Broker) *timers {
	t := &timers{b: b, kick: make(chan struct{}, 1), delivered: map[int64]bool{}}
	t.progress, _ = b.cfg.offset(mqmeta.TimerTopic, timerGroup, 0)
	if min := b.st.MinOffset(mqmeta.TimerTopic, 0); t.progress < min {
		t.progress = min
	}
	t.scanned = t.progress
	return t
}

func (t *timers) wake() {
	select {
	case t.kick <- struct{}{}:
	default:
	}
}

// timerDue returns when a message with timer properties is due, or 0 when it has none.
func timerDue(props string, now time.Time) (int64, error) {
	if v := message.Property(props, message.PropTimerDeliverMS); v != "" {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil {
			return 0, fmt.Errorf("property %s: %q is not a time in ms", message.PropTimerDeliverMS, v)
		}
		return n, nil
	}
	for _, p := range []struct {
		name string
		unit time.Duration
	}{{message.PropTimerDelaySec, time.Second}, {message.PropTimerDelayMS, time.Millisecond}} {
		if v := message.Property(props, p.name); v != "" {
			n, err := strconv.ParseInt(v, 10, 64)
			if err != nil || n < 0 {
				return 0, fmt.Errorf("property %s: %q is not a non-negative integer", p.name, v)
			}
			return now.Add(time.Duration(n) * p.unit).UnixMilli(), nil
		}
	}
	return 0, nil
}

// applyTimer reroutes a timer message into the timer topic. Messages already due go straight to their topic.
func (b *Broker) applyTimer(m *message.Message) error {
	if m.Topic == mqmeta.TimerTopic || m.Topic == mqmeta.HalfTopic {
		return nil
	}
	now := b.clock.Now()
	due, err := timerDue(m.Properties, now)
	if err != nil || due == 0 {
		return err
	}
	if time.UnixMilli(due).Sub(now) > MaxTimerDelay {
		return fmt.Errorf("timer message due in %v, more than the %v limit", time.UnixMilli(due).Sub(now).Round(time.Second), MaxTimerDelay)
	}
	if due <= now.UnixMilli() {
		return nil
	}
	props := message.ParseProperties(m.Properties)
	props[message.PropRealTopic] = m.Topic
	props[message.PropRealQueueID] = strconv.Itoa(int(m.QueueID))
	props[propTimerOut] = strconv.FormatInt(due, 10)
	m.Properties = message.FormatProperties(props)
	m.Topic = mqmeta.TimerTopic
	m.QueueID = 0
	return nil
}

// scan adds timer messages stored since the last scan to the heap.
func (t *timers) scan() {
	b := t.b
	t.mu.Lock()
	from := t.scanned
	t.mu.Unlock()
	max := b.st.MaxOffset(mqmeta.TimerTopic, 0)
	for off := from; off < max; off++ {
		m, err := b.st.Entry(mqmeta.TimerTopic, 0, off)
		due := int64(0)
		if err == nil {
			due, _ = strconv.ParseInt(message.Property(m.Properties, propTimerOut), 10, 64)
		}
		t.mu.Lock()
		heap.Push(&t.h, timerEntry{due: due, offset: off})
		t.mu.Unlock()
	}
	t.mu.Lock()
	if max > t.scanned {
		t.scanned = max
	}
	t.mu.Unlock()
}

// deliverDue delivers every due timer message and returns when the next one is due (zero if none).
func (t *timers) deliverDue(now time.Time) time.Time {
	b := t.b
	t.scan()
	for {
		t.mu.Lock()
		if len(t.h) == 0 {
			t.mu.Unlock()
			return time.Time{}
		}
		e := t.h[0]
		if e.due > now.UnixMilli() {
			t.mu.Unlock()
			return time.UnixMilli(e.due)
		}
		heap.Pop(&t.h)
		t.mu.Unlock()
		if m, err := b.st.Entry(mqmeta.TimerTopic, 0, e.offset); err != nil {
			b.log.Error("reading a timer message failed; skipping it", "offset", e.offset, "err", err)
		} else if err := b.sched.deliver(m); err != nil {
			b.log.Error("delivering a timer message failed; will retry", "offset", e.offset, "err", err)
			t.mu.Lock()
			heap.Push(&t.h, timerEntry{due: now.Add(time.Second).UnixMilli(), offset: e.offset})
			t.mu.Unlock()
			continue
		}
		t.mu.Lock()
		t.delivered[e.offset] = true
		for t.delivered[t.progress] {
			delete(t.delivered, t.progress)
			t.progress++
		}
		progress := t.progress
		t.mu.Unlock()
		b.cfg.setOffset(mqmeta.TimerTopic, timerGroup, 0, progress)
	}
}

func (t *timers) run() {
	b := t.b
	defer b.wg.Done()
	for {
		next := t.deliverDue(b.clock.Now())
		wait := time.Second
		if !next.IsZero() {
			if d := next.Sub(b.clock.Now()); d < wait {
				wait = d
			}
		}
		if wait < time.Millisecond {
			wait = time.Millisecond
		}
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
