package mq_test

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/apache/rocketmq-client-go/v2"
	"github.com/apache/rocketmq-client-go/v2/consumer"
	"github.com/apache/rocketmq-client-go/v2/primitive"
	"github.com/apache/rocketmq-client-go/v2/producer"
	clocktesting "k8s.io/utils/clock/testing"

	"github.com/tide-run/tide/mq"
	"github.com/tide-run/tide/mq/mqtest"
	"github.com/tide-run/tide/mq/remoting"
)

// maxOffset asks the broker for a queue's max offset over the protocol.
func maxOffset(t *testing.T, addr, topic string, q int) int64 {
	t.Helper()
	c := dial(t, addr)
	defer c.Close()
	r := invoke(t, c, remoting.NewRequest(remoting.GetMaxOffset, map[string]string{"topic": topic, "queueId": strconv.Itoa(q)}, nil))
	n, _ := strconv.ParseInt(r.ExtFields["offset"], 10, 64)
	return n
}

// waitStep waits for cond, moving the fake clock on by 10 ms between looks: the broker's timer loop may have armed
// its next wake-up (on the fake clock) just after the test set the time, and a failed delivery is retried a second
// later. Only used once the time under test has been reached, so it cannot make anything look early.
func waitStep(t *testing.T, fc *clocktesting.FakeClock, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after 10s waiting for %s", what)
		}
		fc.Step(10 * time.Millisecond)
		time.Sleep(5 * time.Millisecond)
	}
}

func timerMsg(topic, body, prop string, v int64) *primitive.Message {
	m := primitive.NewMessage(topic, []byte(body))
	m.WithProperty(prop, strconv.FormatInt(v, 10)) // what a 5.x client's setDeliverTimeMs / setDelayTimeSec / setDelayTimeMs send
	return m
}

// TestTimerMessagesOverSockets: timer messages sent with the official Go client are refused beyond 3 days, invisible
// until due (the broker's clock is fake: "not before" is exact), delivered at their due time, kept across a
// restart, delivered again after a torn write of the fault file system, and consumed exactly once by a push
// consumer. mqtest checks the store's invariants at the end.
func TestTimerMessagesOverSockets(t *testing.T) {
	dir := t.TempDir()
	t0 := time.Now().Truncate(time.Second)
	fc := clocktesting.NewFakeClock(t0)
	ffs := mq.NewFaultFS(mq.OSFS())
	opts := mq.Options{DataDir: dir, Clock: fc, FS: ffs}
	srv := mqtest.RunServer(t, opts)
	for _, topic := range []string{"timed", "batched"} {
		if err := srv.CreateTopic(brokerTopic(topic, 1)); err != nil {
			t.Fatal(err)
		}
	}
	p := newProducer(t, srv)
	ctx := context.Background()
	// Refused as Apache refuses them: 13 MESSAGE_ILLEGAL.
	for _, m := range []*primitive.Message{
		timerMsg("timed", "too-far", "TIMER_DELAY_SEC", 3*24*3600+1),
		timerMsg("timed", "too-far-abs", "TIMER_DELIVER_MS", t0.Add(73*time.Hour).UnixMilli()),
	} {
		if _, err := p.SendSync(ctx, m); err == nil || !strings.Contains(err.Error(), "max delay 259200000ms") {
			t.Fatalf("%s: %v, want the max-delay refusal", m.Body, err)
		}
	}
	bad := primitive.NewMessage("timed", []byte("bad"))
	bad.WithProperty("TIMER_DELAY_MS", "soon")
	if _, err := p.SendSync(ctx, bad); err == nil || !strings.Contains(err.Error(), "timer message illegal") {
		t.Fatalf("non-integer TIMER_DELAY_MS: %v", err)
	}
	// Due at +10 s (absolute), +20 s (seconds), +30 s (ms) and 3 days; one in the past goes through at once.
	for i, m := range []*primitive.Message{
		timerMsg("timed", "at-10s", "TIMER_DELIVER_MS", t0.Add(10*time.Second).UnixMilli()),
		timerMsg("timed", "in-20s", "TIMER_DELAY_SEC", 20),
		timerMsg("timed", "in-30s", "TIMER_DELAY_MS", 30_000),
		timerMsg("timed", "in-3d", "TIMER_DELAY_SEC", 3*24*3600),
		timerMsg("timed", "past", "TIMER_DELIVER_MS", t0.Add(-time.Minute).UnixMilli()),
	} {
		if r, err := p.SendSync(ctx, m); err != nil || r.Status != primitive.SendOK {
			t.Fatalf("send %d: %v %v", i, r, err)
		}
	}
	if n := maxOffset(t, srv.BrokerAddr(), "timed", 0); n != 1 {
		t.Fatalf("%d messages visible right after the sends, want 1 (the one due in the past)", n)
	}
	// In a batch the timer properties are ignored, as Apache's broker ignores them: visible at once.
	if _, err := p.SendSync(ctx, timerMsg("batched", "b1", "TIMER_DELAY_SEC", 60), timerMsg("batched", "b2", "TIMER_DELAY_SEC", 60)); err != nil {
		t.Fatal(err)
	}
	if n := maxOffset(t, srv.BrokerAddr(), "batched", 0); n != 2 {
		t.Fatalf("a batch with timer properties: %d of 2 visible at once", n)
	}
	fc.SetTime(t0.Add(10*time.Second - time.Millisecond))
	time.Sleep(50 * time.Millisecond) // give a wrongly early delivery the chance to show (not a wait for success)
	if n := maxOffset(t, srv.BrokerAddr(), "timed", 0); n != 1 {
		t.Fatalf("a timer message was delivered 1 ms before its time")
	}
	fc.SetTime(t0.Add(10 * time.Second))
	waitStep(t, fc, "the message due at +10 s", func() bool { return maxOffset(t, srv.BrokerAddr(), "timed", 0) == 2 })

	// Restart: the pending ones are rebuilt from the store.
	srv = mqtest.Restart(t, srv, opts)
	if n := maxOffset(t, srv.BrokerAddr(), "timed", 0); n != 2 {
		t.Fatalf("%d messages after the restart, want 2", n)
	}
	fc.SetTime(t0.Add(20 * time.Second))
	waitStep(t, fc, "the message due at +20 s after a restart", func() bool { return maxOffset(t, srv.BrokerAddr(), "timed", 0) == 3 })

	// The next write of the file system tears (whichever write it is: the delivery, a consume-queue flush, a
	// checkpoint); nothing is lost.
	ffs.SetTearNextWrite()
	fc.SetTime(t0.Add(30 * time.Second))
	waitStep(t, fc, "the message due at +30 s despite a torn write", func() bool { return maxOffset(t, srv.BrokerAddr(), "timed", 0) == 4 })

	col := newCollector()
	c := newPushConsumer(t, srv, "g-timed", consumer.WithConsumeFromWhere(consumer.ConsumeFromFirstOffset))
	if err := c.Subscribe("timed", consumer.MessageSelector{}, col.fn); err != nil {
		t.Fatal(err)
	}
	if err := c.Start(); err != nil {
		t.Fatal(err)
	}
	defer c.Shutdown()
	waitFor(t, 20*time.Second, "4 messages consumed", func() bool { return col.count() == 4 })
	col.mu.Lock()
	defer col.mu.Unlock()
	for _, body := range []string{"past", "at-10s", "in-20s", "in-30s"} {
		if col.seen[body] != 1 {
			t.Errorf("%s consumed %d times, want 1", body, col.seen[body])
		}
	}
	if col.seen["in-3d"] != 0 {
		t.Error("the 3-day timer was delivered early")
	}
}

