package mqmeta

import (
	"fmt"
	"sort"
	"strings"
)

// AttrMessageType is the topic attribute naming which kind of message a topic accepts (RocketMQ 5's
// TopicAttributes "message.type"; mqadmin sets it with `updateTopic -a +message.type=FIFO`). Only the 5.x (gRPC)
// endpoint checks it on send, as Apache's proxy does; remoting sends are not checked, as on Apache's broker.
const AttrMessageType = "message.type"

// Topic message types (Java TopicMessageType). A topic without the attribute is NORMAL.
const (
	MessageTypeUnspecified = "UNSPECIFIED"
	MessageTypeNormal      = "NORMAL"
	MessageTypeFIFO        = "FIFO"
	MessageTypeDelay       = "DELAY"
	MessageTypeTransaction = "TRANSACTION"
	MessageTypeMixed       = "MIXED"
)

// MessageTypes lists the accepted values of AttrMessageType.
var MessageTypes = []string{MessageTypeUnspecified, MessageTypeNormal, MessageTypeFIFO, MessageTypeDelay,
	MessageTypeTransaction, MessageTypeMixed}

// ParseMessageType checks a message.type value (case-insensitive) and returns its canonical spelling.
func ParseMessageType(s string) (string, error) {
	u := strings.ToUpper(strings.TrimSpace(s))
	for _, t := range MessageTypes {
		if t == u {
			return t, nil
		}
	}
	return "", fmt.Errorf("message type %q: want one of %s", s, strings.Join(MessageTypes, ", "))
}

// MessageType is the topic's message.type attribute, NORMAL when unset (as Java's TopicConfig answers).
func (t TopicConfig) MessageType() string {
	if v, ok := t.Attributes[AttrMessageType]; ok && v != "" {
		return v
	}
	return MessageTypeNormal
}

// ApplyAttributes merges an attribute update in mqadmin's syntax into attrs and returns the result:
// comma-separated "+key=value" (set) and "-key" (remove) items. message.type values are checked.
func ApplyAttributes(attrs map[string]string, update string) (map[string]string, error) {
	out := map[string]string{}
	for k, v := range attrs {
		out[k] = v
	}
	for _, item := range strings.Split(update, ",") {
		item = strings.TrimSpace(item)
		switch {
		case item == "":
		case strings.HasPrefix(item, "+"):
			k, v, ok := strings.Cut(item[1:], "=")
			if !ok || k == "" {
				return nil, fmt.Errorf("attribute %q: want +key=value", item)
			}
			if k == AttrMessageType {
				t, err := ParseMessageType(v)
				if err != nil {
					return nil, err
				}
				v = t
			}
			out[k] = v
		case strings.HasPrefix(item, "-"):
			delete(out, item[1:])
		default:
			return nil, fmt.Errorf("attribute %q: want +key=value or -key", item)
		}
	}
	if len(out) == 0 {
		return nil, nil
	}
	return out, nil
}

// FormatAttributes writes attrs in mqadmin's update syntax ("+k=v,..."), sorted, for a create request.
func FormatAttributes(attrs map[string]string) string {
	keys := make([]string, 0, len(attrs))
	for k := range attrs {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var b strings.Builder
	for i, k := range keys {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString("+" + k + "=" + attrs[k])
	}
	return b.String()
}

// RetryTopic is a consumer group's retry topic; DLQTopic its dead-letter topic. Both protocols use these names:
// a 4.x consumer's send-back and a 5.x consumer's lapsed receive end up in the same places.
func RetryTopic(group string) string { return RetryPrefix + group }

// DLQTopic is a consumer group's dead-letter topic.
func DLQTopic(group string) string { return DLQPrefix + group }

// IsRetryTopic reports %RETRY% topics; IsDLQTopic %DLQ% topics.
func IsRetryTopic(topic string) bool { return strings.HasPrefix(topic, RetryPrefix) }

// IsDLQTopic reports %DLQ% topics.
func IsDLQTopic(topic string) bool { return strings.HasPrefix(topic, DLQPrefix) }

// DefaultRetryMaxTimes is a group's retryMaxTimes unless configured (Java's SubscriptionGroupConfig): a 4.x
// consumer's message is reconsumed that many times, a 5.x consumer's delivered that many plus one.
const DefaultRetryMaxTimes = 16
