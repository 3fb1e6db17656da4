package bus

import (
	"context"
	"log/slog"
	"sync"
	"time"
)

// lateHeartbeat is how long after a push consumer's Shutdown returned a heartbeat of its may still reach the
// broker. rocketmq-client-go v2.1.2 snapshots its groups for a heartbeat (on a rebalance that changed the queues,
// and every 30 s) and then sends it with a 3 s timeout, on a new connection if Shutdown closed the old one (its
// connect does not check that the client is shut down). A heartbeat re-creates the group's subscription config
// (on Apache's broker as on tide's), so a group deleted right after its consumer stopped could come back; this
// was seen in CI under load as a `tide events tail` group left behind. The window is that timeout plus a margin.
// (The native consumer unregisters when it closes and sends no heartbeat after that, but one already on the wire
// when Close began can still land, so both buses keep the second deletion.)
const lateHeartbeat = 5 * time.Second

// lateDeletes is both buses' second deletion of a group: a group deleted less than window after the bus shut its
// consumer down is deleted again once the window has passed, unless the bus subscribes it again by then.
//
// Invariant: mu guards shutAt and closed; wg counts the pending second deletions, which close ends and waits for.
type lateDeletes struct {
	window time.Duration
	del    func(ctx context.Context, group string) error // the bus's DeleteGroup hook on its name servers
	live   func(group string) bool                       // whether the bus subscribes group now
	log    *slog.Logger
	stop   chan struct{}
	wg     sync.WaitGroup

	mu     sync.Mutex
	shutAt map[string]time.Time // when a group's consumer was last shut down; entries older than window are dropped
	closed bool
}

func newLateDeletes(log *slog.Logger, del func(context.Context, string) error, live func(string) bool) *lateDeletes {
	return &lateDeletes{window: lateHeartbeat, del: del, live: live, log: log, stop: make(chan struct{}),
		shutAt: map[string]time.Time{}}
}

// shutDown records that group's consumer was shut down now.
func (l *lateDeletes) shutDown(group string) {
	now := time.Now()
	l.mu.Lock()
	defer l.mu.Unlock()
	for g, at := range l.shutAt {
		if now.Sub(at) >= l.window {
			delete(l.shutAt, g)
		}
	}
	l.shutAt[group] = now
}

// deleted is told that group was just deleted; it schedules the second deletion when the group's consumer was
// shut down less than window ago.
func (l *lateDeletes) deleted(group string) {
	l.mu.Lock()
	at, recent := l.shutAt[group]
	delete(l.shutAt, group)
	again := recent && !l.closed && time.Since(at) < l.window
	if again {
		l.wg.Add(1)
	}
	l.mu.Unlock()
	if again {
		go l.again(group, at.Add(l.window))
	}
}

// again deletes group a second time at when, unless close comes first or the bus subscribed the group again.
func (l *lateDeletes) again(group string, when time.Time) {
	defer l.wg.Done()
	t := time.NewTimer(time.Until(when))
	defer t.Stop()
	select {
	case <-l.stop:
		return
	case <-t.C:
	}
	if l.live(group) {
		return // subscribed again: the group is live, not a leftover
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	go func() { // closing ends the attempt
		select {
		case <-l.stop:
			cancel()
		case <-ctx.Done():
		}
	}()
	if err := l.del(ctx, group); err != nil {
		l.log.Debug("deleting the group again after its consumer's last heartbeat window failed", "group", group, "err", err)
	}
}

// close ends the pending second deletions and waits for them.
func (l *lateDeletes) close() {
	l.mu.Lock()
	if l.closed {
		l.mu.Unlock()
		return
	}
	l.closed = true
	l.mu.Unlock()
	close(l.stop)
	l.wg.Wait()
}
