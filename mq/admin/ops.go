package admin

// Operations the `tide mq` commands need beyond topic and group administration: raw sends, offset queries and
// commits, filtered pulls and group membership. Everything goes over the remoting protocol, so the same calls work
// against an Apache RocketMQ broker.

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/tide-run/tide/mq/message"
	"github.com/tide-run/tide/mq/mqmeta"
	"github.com/tide-run/tide/mq/remoting"
)

// ErrNoOffset means the group has no stored offset for the queue.
var ErrNoOffset = errors.New("admin: no stored offset")

// Pull request sysFlag bits (Java's PullSysFlag).
const (
	pullFlagSubscription = 1 << 2
)

// SendRequest is one message to send with SEND_MESSAGE.
type SendRequest struct {
	Topic string
	Body  []byte
	Tag   string
	// Keys are joined with spaces into the KEYS property, as the clients do.
	Keys []string
	// Properties are user properties; they must not use system property names.
	Properties map[string]string
	// QueueID picks the queue; negative lets Send pick one (round robin over the topic's write queues).
	QueueID int32
	// ProducerGroup names the sender (default "tide-cli").
	ProducerGroup string
	// UniqKey overrides the generated client message id (UNIQ_KEY); a DLQ replay keeps the original id.
	UniqKey string
}

// SendResult is the broker's answer to a send.
type SendResult struct {
	MsgID       string // the client id (UNIQ_KEY), what consumers see as MsgId
	OffsetMsgID string // the broker's id (store host + commit-log offset)
	Topic       string
	QueueID     int32
	QueueOffset int64
}

// systemProperties are property names a user may not set through SendRequest.Properties.
var systemProperties = map[string]bool{
	message.PropTags: true, message.PropKeys: true, message.PropWaitStoreOK: true, message.PropDelayLevel: true,
	message.PropRetryTopic: true, message.PropRealTopic: true, message.PropRealQueueID: true, message.PropTxPrepared: true,
	message.PropProducerGroup: true, message.PropOriginMessageID: true, message.PropReconsumeTime: true,
	message.PropMaxReconsumeTimes: true, message.PropUniqKey: true, message.PropDLQOriginTopic: true,
	message.PropDLQOriginMsgID: true, message.PropTimerDeliverMS: true, message.PropTimerDelaySec: true,
	message.PropTimerDelayMS: true,
}

// IsSystemProperty reports whether name is reserved for the broker and clients.
func IsSystemProperty(name string) bool { return systemProperties[name] }

// ValidateProperty checks a user property name and value.
func ValidateProperty(name, value string) error {
	switch {
	case name == "":
		return errors.New("property name is empty")
	case systemProperties[name]:
		return fmt.Errorf("property %q is a system property", name)
	case strings.ContainsAny(name+value, "\x01\x02"):
		return fmt.Errorf("property %q contains a control character \\x01 or \\x02", name)
	}
	return nil
}

// newUniqKey builds a client message id in the clients' 32-hex-digit layout: IPv4 (4 bytes), pid (2), random (4),
// milliseconds since the start of the month (4) and a per-client counter (2). Uniqueness comes from the random part
// plus the counter; the layout only matters to tools that decode it.
func (c *Client) newUniqKey(now time.Time) string {
	var b [16]byte
	copy(b[0:4], []byte{127, 0, 0, 1})
	binary.BigEndian.PutUint16(b[4:6], uint16(os.Getpid()))
	_, _ = rand.Read(b[6:10])
	month := time.Date(now.Year(), now.Month(), 1, 0, 0, 0, 0, now.Location())
	binary.BigEndian.PutUint32(b[10:14], uint32(now.Sub(month).Milliseconds()))
	binary.BigEndian.PutUint16(b[14:16], uint16(c.counter.Add(1)))
	return strings.ToUpper(hex.EncodeToString(b[:]))
}

// writeQueues returns the topic's write queue count from the name server's route (0 if the topic is unknown).
func (c *Client) writeQueues(ctx context.Context, topic string) (int, error) {
	resp, err := c.ns.Invoke(ctx, remoting.NewRequest(remoting.GetRouteInfoByTopic, map[string]string{"topic": topic}, nil))
	if err != nil {
		return 0, err
	}
	if resp.Code == remoting.TopicNotExist {
		return 0, nil
	}
	if resp.Code != remoting.Success {
		return 0, fmt.Errorf("%w: code %d: %s", ErrResponse, resp.Code, resp.Remark)
	}
	var route struct {
		QueueDatas []struct {
			WriteQueueNums int `json:"writeQueueNums"`
		} `json:"queueDatas"`
	}
	// Apache's name server writes the route's brokerAddrs with fastjson's bare numeric keys.
	if err := json.Unmarshal(QuoteNumericKeys(resp.Body), &route); err != nil {
		return 0, fmt.Errorf("admin: route of %s: %w", topic, err)
	}
	n := 0
	for _, q := range route.QueueDatas {
		n += q.WriteQueueNums
	}
	return n, nil
}

