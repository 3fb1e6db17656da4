package broker

import (
	"context"
	"io"
	"log/slog"
	"math/rand"
	"strconv"
	"strings"
	"testing"
	"time"

	clocktesting "k8s.io/utils/clock/testing"

	"github.com/tide-run/tide/mq/internal/store"
	"github.com/tide-run/tide/mq/message"
	"github.com/tide-run/tide/mq/mqmeta"
)

var timerStart = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

// putTimer sends a message with props to topic t as a send does (applyTimer, then the store).
func putTimer(t *testing.T, b *Broker, body string, props map[string]string) error {
	t.Helper()
	m := &message.Message{Topic: "t", Body: []byte(body), Properties: message.FormatProperties(props)}
	if err := b.applyTimer(m); err != nil {
		return err
	}
	b.applyDelay(m)
	if _, _, err := b.st.Put([]*message.Message{m}); err != nil {
		t.Fatal(err)
	}
	return nil
}

// delivered lists the bodies in topic t (queue 0) from offset from on.
func delivered(t *testing.T, b *Broker, from int64) []*message.Message {
	t.Helper()
	var out []*message.Message
	for off := from; off < b.st.MaxOffset("t", 0); off++ {
		m, err := b.st.Entry("t", 0, off)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, m)
	}
	return out
}

func createT(t *testing.T, b *Broker) {
	t.Helper()
	if err := b.CreateTopic(mqmeta.TopicConfig{TopicName: "t", ReadQueueNums: 1, WriteQueueNums: 1}); err != nil {
		t.Fatal(err)
	}
}

func TestTimerMessagesAnyDueTimeWithFakeClock(t *testing.T) {
	fc := clocktesting.NewFakeClock(timerStart)
	b := newTestBroker(t, fc)
	createT(t, b)
	// Stored out of due order: 7s, 2s (relative ms), 4.5s (absolute).
	for body, p := range map[string]map[string]string{
		"a": {message.PropTimerDelaySec: "7"},
		"b": {message.PropTimerDelayMS: "2000"},
		"c": {message.PropTimerDeliverMS: strconv.FormatInt(timerStart.Add(4500*time.Millisecond).UnixMilli(), 10), "u": "v"},
	} {
		if err := putTimer(t, b, body, p); err != nil {
			t.Fatal(err)
		}
	}
	if n := b.st.MaxOffset("t", 0); n != 0 {
		t.Fatalf("%d messages visible before any is due", n)
	}
	var order []string
	for _, at := range []time.Duration{time.Second, 1999 * time.Millisecond, 2 * time.Second, 4499 * time.Millisecond,
		4500 * time.Millisecond, 6 * time.Second, 6999 * time.Millisecond, 7 * time.Second} {
		now := timerStart.Add(at)
		b.timers.deliverDue(now)
		for _, m := range delivered(t, b, int64(len(order))) {
			due, _ := strconv.ParseInt(message.Property(m.Properties, message.PropTimerOutMS), 10, 64)
			if due > now.UnixMilli() {
				t.Fatalf("%s delivered at %v, before its due time %v", m.Body, at, time.UnixMilli(due).Sub(timerStart))
			}
			if message.Property(m.Properties, message.PropRealTopic) != "" || message.Property(m.Properties, message.PropTimerDequeueMS) == "" {
				t.Fatalf("delivered properties %q: want REAL_TOPIC gone and TIMER_DEQUEUE_MS set (as Java)", m.Properties)
			}
			order = append(order, string(m.Body))
		}
	}
	if strings.Join(order, "") != "bca" {
		t.Fatalf("delivered in order %v, want b c a (by due time, each at its millisecond)", order)
	}
}

