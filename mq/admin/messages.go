package admin

import (
	"fmt"
	"strings"

	"github.com/tide-run/tide/mq/message"
)

// MsgID is what a consumer sees as a message's id: the producer's UNIQ_KEY, else the broker's offset message id.
func MsgID(m *message.Message) string {
	if id := message.Property(m.Properties, message.PropUniqKey); id != "" {
		return id
	}
	return OffsetMsgID(m)
}

// OffsetMsgID is the broker's id of a stored message: its store host and commit-log position, never reused.
func OffsetMsgID(m *message.Message) string {
	return message.OffsetMsgID(m.StoreHost, m.PhysicalOffset)
}

// UserProperties returns a message's properties without those the broker and clients manage.
func UserProperties(m *message.Message) map[string]string {
	p := message.ParseProperties(m.Properties)
	for k := range p {
		if IsSystemProperty(k) {
			delete(p, k)
		}
	}
	return p
}

// OriginTopic is the topic a dead-lettered or retried message was first sent to ("" if it carries neither
// property).
func OriginTopic(m *message.Message) string {
	if t := message.Property(m.Properties, message.PropDLQOriginTopic); t != "" {
		return t
	}
	return message.Property(m.Properties, message.PropRetryTopic)
}

// TagFilter is a parsed tag expression: nil ("*" or empty) accepts everything, "a || b" accepts those tags.
type TagFilter map[string]bool

// ParseTagExpr parses a tag subscription expression as RocketMQ's clients accept it.
func ParseTagExpr(expr string) (TagFilter, error) {
	expr = strings.TrimSpace(expr)
	if expr == "" || expr == "*" {
		return nil, nil
	}
	f := TagFilter{}
	for _, t := range strings.Split(expr, "||") {
		t = strings.TrimSpace(t)
		if t == "" || strings.Contains(t, "*") {
			return nil, fmt.Errorf("tag expression %q: want * or tags separated by ||", expr)
		}
		f[t] = true
	}
	return f, nil
}

// Match checks a message's tag again on the client side: the broker filters by tag hash, which can collide.
func (f TagFilter) Match(m *message.Message) bool {
	return f == nil || f[message.Property(m.Properties, message.PropTags)]
}