// Send sends one message synchronously (the broker answers once its flush policy allows). An unknown topic is
// auto-created by the broker from TBW102, as a client's first send does.
func (c *Client) Send(ctx context.Context, r SendRequest) (SendResult, error) {
	if err := mqmeta.ValidateTopic(r.Topic); err != nil {
		return SendResult{}, err
	}
	props := map[string]string{message.PropWaitStoreOK: "true"}
	for k, v := range r.Properties {
		if err := ValidateProperty(k, v); err != nil {
			return SendResult{}, err
		}
		props[k] = v
	}
	if r.Tag != "" {
		props[message.PropTags] = r.Tag
	}
	if len(r.Keys) > 0 {
		props[message.PropKeys] = strings.Join(r.Keys, " ")
	}
	uniq := r.UniqKey
	if uniq == "" {
		uniq = c.newUniqKey(time.Now())
	}
	props[message.PropUniqKey] = uniq
	qid := r.QueueID
	if qid < 0 {
		n, err := c.writeQueues(ctx, r.Topic)
		if err != nil {
			return SendResult{}, err
		}
		qid = 0
		if n > 0 {
			// Round robin from a random start, so one-message-per-process senders (the CLI) still spread.
			qid = int32((c.counter.Add(1) + c.queueSeed) % uint64(n))
		}
	}
	group := r.ProducerGroup
	if group == "" {
		group = "tide-cli"
	}
	resp, err := c.call(ctx, c.br, remoting.NewRequest(remoting.SendMessage, map[string]string{
		"producerGroup": group, "topic": r.Topic, "defaultTopic": mqmeta.DefaultTopic, "defaultTopicQueueNums": "4",
		"queueId": strconv.Itoa(int(qid)), "sysFlag": "0", "bornTimestamp": strconv.FormatInt(time.Now().UnixMilli(), 10),
		"flag": "0", "properties": message.FormatProperties(props), "reconsumeTimes": "0", "unitMode": "false", "batch": "false"}, r.Body))
	if err != nil {
		return SendResult{}, err
	}
	res := SendResult{MsgID: uniq, OffsetMsgID: resp.ExtFields["msgId"], Topic: r.Topic}
	q, _ := strconv.ParseInt(resp.ExtFields["queueId"], 10, 32)
	res.QueueID = int32(q)
	res.QueueOffset, _ = strconv.ParseInt(resp.ExtFields["queueOffset"], 10, 64)
	return res, nil
}

// MinOffset returns a queue's first available offset.
func (c *Client) MinOffset(ctx context.Context, topic string, queue int32) (int64, error) {
	resp, err := c.call(ctx, c.br, remoting.NewRequest(remoting.GetMinOffset, map[string]string{"topic": topic, "queueId": strconv.Itoa(int(queue))}, nil))
	if err != nil {
		return 0, err
	}
	return strconv.ParseInt(resp.ExtFields["offset"], 10, 64)
}

// QueryOffset returns the group's stored offset for a queue, or ErrNoOffset. Note that a broker answers 0 for a
// group without an offset while the queue still holds its first message (Java's rule); ConsumeStats tells the two
// apart (ConsumerOffset -1).
func (c *Client) QueryOffset(ctx context.Context, group, topic string, queue int32) (int64, error) {
	resp, err := c.br.Invoke(ctx, remoting.NewRequest(remoting.QueryConsumerOffset, map[string]string{
		"consumerGroup": group, "topic": topic, "queueId": strconv.Itoa(int(queue))}, nil))
	if err != nil {
		return 0, err
	}
	switch resp.Code {
	case remoting.Success:
		return strconv.ParseInt(resp.ExtFields["offset"], 10, 64)
	case remoting.QueryNotFound:
		return 0, ErrNoOffset
	}
	return 0, fmt.Errorf("%w: code %d: %s", ErrResponse, resp.Code, resp.Remark)
}

// UpdateOffset commits a group's offset for a queue (the broker persists offsets every few seconds and at shutdown).
func (c *Client) UpdateOffset(ctx context.Context, group, topic string, queue int32, offset int64) error {
	_, err := c.call(ctx, c.br, remoting.NewRequest(remoting.UpdateConsumerOffset, map[string]string{
		"consumerGroup": group, "topic": topic, "queueId": strconv.Itoa(int(queue)), "commitOffset": strconv.FormatInt(offset, 10)}, nil))
	return err
}

// CreateGroup creates (or updates) a subscription group config so the group is listed by Groups.
func (c *Client) CreateGroup(ctx context.Context, g mqmeta.GroupConfig) error {
	body, err := json.Marshal(g)
	if err != nil {
		return err
	}
	_, err = c.call(ctx, c.br, remoting.NewRequest(remoting.UpdateAndCreateSubscription, nil, body))
	return err
}

// ConsumerIDs lists the client ids of a group's connected consumers.
func (c *Client) ConsumerIDs(ctx context.Context, group string) ([]string, error) {
	resp, err := c.br.Invoke(ctx, remoting.NewRequest(remoting.GetConsumerListByGroup, map[string]string{"consumerGroup": group}, nil))
	if err != nil {
		return nil, err
	}
	if resp.Code != remoting.Success {
		return nil, nil // Java answers SYSTEM_ERROR "no consumer for this group"
	}
	var body struct {
		ConsumerIDList []string `json:"consumerIdList"`
	}
	return body.ConsumerIDList, json.Unmarshal(resp.Body, &body)
}

// PullExpr is Pull with a tag expression ("*", "" or "a || b") the broker filters by; nothing is committed.
func (c *Client) PullExpr(ctx context.Context, group, topic string, queue int32, offset int64, max int, expr string) ([]*message.Message, int64, error) {
	ext := map[string]string{"consumerGroup": group, "topic": topic,
		"queueId": strconv.Itoa(int(queue)), "queueOffset": strconv.FormatInt(offset, 10), "maxMsgNums": strconv.Itoa(max),
		"sysFlag": strconv.Itoa(pullFlagSubscription), "commitOffset": "-1", "suspendTimeoutMillis": "0",
		"subscription": "*", "expressionType": "TAG", "subVersion": "0"}
	// The subscription always travels with the pull, as with Java's pull consumers: Apache's broker refuses a
	// pull without one from a group that has no running consumer ("the consumer's group info not exist").
	if expr != "" {
		ext["subscription"] = expr
	}
	return c.pull(ctx, ext, offset)
}
