package admin

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"

	"github.com/tide-run/tide/mq/mqmeta"
	"github.com/tide-run/tide/mq/remoting"
)

// CreateTopicWithAttributes is CreateTopic with RocketMQ 5 topic attributes, in mqadmin's `-a` form
// ("+message.type=DELAY"; changes to an existing topic may also remove one with "-key"). Brokers refuse unknown
// attributes and values; Apache's refuses MIXED message types.
func (c *Client) CreateTopicWithAttributes(ctx context.Context, topic string, queues int, attributes string) error {
	_, err := c.call(ctx, c.br, remoting.NewRequest(remoting.UpdateAndCreateTopic, map[string]string{
		"topic": topic, "defaultTopic": mqmeta.DefaultTopic, "readQueueNums": strconv.Itoa(queues),
		"writeQueueNums": strconv.Itoa(queues), "perm": "6", "topicFilterType": "SINGLE_TAG", "topicSysFlag": "0", "order": "false",
		"attributes": attributes}, nil))
	return err
}

// TopicConfig asks the broker for one topic's config, attributes included (GET_TOPIC_CONFIG, 351).
func (c *Client) TopicConfig(ctx context.Context, topic string) (mqmeta.TopicConfig, error) {
	resp, err := c.call(ctx, c.br, remoting.NewRequest(remoting.GetTopicConfig, map[string]string{"topic": topic}, nil))
	if err != nil {
		return mqmeta.TopicConfig{}, err
	}
	var t mqmeta.TopicConfig
	if err := json.Unmarshal(QuoteNumericKeys(resp.Body), &t); err != nil { // Apache: fastjson
		return mqmeta.TopicConfig{}, fmt.Errorf("topic config of %s: %w", topic, err)
	}
	return t, nil
}
