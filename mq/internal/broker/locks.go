package broker

import (
	"encoding/json"
	"sync"
	"time"

	"github.com/tide-run/tide/mq/remoting"
)

// lockTable holds ordered-consumption queue locks: (group, topic, queue) -> holder until expiry.
type lockTable struct {
	mu    sync.Mutex // guards locks
	locks map[lockKey]*lockEntry
}

type lockKey struct {
	group, topic string
	queue        int32
}

type lockEntry struct {
	clientID string
	expires  time.Time
}

func newLockTable() *lockTable { return &lockTable{locks: map[lockKey]*lockEntry{}} }

func (l *lockTable) releaseClient(group, clientID string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for k, e := range l.locks {
		if k.group == group && e.clientID == clientID {
			delete(l.locks, k)
		}
	}
}

type mqJSON struct {
	Topic      string `json:"topic"`
	BrokerName string `json:"brokerName"`
	QueueID    int32  `json:"queueId"`
}

type lockBody struct {
	ConsumerGroup string   `json:"consumerGroup"`
	ClientID      string   `json:"clientId"`
	MQSet         []mqJSON `json:"mqSet"`
}

// handleLock grants each requested queue that is free, expired or already the caller's. A client's lock request
// lists every queue it currently processes (the Go and Java clients lock all at once), so queues the caller held
// but no longer lists were given up in a rebalance: they are released and the group is told to rebalance, which
// lets the new owner lock them now instead of after the lease.
func (b *Broker) handleLock(req *remoting.Command) *remoting.Command {
	var body lockBody
	if err := json.Unmarshal(req.Body, &body); err != nil {
		return remoting.Errorf(req, remoting.SystemError, "lock body: %v", err)
	}
	now := b.clock.Now()
	ok := []mqJSON{}
	wanted := map[lockKey]bool{}
	topics := map[string]bool{}
	released := false
	l := b.locks
	l.mu.Lock()
	for _, mq := range body.MQSet {
		k := lockKey{body.ConsumerGroup, mq.Topic, mq.QueueID}
		wanted[k] = true
		topics[mq.Topic] = true
		e := l.locks[k]
		if e == nil || e.clientID == body.ClientID || now.After(e.expires) {
			l.locks[k] = &lockEntry{clientID: body.ClientID, expires: now.Add(b.opts.LockLease)}
			ok = append(ok, mq)
		}
	}
	for k, e := range l.locks {
		if k.group == body.ConsumerGroup && e.clientID == body.ClientID && topics[k.topic] && !wanted[k] && len(body.MQSet) > 1 {
			delete(l.locks, k)
			released = true
		}
	}
	l.mu.Unlock()
	if released {
		b.clients.notify(body.ConsumerGroup)
	}
	out, _ := json.Marshal(map[string][]mqJSON{"lockOKMQSet": ok})
	resp := remoting.NewResponse(req, remoting.Success, "")
	resp.Body = out
	return resp
}

func (b *Broker) handleUnlock(req *remoting.Command) *remoting.Command {
	var body lockBody
	if err := json.Unmarshal(req.Body, &body); err != nil {
		return remoting.Errorf(req, remoting.SystemError, "unlock body: %v", err)
	}
	released := false
	l := b.locks
	l.mu.Lock()
	for _, mq := range body.MQSet {
		k := lockKey{body.ConsumerGroup, mq.Topic, mq.QueueID}
		if e := l.locks[k]; e != nil && e.clientID == body.ClientID {
			delete(l.locks, k)
			released = true
		}
	}
	l.mu.Unlock()
	if released {
		b.clients.notify(body.ConsumerGroup)
	}
	return remoting.NewResponse(req, remoting.Success, "")
}
