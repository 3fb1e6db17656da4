package grpcproxy

import "sync"

// notifier wakes long-polling receives when a topic gets a message (or a FIFO queue is unblocked by an ack).
type notifier struct {
	mu    sync.Mutex
	chans map[string]chan struct{}
}

func newNotifier() *notifier { return &notifier{chans: map[string]chan struct{}{}} }

// wait returns a channel closed at the next arrival on topic. Take it before looking, so no arrival is missed.
func (n *notifier) wait(topic string) <-chan struct{} {
	n.mu.Lock()
	defer n.mu.Unlock()
	c := n.chans[topic]
	if c == nil {
		c = make(chan struct{})
		n.chans[topic] = c
	}
	return c
}

// arrived runs on the store's write path: it never blocks.
func (n *notifier) arrived(topic string, _ int32) {
	n.mu.Lock()
	c := n.chans[topic]
	delete(n.chans, topic)
	n.mu.Unlock()
	if c != nil {
		close(c)
	}
}
