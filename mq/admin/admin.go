package admin

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"strconv"
	"sync/atomic"

	"github.com/tide-run/tide/mq/message"
	"github.com/tide-run/tide/mq/mqmeta"
	"github.com/tide-run/tide/mq/remoting"
)

// ErrResponse wraps a broker's error answer.
var ErrResponse = errors.New("admin: broker answered with an error")

// Client is connected to one name server and the (single) broker it lists.
type Client struct {
	ns, br     *remoting.Client
	brokerAddr string
	brokerName string
	// counter numbers generated message ids and spreads sends over queues.
	counter atomic.Uint64
	// queueSeed is a random start for Send's round robin over queues.
	queueSeed uint64
}

// Dial connects to the name server at nameServerAddr and to the broker it reports.
func Dial(ctx context.Context, nameServerAddr string) (*Client, error) {
	ns, err := dial(ctx, nameServerAddr)
	if err != nil {
		return nil, err
	}
	c := &Client{ns: ns, queueSeed: rand.Uint64()}
	resp, err := c.call(ctx, ns, remoting.NewRequest(remoting.GetBrokerClusterInfo, nil, nil))
	if err != nil {
		ns.Close()
		return nil, err
	}
	var info struct {
		BrokerAddrTable map[string]struct {
			BrokerName  string            `json:"brokerName"`
			BrokerAddrs map[string]string `json:"brokerAddrs"`
		} `json:"brokerAddrTable"`
	}
	// Apache's name server writes brokerAddrs with fastjson's bare numeric keys ({0:"host:port"}).
	if err := json.Unmarshal(QuoteNumericKeys(resp.Body), &info); err != nil {
		ns.Close()
		return nil, fmt.Errorf("admin: cluster info: %w", err)
	}
	for _, b := range info.BrokerAddrTable {
		c.brokerAddr, c.brokerName = b.BrokerAddrs["0"], b.BrokerName
		break
	}
	if c.brokerAddr == "" {
		ns.Close()
		return nil, fmt.Errorf("admin: name server %s lists no broker", nameServerAddr)
	}
	if c.br, err = dial(ctx, c.brokerAddr); err != nil {
		ns.Close()
		return nil, err
	}
	return c, nil
}

// BrokerAddr is the broker this client talks to.
func (c *Client) BrokerAddr() string { return c.brokerAddr }

// Close closes both connections.
func (c *Client) Close() error {
	c.ns.Close()
	return c.br.Close()
}

func (c *Client) call(ctx context.Context, to *remoting.Client, req *remoting.Command) (*remoting.Command, error) {
	resp, err := to.Invoke(ctx, req)
	if err != nil {
		return nil, err
	}
	if resp.Code != remoting.Success {
		return resp, fmt.Errorf("%w: code %d: %s", ErrResponse, resp.Code, resp.Remark)
	}
	return resp, nil
}

// TopicList lists topic names from the name server.
func (c *Client) TopicList(ctx context.Context) ([]string, error) {
	resp, err := c.call(ctx, c.ns, remoting.NewRequest(remoting.GetAllTopicListFromNameSrv, nil, nil))
	if err != nil {
		return nil, err
	}
	var body struct {
		TopicList []string `json:"topicList"`
	}
	return body.TopicList, json.Unmarshal(resp.Body, &body)
}

// Topics returns the broker's topic configs.
func (c *Client) Topics(ctx context.Context) (map[string]mqmeta.TopicConfig, error) {
	resp, err := c.call(ctx, c.br, remoting.NewRequest(remoting.GetAllTopicConfig, nil, nil))
	if err != nil {
		return nil, err
	}
	var body struct {
		TopicConfigTable map[string]mqmeta.TopicConfig `json:"topicConfigTable"`
	}
	return body.TopicConfigTable, json.Unmarshal(resp.Body, &body)
}

// CreateTopic creates (or updates) a topic with the given read/write queue count.
func (c *Client) CreateTopic(ctx context.Context, topic string, queues int) error {
	_, err := c.call(ctx, c.br, remoting.NewRequest(remoting.UpdateAndCreateTopic, map[string]string{
		"topic": topic, "defaultTopic": mqmeta.DefaultTopic, "readQueueNums": strconv.Itoa(queues),
		"writeQueueNums": strconv.Itoa(queues), "perm": "6", "topicFilterType": "SINGLE_TAG", "topicSysFlag": "0", "order": "false"}, nil))
	return err
}

// CreateTopicWithAttributes creates or updates a topic and merges attributes into its RocketMQ 5 attributes
// (mqmeta.AttrMessageType...), as mqadmin's updateTopic -a does; nil leaves them as they are.
func (c *Client) CreateTopicWithAttributes(ctx context.Context, topic string, queues int, attrs map[string]string) error {
	fields := map[string]string{
		"topic": topic, "defaultTopic": mqmeta.DefaultTopic, "readQueueNums": strconv.Itoa(queues),
		"writeQueueNums": strconv.Itoa(queues), "perm": "6", "topicFilterType": "SINGLE_TAG", "topicSysFlag": "0", "order": "false"}
	if len(attrs) > 0 {
		fields["attributes"] = mqmeta.FormatAttributes(attrs)
	}
	_, err := c.call(ctx, c.br, remoting.NewRequest(remoting.UpdateAndCreateTopic, fields, nil))
	return err
}

