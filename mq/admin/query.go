package admin

import (
	"context"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"math"
	"net/netip"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/tide-run/tide/mq/message"
	"github.com/tide-run/tide/mq/mqmeta"
	"github.com/tide-run/tide/mq/remoting"
)

// ErrNotFound says a query found no message.
var ErrNotFound = errors.New("admin: no message found")

// QueryByKey returns the messages of topic whose KEYS include key, stored in [begin, end] (zero times: no bound): the
// newest maxNum (brokers cap it at 64), oldest first: QUERY_MESSAGE (12) as Java's MQAdminImpl.queryMessage / mqadmin queryMsgByKey
// send it. As there, the broker's candidates are filtered again by topic and key (Java's broker returns hash
// collisions; tide's does not).
func (c *Client) QueryByKey(ctx context.Context, topic, key string, maxNum int, begin, end time.Time) ([]*message.Message, error) {
	msgs, err := c.queryMessage(ctx, topic, key, maxNum, begin, end, false)
	if err != nil {
		return nil, err
	}
	out := msgs[:0]
	for _, m := range msgs {
		if m.Topic == topic && hasWord(message.Property(m.Properties, message.PropKeys), key) {
			out = append(out, m)
		}
	}
	return out, nil
}

// QueryByUniqKey returns the messages of topic whose message id (UNIQ_KEY) is id (normally one; a message retried
// or re-sent with its id keeps it), as mqadmin queryMsgByUniqueKey does (QUERY_MESSAGE with _UNIQUE_KEY_QUERY=true).
func (c *Client) QueryByUniqKey(ctx context.Context, topic, id string, begin, end time.Time) ([]*message.Message, error) {
	msgs, err := c.queryMessage(ctx, topic, id, mqmeta.DefaultQueryMaxNum, begin, end, true)
	if err != nil {
		return nil, err
	}
	out := msgs[:0]
	for _, m := range msgs {
		if message.Property(m.Properties, message.PropUniqKey) == id {
			out = append(out, m)
		}
	}
	return out, nil
}

func (c *Client) queryMessage(ctx context.Context, topic, key string, maxNum int, begin, end time.Time, uniq bool) ([]*message.Message, error) {
	if err := mqmeta.ValidateTopic(topic); err != nil {
		return nil, err
	}
	if key == "" {
		return nil, errors.New("admin: query: empty key")
	}
	from, to := int64(0), int64(math.MaxInt64)
	if !begin.IsZero() {
		from = begin.UnixMilli()
	}
	if !end.IsZero() {
		to = end.UnixMilli()
	}
	ext := map[string]string{"topic": topic, "key": key, "maxNum": strconv.Itoa(maxNum),
		"beginTimestamp": strconv.FormatInt(from, 10), "endTimestamp": strconv.FormatInt(to, 10),
		mqmeta.UniqueKeyQueryFlag: strconv.FormatBool(uniq)}
	resp, err := c.br.Invoke(ctx, remoting.NewRequest(remoting.QueryMessage, ext, nil))
	if err != nil {
		return nil, err
	}
	switch resp.Code {
	case remoting.Success:
	case remoting.QueryNotFound:
		return nil, nil
	default:
		return nil, fmt.Errorf("%w: code %d: %s", ErrResponse, resp.Code, resp.Remark)
	}
	return decodeAll(resp.Body)
}

func decodeAll(b []byte) ([]*message.Message, error) {
	var msgs []*message.Message
	for len(b) > 0 {
		m, n, err := message.Decode(b)
		if err != nil {
			return msgs, fmt.Errorf("admin: message in answer: %w", err)
		}
		msgs = append(msgs, m)
		b = b[n:]
	}
	return msgs, nil
}

func hasWord(keys, key string) bool {
	for _, k := range strings.Split(keys, " ") {
		if k == key {
			return true
		}
	}
	return false
}

// ParseOffsetMsgID splits a broker's offset message id (32 hex characters, 56 for IPv6: store host, port,
// commit-log offset) into the broker address and the offset. A producer's message id (UNIQ_KEY) has the same
// length; it decodes too, to an address that is normally no broker's.
func ParseOffsetMsgID(id string) (netip.AddrPort, int64, error) {
	if len(id) != 32 && len(id) != 56 {
		return netip.AddrPort{}, 0, fmt.Errorf("message id %q: want 32 hex characters (56 for an IPv6 broker)", id)
	}
	b, err := hex.DecodeString(id)
	if err != nil {
		return netip.AddrPort{}, 0, fmt.Errorf("message id %q: not hex: %w", id, err)
	}
	ipLen := len(b) - 12
	ip, _ := netip.AddrFromSlice(b[:ipLen])
	port := binary.BigEndian.Uint32(b[ipLen:])
	if port > 65535 {
		return netip.AddrPort{}, 0, fmt.Errorf("message id %q: port %d out of range", id, port)
	}
	return netip.AddrPortFrom(ip, uint16(port)), int64(binary.BigEndian.Uint64(b[ipLen+4:])), nil
}