func TestTimerPropertiesAsApache(t *testing.T) {
	fc := clocktesting.NewFakeClock(timerStart)
	b := newTestBroker(t, fc)
	createT(t, b)
	now := timerStart.UnixMilli()
	for _, tc := range []struct {
		props   map[string]string
		wantErr string
		timer   bool
	}{
		{props: map[string]string{message.PropTimerDelaySec: strconv.Itoa(3 * 24 * 3600)}, timer: true},
		{props: map[string]string{message.PropTimerDelaySec: strconv.Itoa(3*24*3600 + 1)}, wantErr: "max delay 259200000ms"},
		{props: map[string]string{message.PropTimerDelayMS: "259200001"}, wantErr: "max delay 259200000ms"},
		{props: map[string]string{message.PropTimerDeliverMS: "soon"}, wantErr: "timer message illegal"},
		{props: map[string]string{message.PropTimerDelayMS: ""}, wantErr: "timer message illegal"},
		{props: map[string]string{message.PropTimerDelayMS: "-5"}},                                        // in the past: now
		{props: map[string]string{message.PropTimerDeliverMS: strconv.FormatInt(now-1000, 10)}},           // in the past: now
		{props: map[string]string{message.PropTimerDelayMS: "9223372036854775807"}, wantErr: "max delay"}, // no overflow
		{props: map[string]string{message.PropTimerDelaySec: "9223372036854775"}, wantErr: "max delay"},
		{props: map[string]string{message.PropTimerDelaySec: "-9223372036854775808"}}, // far past: now
		// Java's precedence: DELAY_SEC over DELAY_MS over DELIVER_MS (a bad lower one is not read).
		{props: map[string]string{message.PropTimerDelaySec: "1", message.PropTimerDeliverMS: "x"}, timer: true},
		// A delay level wins and the timer properties go; a message that went through the timer is not one again.
		{props: map[string]string{message.PropDelayLevel: "1", message.PropTimerDelaySec: "999999999"}},
		{props: map[string]string{message.PropTimerOutMS: "1", message.PropTimerDelaySec: "60"}},
	} {
		m := &message.Message{Topic: "t", Body: []byte("x"), Properties: message.FormatProperties(tc.props)}
		err := b.applyTimer(m)
		switch {
		case tc.wantErr != "":
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Errorf("%v: error %v, want one containing %q", tc.props, err, tc.wantErr)
			}
		case err != nil:
			t.Errorf("%v: %v", tc.props, err)
		case (m.Topic == mqmeta.TimerTopic) != tc.timer:
			t.Errorf("%v: routed to %s, timer=%v wanted", tc.props, m.Topic, tc.timer)
		}
		if tc.props[message.PropDelayLevel] != "" && message.Property(m.Properties, message.PropTimerDelaySec) != "" {
			t.Errorf("delay level with a timer property: timer property kept: %q", m.Properties)
		}
	}
}

// TestTimerBoundedMemoryManyPending holds 100,000 pending timer messages, due in random order over an hour, with
// the default in-memory bound, and delivers each once, at or after its due time, in due order.
func TestTimerBoundedMemoryManyPending(t *testing.T) {
	if testing.Short() {
		t.Skip("stores 100,000 messages")
	}
	const n = 100_000
	fc := clocktesting.NewFakeClock(timerStart)
	b := newTestBroker(t, fc)
	createT(t, b)
	rng := rand.New(rand.NewSource(1))
	batch := make([]*message.Message, 0, 1000)
	for i := 0; i < n; i++ {
		due := timerStart.Add(time.Duration(1+rng.Intn(3600_000)) * time.Millisecond).UnixMilli()
		m := &message.Message{Topic: "t", Body: []byte(strconv.Itoa(i)),
			Properties: message.FormatProperties(map[string]string{message.PropTimerDeliverMS: strconv.FormatInt(due, 10)})}
		if err := b.applyTimer(m); err != nil || m.Topic != mqmeta.TimerTopic {
			t.Fatal(err, m.Topic)
		}
		if batch = append(batch, m); len(batch) == cap(batch) {
			if _, _, err := b.st.Put(batch); err != nil {
				t.Fatal(err)
			}
			batch = batch[:0]
		}
	}
	seen := make([]bool, n)
	last := int64(0)
	got := 0
	for at := time.Duration(0); at <= time.Hour+7*time.Second; at += 7 * time.Second {
		now := timerStart.Add(at)
		b.timers.deliverDue(now)
		if held := len(b.timers.h); held > timerMaxHeld*5/4 {
			t.Fatalf("%d entries held in memory, bound %d", held, timerMaxHeld*5/4)
		}
		for _, m := range delivered(t, b, int64(got)) {
			i, _ := strconv.Atoi(string(m.Body))
			due, _ := strconv.ParseInt(message.Property(m.Properties, message.PropTimerOutMS), 10, 64)
			if seen[i] {
				t.Fatalf("message %d delivered twice", i)
			}
			if due > now.UnixMilli() || due < last-7000 {
				t.Fatalf("message %d due %d delivered at %d (previous due %d)", i, due, now.UnixMilli(), last)
			}
			seen[i], last = true, max(last, due)
			got++
		}
	}
	if got != n {
		t.Fatalf("delivered %d of %d", got, n)
	}
	if cap(b.timers.h) > 4*timerMaxHeld {
		t.Fatalf("heap capacity grew to %d", cap(b.timers.h))
	}
}