// DeleteTopic deletes a topic in the broker and the name server.
func (c *Client) DeleteTopic(ctx context.Context, topic string) error {
	if _, err := c.call(ctx, c.br, remoting.NewRequest(remoting.DeleteTopicInBroker, map[string]string{"topic": topic}, nil)); err != nil {
		return err
	}
	_, err := c.call(ctx, c.ns, remoting.NewRequest(remoting.DeleteTopicInNameSrv, map[string]string{"topic": topic}, nil))
	return err
}

// Groups returns the subscription group configs.
func (c *Client) Groups(ctx context.Context) (map[string]mqmeta.GroupConfig, error) {
	resp, err := c.call(ctx, c.br, remoting.NewRequest(remoting.GetAllSubscriptionGroupConfig, nil, nil))
	if err != nil {
		return nil, err
	}
	var body struct {
		SubscriptionGroupTable map[string]mqmeta.GroupConfig `json:"subscriptionGroupTable"`
	}
	return body.SubscriptionGroupTable, json.Unmarshal(resp.Body, &body)
}

// ConsumeStats returns a group's offsets and lag per queue (topic "" for all its topics), from tide's broker or
// Apache's (whose body is fastjson with message queues as map keys).
func (c *Client) ConsumeStats(ctx context.Context, group, topic string) ([]mqmeta.QueueStat, error) {
	ext := map[string]string{"consumerGroup": group}
	if topic != "" {
		ext["topic"] = topic
	}
	resp, err := c.call(ctx, c.br, remoting.NewRequest(remoting.GetConsumeStats, ext, nil))
	if err != nil {
		return nil, err
	}
	return parseQueueTable(resp.Body)
}

// Reset targets for ResetOffset.
const (
	ResetToFirst int64 = 0
	ResetToLast  int64 = -1
)

// ResetOffset moves a group's offsets on topic to the first message stored at or after ts (ms since the epoch),
// or to ResetToFirst / ResetToLast. Running consumers of the group are told to switch (they pause about 10 s).
func (c *Client) ResetOffset(ctx context.Context, group, topic string, ts int64) ([]mqmeta.QueueStat, error) {
	resp, err := c.call(ctx, c.br, remoting.NewRequest(remoting.InvokeBrokerToResetOffset, map[string]string{
		"topic": topic, "group": group, "timestamp": strconv.FormatInt(ts, 10), "isForce": "true"}, nil))
	if err != nil {
		return nil, err
	}
	out, err := parseQueueTable(resp.Body)
	if err != nil {
		return nil, err
	}
	// Apache's answer has only the new offsets: fill in each queue's end so callers can show the lag.
	for i := range out {
		if out[i].BrokerOffset == 0 {
			if m, err := c.MaxOffset(ctx, out[i].Topic, out[i].QueueID); err == nil {
				out[i].BrokerOffset = m
				out[i].Lag = max(0, m-out[i].ConsumerOffset)
			}
		}
	}
	return out, nil
}

// MaxOffset returns a queue's next offset.
func (c *Client) MaxOffset(ctx context.Context, topic string, queue int32) (int64, error) {
	resp, err := c.call(ctx, c.br, remoting.NewRequest(remoting.GetMaxOffset, map[string]string{"topic": topic, "queueId": strconv.Itoa(int(queue))}, nil))
	if err != nil {
		return 0, err
	}
	return strconv.ParseInt(resp.ExtFields["offset"], 10, 64)
}

// Pull reads up to max messages of a queue from offset without committing anything (group only names the reader
// for tag filtering). It returns the messages and the next offset; no messages and next == offset means the end.
func (c *Client) Pull(ctx context.Context, group, topic string, queue int32, offset int64, max int) ([]*message.Message, int64, error) {
	return c.PullExpr(ctx, group, topic, queue, offset, max, "")
}

func (c *Client) pull(ctx context.Context, ext map[string]string, offset int64) ([]*message.Message, int64, error) {
	resp, err := c.br.Invoke(ctx, remoting.NewRequest(remoting.PullMessage, ext, nil))
	if err != nil {
		return nil, offset, err
	}
	next, _ := strconv.ParseInt(resp.ExtFields["nextBeginOffset"], 10, 64)
	switch resp.Code {
	case remoting.Success:
	case remoting.PullNotFound, remoting.PullRetryImmediately, remoting.PullOffsetMoved:
		return nil, next, nil
	default:
		return nil, offset, fmt.Errorf("%w: code %d: %s", ErrResponse, resp.Code, resp.Remark)
	}
	var msgs []*message.Message
	for b := resp.Body; len(b) > 0; {
		m, n, err := message.Decode(b)
		if err != nil {
			return nil, offset, fmt.Errorf("admin: pulled message: %w", err)
		}
		msgs = append(msgs, m)
		b = b[n:]
	}
	return msgs, next, nil
}

// DeadLetters lists the messages in %DLQ%<group> (up to max).
func (c *Client) DeadLetters(ctx context.Context, group string, max int) ([]*message.Message, error) {
	topic := mqmeta.DLQPrefix + group
	var out []*message.Message
	for off := int64(0); len(out) < max; {
		msgs, next, err := c.Pull(ctx, "tide-admin", topic, 0, off, min(32, max-len(out)))
		if err != nil {
			if errors.Is(err, ErrResponse) && len(out) == 0 {
				return nil, nil // no such topic yet: no dead letters
			}
			return out, err
		}
		out = append(out, msgs...)
		if len(msgs) == 0 || next == off {
			break
		}
		off = next
	}
	return out, nil
}
