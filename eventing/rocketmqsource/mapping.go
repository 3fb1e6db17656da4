package rocketmqsource

import (
	"encoding/json"
	"sort"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/apache/rocketmq-client-go/v2/primitive"
	cloudevents "github.com/cloudevents/sdk-go/v2"

	"github.com/tide-run/tide/apis/sources/v1alpha1"
)

// Extension attribute names set on events mapped from plain messages. Values are strings.
const (
	ExtTopic       = "rocketmqtopic"
	ExtBroker      = "rocketmqbroker"
	ExtQueueID     = "rocketmqqueueid"
	ExtQueueOffset = "rocketmqqueueoffset"
	ExtKeys        = "rocketmqkeys"
	ExtTag         = "rocketmqtag"
	ExtReconsume   = "rocketmqreconsume"
	// ExtPropertyPrefix prefixes each user property: rocketmqheader<name lower-cased, alphanumerics only>.
	ExtPropertyPrefix = "rocketmqheader"
)

// systemProperties are RocketMQ's own property keys (Java MessageConst); they are never mapped as user properties.
var systemProperties = map[string]bool{
	"KEYS": true, "TAGS": true, "WAIT": true, "DELAY": true, "RETRY_TOPIC": true, "REAL_TOPIC": true,
	"REAL_QID": true, "TRAN_MSG": true, "PGROUP": true, "MIN_OFFSET": true, "MAX_OFFSET": true, "BUYER_ID": true,
	"ORIGIN_MESSAGE_ID": true, "TRANSFER_FLAG": true, "CORRECTION_FLAG": true, "MQ2_FLAG": true,
	"RECONSUME_TIME": true, "MSG_REGION": true, "TRACE_ON": true, "UNIQ_KEY": true, "MAX_RECONSUME_TIMES": true,
	"CONSUME_START_TIME": true, "TRAN_PREPARED_QUEUE_OFFSET": true, "TRANSACTION_CHECK_TIMES": true,
	"CHECK_IMMUNITY_TIME_IN_SECONDS": true, "SHARDING_KEY": true, "__transactionId__": true,
	"CORRELATION_ID": true, "REPLY_TO_CLIENT": true, "TTL": true, "ARRIVE_TIME": true, "PUSH_REPLY_TIME": true,
	"CLUSTER": true, "MSG_TYPE": true, "INSTANCE_ID": true, "TIMER_DELIVER_MS": true, "TIMER_DELAY_SEC": true,
	"TIMER_DELAY_MS": true, "TIMER_OUT_MS": true, "TIMER_ENQUEUE_MS": true, "TIMER_DEQUEUE_MS": true,
	"TIMER_ROLL_TIMES": true, "TIMER_DEL_UNIQKEY": true, "__STARTDELIVERTIME": true, "bname": true,
	"INNER_MULTI_DISPATCH": true, "INNER_MULTI_QUEUE_OFFSET": true, "TRACE_CONTEXT": true, "POP_CK": true,
	"1ST_POP_TIME": true, "INNER_NUM": true, "INNER_BASE": true,
}

// Mapper turns RocketMQ messages into CloudEvents for one RocketMQSource. It is immutable and safe for concurrent use.
type Mapper struct {
	// Namespace and Name identify the RocketMQSource; they make the event source attribute.
	Namespace, Name string
	// Overrides are ceOverrides extensions, applied last to every event (mapped or passed through).
	Overrides map[string]string
	// RocketMQNamespace, when set, is stripped from topic names ("<namespace>%<topic>" on the wire), so events
	// name the topic as the user wrote it.
	RocketMQNamespace string
}