// TestTimerRestartAndCrash: pending timers survive a clean restart (nothing delivered twice) and a crash (the
// broker closed without its final checkpoint: nothing lost; only what was delivered after the last checkpoint
// again). A small in-memory bound makes the restarts land in the middle of windows.
func TestTimerRestartAndCrash(t *testing.T) {
	for _, crash := range []bool{false, true} {
		t.Run(map[bool]string{false: "restart", true: "crash"}[crash], func(t *testing.T) {
			dir := t.TempDir()
			fc := clocktesting.NewFakeClock(timerStart)
			b, closeB := openBroker(t, dir, fc)
			b.timers.maxHeld = 8
			createT(t, b)
			const n = 200
			for i := 0; i < n; i++ {
				if err := putTimer(t, b, strconv.Itoa(i), map[string]string{message.PropTimerDelayMS: strconv.Itoa(1 + (i*7919)%100_000)}); err != nil {
					t.Fatal(err)
				}
			}
			count := map[string]int{}
			got := int64(0)
			lastStep := 0 // deliveries of the last step before the stop: their checkpoint waited for the flush
			collect := func(b *Broker, now time.Time) {
				for _, m := range delivered(t, b, got) {
					due, _ := strconv.ParseInt(message.Property(m.Properties, message.PropTimerOutMS), 10, 64)
					if due > now.UnixMilli() {
						t.Fatalf("%s delivered before its due time", m.Body)
					}
					count[string(m.Body)]++
					got++
				}
			}
			for at := time.Duration(0); at < 50*time.Second; at += 1500 * time.Millisecond {
				fc.SetTime(timerStart.Add(at))
				b.timers.deliverDue(fc.Now())
				before := got
				collect(b, fc.Now())
				lastStep = int(got - before)
				// The store's flusher runs on the fake clock's ticker, whenever its goroutine gets to it; flush here
				// so the checkpoint's progress is deterministic.
				if err := b.st.Flush(); err != nil {
					t.Fatal(err)
				}
			}
			if crash {
				b.stopOnce.Do(func() { close(b.stop) }) // no final checkpoint: as kill -9 leaves it
				if err := b.st.Close(); err != nil {
					t.Fatal(err)
				}
			} else {
				closeB()
			}
			fc.SetTime(timerStart.Add(50 * time.Second))
			b, closeB = openBroker(t, dir, fc)
			defer closeB()
			b.timers.maxHeld = 8
			for at := 50 * time.Second; at <= 101*time.Second; at += 1500 * time.Millisecond {
				fc.SetTime(timerStart.Add(at))
				b.timers.deliverDue(fc.Now())
				collect(b, fc.Now())
			}
			twice := 0
			for i := 0; i < n; i++ {
				switch c := count[strconv.Itoa(i)]; {
				case c == 0:
					t.Fatalf("timer message %d lost", i)
				case c > 1:
					twice++
				}
			}
			if !crash && twice > 0 {
				t.Fatalf("%d messages delivered twice across a clean restart", twice)
			}
			t.Logf("%d of %d delivered twice", twice, n)
			if twice > lastStep {
				t.Fatalf("%d messages delivered twice after a crash; want at most those of the last step (%d)", twice, lastStep)
			}
		})
	}
}

