package mqmeta

import (
	"fmt"
	"strings"
)

// Topic permissions (Java PermName).
const (
	PermInherit = 1
	PermWrite   = 2
	PermRead    = 4
	PermRW      = PermRead | PermWrite
)

// System topics and prefixes.
const (
	DefaultTopic  = "TBW102"
	ScheduleTopic = "SCHEDULE_TOPIC_XXXX"
	RetryPrefix   = "%RETRY%"
	DLQPrefix     = "%DLQ%"
	// TimerTopic holds 5.x timer messages (TIMER_DELIVER_MS, TIMER_DELAY_SEC, TIMER_DELAY_MS) until they are due.
	TimerTopic = "rmq_sys_wheel_timer"
	// HalfTopic holds transactions' half messages until they are committed or rolled back; OpHalfTopic records
	// which half messages are done.
	HalfTopic   = "RMQ_SYS_TRANS_HALF_TOPIC"
	OpHalfTopic = "RMQ_SYS_TRANS_OP_HALF_TOPIC"
	// ReplyTopicSuffix names the reply topic of a cluster: "<cluster>_REPLY_TOPIC".
	ReplyTopicSuffix = "_REPLY_TOPIC"
	maxTopicLength   = 127
)

// TopicConfig is one topic's settings, in Java's JSON field names.
type TopicConfig struct {
	TopicName      string `json:"topicName"`
	ReadQueueNums  int    `json:"readQueueNums"`
	WriteQueueNums int    `json:"writeQueueNums"`
	Perm           int    `json:"perm"`
	Order          bool   `json:"order"`
	TopicSysFlag   int    `json:"topicSysFlag"`
	// Attributes are RocketMQ 5's topic attributes, e.g. AttrMessageType.
	Attributes map[string]string `json:"attributes,omitempty"`
}

// GroupConfig is a subscription group's settings (Java SubscriptionGroupConfig, the fields tide uses).
type GroupConfig struct {
	GroupName              string `json:"groupName"`
	ConsumeEnable          bool   `json:"consumeEnable"`
	ConsumeBroadcastEnable bool   `json:"consumeBroadcastEnable"`
	RetryQueueNums         int    `json:"retryQueueNums"`
	RetryMaxTimes          int    `json:"retryMaxTimes"`
	ConsumeMessageOrderly  bool   `json:"consumeMessageOrderly"`
}

// QueueStat is one queue's offsets for a group (GET_CONSUME_STATS body, tide's JSON form: a list instead of
// Java's map keyed by MessageQueue objects, which is not valid JSON).
type QueueStat struct {
	Topic          string `json:"topic"`
	BrokerName     string `json:"brokerName"`
	QueueID        int32  `json:"queueId"`
	BrokerOffset   int64  `json:"brokerOffset"`
	ConsumerOffset int64  `json:"consumerOffset"`
	Lag            int64  `json:"lag"`
}

// ValidateTopic checks a topic name the way Java's TopicValidator does (characters and length).
func ValidateTopic(name string) error {
	if name == "" {
		return fmt.Errorf("topic: empty")
	}
	if len(name) > maxTopicLength {
		return fmt.Errorf("topic %q: longer than %d characters", name, maxTopicLength)
	}
	for _, c := range name {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '%' || c == '|' || c == '-' || c == '_') {
			return fmt.Errorf("topic %q: character %q not allowed (want letters, digits, %%|-_)", name, c)
		}
	}
	return nil
}

// IsSystemTopic reports RocketMQ's internal topics, which operators' listings and dashboards hide by default: the
// auto-create template (TBW102), delay levels, timer messages, transactions, trace and other RMQ_SYS_/rmq_sys_
// topics, retry and dead-letter topics of groups, per-cluster reply topics, and the names Java's tools reserve.
func IsSystemTopic(name string) bool {
	switch name {
	case DefaultTopic, ScheduleTopic, TimerTopic, HalfTopic, OpHalfTopic,
		"RMQ_SYS_TRACE_TOPIC", "OFFSET_MOVED_EVENT", "SELF_TEST_TOPIC", "BenchmarkTest":
		return true
	}
	return strings.HasPrefix(name, RetryPrefix) || strings.HasPrefix(name, DLQPrefix) ||
		strings.HasPrefix(name, "RMQ_SYS_") || strings.HasPrefix(name, "rmq_sys_") ||
		strings.HasSuffix(name, ReplyTopicSuffix)
}