// TestTimerMessagesSurviveKill9: a sync-flush broker (a child process, real clock) takes timer messages due in
// 1.5 to 2.5 s and is killed with SIGKILL before any is due; the broker reopened on its data directory delivers
// every acknowledged one, none before its time. A message delivered before the kill may come again (at least
// once), so distinct bodies are counted.
func TestTimerMessagesSurviveKill9(t *testing.T) {
	dir := t.TempDir()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), "TIDE_MQ_CHILD_DIR="+dir)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	killed := false
	defer func() {
		if !killed {
			cmd.Process.Kill()
			cmd.Wait()
		}
	}()
	line, err := bufio.NewReader(out).ReadString('\n')
	if err != nil || !strings.HasPrefix(line, "ready ") {
		t.Fatalf("child broker: %q %v", line, err)
	}
	p, err := rocketmq.NewProducer(producer.WithNameServer([]string{strings.Fields(line)[1]}), producer.WithRetry(2),
		producer.WithInstanceName(uniq("timer-crash")), producer.WithGroupName("timer-crash-pg"))
	if err != nil {
		t.Fatal(err)
	}
	if err := p.Start(); err != nil {
		t.Fatal(err)
	}
	const n = 100
	due := map[string]int64{}
	for i := 0; i < n; i++ {
		body := fmt.Sprintf("t-%03d", i)
		at := time.Now().Add(1500*time.Millisecond + time.Duration(i)*10*time.Millisecond).UnixMilli()
		if _, err := p.SendSync(context.Background(), timerMsg("crash-timed", body, "TIMER_DELIVER_MS", at)); err != nil {
			t.Fatal(err)
		}
		due[body] = at
	}
	p.Shutdown()
	if err := cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	cmd.Wait()
	killed = true

	srv := start(t, mq.Options{DataDir: dir, SegmentSize: 1 << 20})
	var mu sync.Mutex
	got := map[string]int{}
	c := newPushConsumer(t, srv, "g-crash-timed", consumer.WithConsumeFromWhere(consumer.ConsumeFromFirstOffset))
	err = c.Subscribe("crash-timed", consumer.MessageSelector{}, func(_ context.Context, msgs ...*primitive.MessageExt) (consumer.ConsumeResult, error) {
		mu.Lock()
		defer mu.Unlock()
		for _, m := range msgs {
			// The copy in the real topic is stored when the timer delivers it: not before its due time.
			if at := due[string(m.Body)]; m.StoreTimestamp < at {
				t.Errorf("%s delivered at %d, before its time %d", m.Body, m.StoreTimestamp, at)
			}
			got[string(m.Body)]++
		}
		return consumer.ConsumeSuccess, nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Start(); err != nil {
		t.Fatal(err)
	}
	defer c.Shutdown()
	waitFor(t, 30*time.Second, "every acknowledged timer message after the kill", func() bool { mu.Lock(); defer mu.Unlock(); return len(got) == n })
}