// Map returns the CloudEvent for msg received from brokerName. A message carrying a CloudEvent under the RocketMQ
// CloudEvents binding passes through unchanged (apart from ceOverrides); any other message is mapped per
// docs/rocketmqsource.md. Map never fails: a message that claims to be a CloudEvent but is not a valid one is
// mapped as a plain message, so it is delivered rather than lost.
func (m *Mapper) Map(msg *primitive.MessageExt, brokerName string) cloudevents.Event {
	props := msg.GetProperties()
	if ev, ok := decodeBinding(props, msg.Body); ok {
		m.override(ev)
		return *ev
	}
	topic := msg.Topic
	if m.RocketMQNamespace != "" {
		topic = strings.TrimPrefix(topic, m.RocketMQNamespace+"%")
	}
	ev := cloudevents.NewEvent(cloudevents.VersionV1)
	ev.SetID(messageID(msg, props))
	ev.SetSource(v1alpha1.EventSource(m.Namespace, m.Name, topic))
	ev.SetType(v1alpha1.EventType)
	tag := props[primitive.PropertyTags]
	if tag != "" {
		ev.SetSubject(tag)
	}
	if msg.BornTimestamp > 0 {
		ev.SetTime(time.UnixMilli(msg.BornTimestamp).UTC())
	}
	if len(msg.Body) > 0 {
		ev.DataEncoded = msg.Body
	}
	if ct := contentTypeProperty(props); ct != "" {
		ev.SetDataContentType(ct)
	} else if len(msg.Body) > 0 && json.Valid(msg.Body) {
		ev.SetDataContentType(cloudevents.ApplicationJSON)
	} else if len(msg.Body) > 0 {
		// Without this, CloudEvents' JSON format would take the bytes for JSON (its default) and fail to encode.
		ev.SetDataContentType("application/octet-stream")
	}
	if len(msg.Body) > 0 && !utf8.Valid(msg.Body) {
		// The JSON event format (delivery.format: json) then carries data_base64, byte for byte.
		ev.DataBase64 = true
	}

	ev.SetExtension(ExtTopic, topic)
	if brokerName != "" {
		ev.SetExtension(ExtBroker, brokerName)
	}
	ev.SetExtension(ExtQueueID, strconv.Itoa(int(queueID(msg))))
	ev.SetExtension(ExtQueueOffset, strconv.FormatInt(msg.QueueOffset, 10))
	if keys := props[primitive.PropertyKeys]; keys != "" {
		ev.SetExtension(ExtKeys, keys)
	}
	if tag != "" {
		ev.SetExtension(ExtTag, tag)
	}
	ev.SetExtension(ExtReconsume, strconv.Itoa(int(msg.ReconsumeTimes)))

	// User properties in sorted key order: when two keys sanitize to the same extension name the first in byte
	// order wins, so the result does not depend on map iteration.
	names := make([]string, 0, len(props))
	for k := range props {
		if !systemProperties[k] {
			names = append(names, k)
		}
	}
	sort.Strings(names)
	set := map[string]bool{}
	for _, k := range names {
		ext := ExtPropertyPrefix + sanitize(k)
		if set[ext] || isContentTypeKey(k) {
			continue
		}
		set[ext] = true
		ev.SetExtension(ext, props[k])
	}
	m.override(&ev)
	return ev
}

func (m *Mapper) override(ev *cloudevents.Event) {
	for k, v := range m.Overrides {
		ev.SetExtension(k, v)
	}
}

// messageID is the message's unique id: the producer-assigned UNIQ_KEY, which survives retries through
// %RETRY% (so redeliveries keep the event id and receivers can deduplicate on source+id), else the broker's id.
func messageID(msg *primitive.MessageExt, props map[string]string) string {
	if id := props[primitive.PropertyUniqueClientMessageIdKeyIndex]; id != "" {
		return id
	}
	if msg.MsgId != "" {
		return msg.MsgId
	}
	return msg.OffsetMsgId
}

func queueID(msg *primitive.MessageExt) int32 {
	if msg.Queue != nil {
		return int32(msg.Queue.QueueId)
	}
	return 0
}

// sanitize lower-cases s and keeps only a-z and 0-9, the characters CloudEvents allows in extension names.
func sanitize(s string) string {
	var b strings.Builder
	b.Grow(len(s))
	for _, c := range strings.ToLower(s) {
		if c >= 'a' && c <= 'z' || c >= '0' && c <= '9' {
			b.WriteRune(c)
		}
	}
	return b.String()
}

// isContentTypeKey reports whether a user property names the body's content type ("content-type",
// "Content-Type", "contentType", "CONTENT_TYPE", ...).
func isContentTypeKey(k string) bool { return sanitize(k) == "contenttype" }

func contentTypeProperty(props map[string]string) string {
	for k, v := range props {
		if isContentTypeKey(k) && v != "" {
			return v
		}
	}
	return ""
}
