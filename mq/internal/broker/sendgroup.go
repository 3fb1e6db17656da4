package broker

import (
	"github.com/tide-run/tide/mq/message"
	"github.com/tide-run/tide/mq/remoting"
)

// Sends that arrive together on one connection are stored together: the read loop defers each plain send
// (SEND_MESSAGE, one message) into the connection's sendGroup and stores the group with one Store.Put (one
// commit-log write) when no further request is buffered (Broker.ConnIdle), before any other request of that
// connection is handled, or when the group is full. Nothing is answered before it is stored (and, in sync mode,
// flushed), so acknowledgements mean what they did; requests keep their per-connection order because the group
// is stored in arrival order and flushed before anything else from the connection is served.

// Group limits bound the delay a send can see behind others and the memory held per connection.
const (
	sendGroupMax   = 64
	sendGroupBytes = 256 << 10
)

type sendGroup struct {
	reqs  []*remoting.Command
	msgs  []*message.Message // msgs[i] belongs to reqs[i]
	bytes int
}

// deferSend queues a prepared single-message send on c's group; it answers now only when the message is invalid.
func (b *Broker) deferSend(c *remoting.Conn, req *remoting.Command, m *message.Message) *remoting.Command {
	if err := b.applyTimer(m); err != nil {
		return remoting.Errorf(req, remoting.MessageIllegal, "%v", err)
	}
	b.applyDelay(m)
	if err := m.Validate(); err != nil {
		return b.putError(req, err) // refused alone, so one bad message never fails the rest of the group
	}
	g, _ := c.Deferred.(*sendGroup)
	if g == nil {
		g = &sendGroup{}
		c.Deferred = g
	}
	g.reqs = append(g.reqs, req)
	g.msgs = append(g.msgs, m)
	g.bytes += m.Size()
	if len(g.reqs) >= sendGroupMax || g.bytes >= sendGroupBytes {
		b.flushSends(c)
	}
	return nil
}

// ConnIdle is the remoting server's OnIdle: it stores and answers the sends deferred on c.
func (b *Broker) ConnIdle(c *remoting.Conn) { b.flushSends(c) }

// flushSends stores c's deferred sends with one Put and answers each once the flush policy allows. Runs on c's
// read loop.
func (b *Broker) flushSends(c *remoting.Conn) {
	g, _ := c.Deferred.(*sendGroup)
	if g == nil || len(g.reqs) == 0 {
		return
	}
	reqs, msgs := g.reqs, g.msgs
	defer func() {
		clear(g.reqs)
		clear(g.msgs)
		g.reqs, g.msgs, g.bytes = g.reqs[:0], g.msgs[:0], 0
	}()
	if len(reqs) == 1 {
		b.reply(c, reqs[0], b.putAndReply(c, reqs[0], msgs))
		return
	}
	res, end, err := b.st.Put(msgs)
	if err != nil {
		// Nothing of the group landed. Store each alone so each gets its own answer (a group too large for what
		// is left of the disk may still fit message by message).
		for i, req := range reqs {
			b.reply(c, req, b.putAndReply(c, req, msgs[i:i+1]))
		}
		return
	}
	b.opts.Counters.noteIn(msgs)
	resps := make([]*remoting.Command, len(reqs))
	for i, req := range reqs {
		resps[i] = b.sendResponse(req, msgs[i:i+1], res[i:i+1])
	}
	reqs = append([]*remoting.Command(nil), reqs...) // the callback may run after the group is reused
	b.st.WhenFlushed(end, func(err error) {
		if err != nil {
			for i, req := range reqs {
				resps[i] = remoting.Errorf(req, remoting.SystemError, "message stored but not flushed to disk: %v", err)
			}
		}
		_ = c.ReplyAll(reqs, resps) // one hand-off to the connection's writer for the whole group
	})
}

func (b *Broker) reply(c *remoting.Conn, req, resp *remoting.Command) {
	if resp != nil && !req.IsOneway() {
		_ = c.Reply(req, resp)
	}
}
