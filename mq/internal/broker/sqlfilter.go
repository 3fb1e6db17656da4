package broker

import (
	"strings"

	"github.com/tide-run/tide/mq/internal/sql92"
	"github.com/tide-run/tide/mq/internal/store"
	"github.com/tide-run/tide/mq/message"
	"github.com/tide-run/tide/mq/remoting"
)

// SQL92 property filtering (Java: ExpressionMessageFilter with enablePropertyFilter=true, which tide always has).
// The consume queue holds only tag hashes, so a SQL92 pull reads each candidate message from the commit log,
// evaluates the compiled selector on its properties and drops the ones that do not match; nextBeginOffset still
// moves past them, so a consumer never pulls a rejected message twice.

// sqlScanLimit bounds the queue entries one SQL92 pull looks through while nothing matches, so a selective
// filter costs few round trips without holding the connection's read loop for long.
const sqlScanLimit = 1024

// exprSubscription compiles a heartbeat subscription of a non-TAG expression type. The previous subscription's
// compiled form is reused when the expression did not change (heartbeats repeat every 30 s).
func exprSubscription(expType, expr string, old *subscription) *subscription {
	s := &subscription{expr: expr, all: true}
	if !strings.EqualFold(expType, "SQL92") {
		return s // unknown expression types are not evaluated: deliver everything, as before
	}
	if old != nil && old.expr == expr && (old.sql != nil || old.sqlErr != nil) {
		s.sql, s.sqlErr = old.sql, old.sqlErr
		return s
	}
	s.sql, s.sqlErr = sql92.Compile(expr)
	return s
}

// exprFilter sets up a pull whose request names a non-TAG expression type. With the subscription flag the
// request's own expression is compiled (Java: FilterAPI.build, SUBSCRIPTION_PARSE_FAILED on error); otherwise
// the heartbeat's subscription applies. It returns a response only when the pull must be refused.
func (b *Broker) exprFilter(p *pullReq, expType, subExpr string, hasSub bool) *remoting.Command {
	if !strings.EqualFold(expType, "SQL92") {
		return nil // not evaluated by this broker: deliver everything
	}
	if hasSub && subExpr != "" {
		e, err := sql92.Compile(subExpr)
		if err != nil {
			return badSQL(p.req, subExpr, err)
		}
		p.sql = e
		return nil
	}
	if s := b.clients.subscription(p.group, p.topic); s != nil {
		if s.sqlErr != nil {
			return badSQL(p.req, s.expr, s.sqlErr)
		}
		p.sql = s.sql
	}
	return nil
}

func badSQL(req *remoting.Command, expr string, err error) *remoting.Command {
	return remoting.Errorf(req, remoting.SubscriptionParseFailed, "parse the consumer's subscription[%s] failed: %v", expr, err)
}

// getSQL is store.Get filtered by p.sql. While nothing has matched it keeps reading further entries, up to
// sqlScanLimit; Status is Found when a message matched and NoMatchedMessage when entries were skipped.
func (b *Broker) getSQL(p *pullReq) (store.GetResult, error) {
	var out store.GetResult
	off := p.offset
	for first := true; ; first = false {
		r, err := b.st.Get(p.topic, p.queue, off, p.max, pullMaxBytes, nil)
		if err != nil {
			return r, err
		}
		if r.Status != store.Found && r.Status != store.NoMatchedMessage {
			if first {
				return r, nil // empty queue, offset out of range: answered as without a filter
			}
			break
		}
		out.Min, out.Max, out.NextBegin = r.Min, r.Max, r.NextBegin
		for i, m := range r.Messages {
			if b.sqlMatch(p, m) {
				out.Messages = append(out.Messages, m)
				out.Offsets = append(out.Offsets, r.Offsets[i])
			}
		}
		off = r.NextBegin
		if len(out.Messages) > 0 || off >= r.Max || off-p.offset >= sqlScanLimit || off <= p.offset {
			break
		}
	}
	out.Status = store.NoMatchedMessage
	if len(out.Messages) > 0 {
		out.Status = store.Found
	}
	return out, nil
}

// sqlMatch evaluates the selector on one stored message's properties (user properties and system ones such as
// TAGS and KEYS, as in Java). A message that cannot be decoded is delivered, so the client reports it rather than
// the broker hiding it.
func (b *Broker) sqlMatch(p *pullReq, raw []byte) bool {
	m, _, err := message.Decode(raw)
	if err != nil {
		b.log.Warn("sql92 filter: undecodable message delivered unfiltered", "topic", p.topic, "queue", p.queue, "err", err)
		return true
	}
	return p.sql.Match(sql92.Encoded(m.Properties))
}