// ViewMessage reads the message an offset message id names: VIEW_MESSAGE_BY_ID (33) to the broker in the id, as
// mqadmin queryMsgById and Java's viewMessage do.
func (c *Client) ViewMessage(ctx context.Context, offsetMsgID string) (*message.Message, error) {
	addr, off, err := ParseOffsetMsgID(offsetMsgID)
	if err != nil {
		return nil, err
	}
	req := remoting.NewRequest(remoting.ViewMessageByID, map[string]string{"offset": strconv.FormatInt(off, 10)}, nil)
	if addr.String() != c.brokerAddr {
		// Only this client's broker is asked: a producer's message id (UNIQ_KEY) decodes to an address too, and
		// dialing whatever an id names is not done.
		return nil, fmt.Errorf("%w: %s names broker %s, not %s", ErrNotFound, offsetMsgID, addr, c.brokerAddr)
	}
	to := c.br
	resp, err := to.Invoke(ctx, req)
	if err != nil {
		return nil, err
	}
	if resp.Code != remoting.Success {
		return nil, fmt.Errorf("%w: code %d: %s", ErrNotFound, resp.Code, resp.Remark)
	}
	m, _, err := message.Decode(resp.Body)
	if err != nil {
		return nil, fmt.Errorf("admin: viewed message: %w", err)
	}
	return m, nil
}

// FindByID finds messages by id, as `mqadmin queryMsgById` does and then some: an offset message id (the broker's,
// printed by sends as OFFSET MSGID) is read directly; otherwise id is taken as the producer's message id
// (UNIQ_KEY) and looked up in topic, or, with topic empty, in every topic the name server lists (user topics first,
// then retry, dead-letter and other system topics).
func (c *Client) FindByID(ctx context.Context, id, topic string, begin, end time.Time) ([]*message.Message, error) {
	if m, err := c.ViewMessage(ctx, id); err == nil && (topic == "" || m.Topic == topic) {
		return []*message.Message{m}, nil
	}
	topics := []string{topic}
	if topic == "" {
		all, err := c.TopicList(ctx)
		if err != nil {
			return nil, err
		}
		sort.SliceStable(all, func(i, j int) bool { return !mqmeta.IsSystemTopic(all[i]) && mqmeta.IsSystemTopic(all[j]) })
		topics = all
	}
	var out []*message.Message
	for _, t := range topics {
		if mqmeta.ValidateTopic(t) != nil {
			continue
		}
		msgs, err := c.QueryByUniqKey(ctx, t, id, begin, end)
		if err != nil {
			if errors.Is(err, ErrResponse) {
				continue // e.g. a topic on another broker
			}
			return out, err
		}
		out = append(out, msgs...)
	}
	return out, nil
}

// SearchOffset returns the first offset of a queue whose message was stored at or after t
// (SEARCH_OFFSET_BY_TIMESTAMP, 29).
func (c *Client) SearchOffset(ctx context.Context, topic string, queue int32, t time.Time) (int64, error) {
	resp, err := c.call(ctx, c.br, remoting.NewRequest(remoting.SearchOffsetByTimestamp, map[string]string{
		"topic": topic, "queueId": strconv.Itoa(int(queue)), "timestamp": strconv.FormatInt(t.UnixMilli(), 10)}, nil))
	if err != nil {
		return 0, err
	}
	return strconv.ParseInt(resp.ExtFields["offset"], 10, 64)
}

// MessagesByTime returns up to max messages of topic stored in [from, to], oldest first, reading each queue from
// the offset SEARCH_OFFSET_BY_TIMESTAMP gives for from (as `mqadmin printMsg -b -e` does). It stops once max
// messages are collected (the earliest of each queue first).
func (c *Client) MessagesByTime(ctx context.Context, topic string, from, to time.Time, max int) ([]*message.Message, error) {
	queues, err := c.writeQueues(ctx, topic)
	if err != nil {
		return nil, err
	}
	if queues == 0 {
		return nil, fmt.Errorf("%w: topic %s: no route (does it exist?)", ErrNotFound, topic)
	}
	var out []*message.Message
	for q := int32(0); int(q) < queues && len(out) < max; q++ {
		off, err := c.SearchOffset(ctx, topic, q, from)
		if err != nil {
			return out, fmt.Errorf("%s queue %d: %w", topic, q, err)
		}
		for len(out) < max {
			msgs, next, err := c.Pull(ctx, "tide-admin", topic, q, off, 32)
			if err != nil {
				return out, fmt.Errorf("reading %s queue %d at %d: %w", topic, q, off, err)
			}
			done := len(msgs) == 0 || next <= off
			for _, m := range msgs {
				if m.StoreTimestamp > to.UnixMilli() {
					done = true
					break
				}
				if m.StoreTimestamp >= from.UnixMilli() && len(out) < max {
					out = append(out, m)
				}
			}
			if done {
				break
			}
			off = next
		}
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].StoreTimestamp < out[j].StoreTimestamp })
	return out, nil
}