// TestTimerPinsRetention: age-based retention keeps the commit-log segment of a timer message not delivered yet
// (and everything after it), and deletes it once the message is delivered.
func TestTimerPinsRetention(t *testing.T) {
	dir := t.TempDir()
	start := time.Now() // segments' ages are their files' modification times: real time
	fc := clocktesting.NewFakeClock(start)
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	st, err := store.Open(store.Options{Dir: dir, Clock: fc, Logger: log, SegmentSize: 4096, RetentionAge: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	b, err := New(Options{Store: st, DataDir: dir, Addr: "127.0.0.1:10911", Clock: fc, Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close(context.Background())
	createT(t, b)
	fill := func(n int) {
		for i := 0; i < n; i++ {
			if _, _, err := st.Put([]*message.Message{{Topic: "other", Body: make([]byte, 1000)}}); err != nil {
				t.Fatal(err)
			}
		}
	}
	fill(8) // two segments before the timer message
	if err := putTimer(t, b, "late", map[string]string{message.PropTimerDelaySec: strconv.Itoa(2 * 3600)}); err != nil {
		t.Fatal(err)
	}
	fill(12)
	fc.SetTime(start.Add(90 * time.Minute)) // everything is older than the 1 h retention
	b.timers.deliverDue(fc.Now())
	if _, err := st.Clean(fc.Now()); err != nil {
		t.Fatal(err)
	}
	m, err := st.Entry(mqmeta.TimerTopic, 0, 0)
	if err != nil || string(m.Body) != "late" {
		t.Fatalf("the pending timer message's segment was deleted by retention: %v", err)
	}
	if st.MinOffset("other", 0) == 0 {
		t.Fatal("retention deleted nothing: segments before the timer message should go")
	}
	fc.SetTime(start.Add(2 * time.Hour))
	b.timers.deliverDue(fc.Now())
	if got := delivered(t, b, 0); len(got) != 1 || string(got[0].Body) != "late" {
		t.Fatalf("delivered %d messages, want the timer message", len(got))
	}
	fc.SetTime(start.Add(4 * time.Hour))
	before := st.Stats().MinOffset
	if _, err := st.Clean(fc.Now()); err != nil {
		t.Fatal(err)
	}
	if st.Stats().MinOffset <= before {
		t.Fatal("the delivered timer message's segment is still pinned")
	}
}

// TestTimerDueEntryWithFullHeap: an entry already due when it is scanned (stored between a step's scan and its
// advance of deliveredThrough) is delivered at once even when the heap is full of later ones.
func TestTimerDueEntryWithFullHeap(t *testing.T) {
	fc := clocktesting.NewFakeClock(timerStart)
	b := newTestBroker(t, fc)
	b.timers.maxHeld = 8
	createT(t, b)
	for i := 0; i < 10; i++ {
		if err := putTimer(t, b, "later", map[string]string{message.PropTimerDelaySec: strconv.Itoa(3600 + i)}); err != nil {
			t.Fatal(err)
		}
	}
	b.timers.deliverDue(timerStart.Add(time.Second))
	// As the race leaves it: in the timer queue, due before deliveredThrough.
	m := &message.Message{Topic: mqmeta.TimerTopic, Body: []byte("due"), Properties: message.FormatProperties(map[string]string{
		message.PropRealTopic: "t", message.PropRealQueueID: "0",
		message.PropTimerOutMS: strconv.FormatInt(timerStart.Add(500*time.Millisecond).UnixMilli(), 10)})}
	if _, _, err := b.st.Put([]*message.Message{m}); err != nil {
		t.Fatal(err)
	}
	b.timers.deliverDue(timerStart.Add(2 * time.Second))
	if got := delivered(t, b, 0); len(got) != 1 || string(got[0].Body) != "due" {
		t.Fatalf("delivered %d messages, want the one already due", len(got))
	}
	b.timers.deliverDue(timerStart.Add(2*time.Hour + time.Minute))
	if got := delivered(t, b, 0); len(got) != 11 {
		t.Fatalf("delivered %d messages in the end, want 11", len(got))
	}
}
