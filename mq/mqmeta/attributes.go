package mqmeta

import (
	"fmt"
	"sort"
	"strings"
)

// Topic attributes (RocketMQ 5's TopicAttributes), kept in TopicConfig.Attributes and changed through the
// UPDATE_AND_CREATE_TOPIC request's `attributes` field, e.g. mqadmin's `updateTopic -a +message.type=DELAY`.
const (
	// AttrMessageType is the kind of messages a topic takes: one of MessageTypes. A topic without it is NORMAL.
	// The 5.x proxy refuses sends of another kind; the broker itself (remoting sends) does not check it.
	AttrMessageType = "message.type"
	AttrQueueType   = "queue.type"
	AttrCleanup     = "cleanup.policy"
	AttrReserveTime = "reserve.time"
)

// Message types of a topic (Java's TopicMessageType). MIXED is refused by brokers unless enableMixedMessageType.
const (
	MessageTypeUnspecified = "UNSPECIFIED"
	MessageTypeNormal      = "NORMAL"
	MessageTypeFIFO        = "FIFO"
	MessageTypeDelay       = "DELAY"
	MessageTypeTransaction = "TRANSACTION"
	MessageTypeMixed       = "MIXED"
)

// MessageTypes lists the values AttrMessageType takes, as `tide mq topic create --type` offers them.
var MessageTypes = []string{MessageTypeNormal, MessageTypeFIFO, MessageTypeDelay, MessageTypeTransaction}

// topicAttrs is Java's TopicAttributes.ALL: name -> (allowed values, nil for a number; changeable after creation).
var topicAttrs = map[string]struct {
	values     []string
	changeable bool
}{
	AttrMessageType: {[]string{MessageTypeUnspecified, MessageTypeNormal, MessageTypeFIFO, MessageTypeDelay, MessageTypeTransaction, MessageTypeMixed}, true},
	AttrQueueType:   {[]string{"BatchCQ", "SimpleCQ"}, false},
	AttrCleanup:     {[]string{"DELETE", "COMPACTION"}, false},
	AttrReserveTime: {nil, true},
}

// MessageType is the topic's message type: its AttrMessageType, NORMAL when unset (as Java's
// TopicConfig.getTopicMessageType).
func (t TopicConfig) MessageType() string {
	if v, ok := t.Attributes[AttrMessageType]; ok {
		return v
	}
	return MessageTypeNormal
}

// ParseAttributeChanges reads an attributes modification string, "+key1=value1,+key2=value2,-key3" (Java's
// AttributeParser.parseToMap): keys keep their sign. Errors carry Java's wording.
func ParseAttributeChanges(s string) (map[string]string, error) {
	out := map[string]string{}
	if s == "" {
		return out, nil
	}
	for _, kv := range strings.Split(s, ",") {
		key, value := kv, ""
		if k, v, ok := strings.Cut(kv, "="); ok {
			key, value = k, v
			if strings.Contains(v, "=") { // Java's split keeps only the text up to the next '='
				value = v[:strings.IndexByte(v, '=')]
			}
			if !strings.Contains(key, "+") {
				return nil, fmt.Errorf("add/alter attribute format is wrong: %s", key)
			}
		} else if !strings.Contains(key, "-") {
			return nil, fmt.Errorf("delete attribute format is wrong: %s", key)
		}
		if _, dup := out[key]; dup {
			return nil, fmt.Errorf("key duplication: %s", key)
		}
		out[key] = value
	}
	return out, nil
}

// AlterAttributes applies parsed changes to a topic's current attributes (Java's AttributeUtil
// .alterCurrentAttributes with TopicAttributes.ALL): creating a topic takes only "+key=value"; updating adds,
// changes ("+") or removes ("-") changeable attributes. Unknown keys and values outside an attribute's set are
// errors with Java's wording. current is not modified.
func AlterAttributes(create bool, current, changes map[string]string) (map[string]string, error) {
	out := make(map[string]string, len(current)+len(changes))
	for k, v := range current {
		out[k] = v
	}
	keys := make([]string, 0, len(changes))
	for k := range changes {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	seen := map[string]bool{}
	for _, key := range keys {
		value := changes[key]
		if key == "" {
			return nil, fmt.Errorf("kv string format wrong.")
		}
		real := key[1:]
		if real == "" || strings.ContainsAny(real, "+-") {
			return nil, fmt.Errorf("kv string format wrong.")
		}
		if seen[real] {
			return nil, fmt.Errorf("alter duplication key. key: %s", real)
		}
		seen[real] = true
		add := key[0] == '+'
		switch {
		case create && !add:
			return nil, fmt.Errorf("only add attribute is supported while creating topic. key: %s", real)
		case !create && !add && key[0] != '-':
			return nil, fmt.Errorf("wrong format key: %s", real)
		case !create && !add:
			if _, ok := current[real]; !ok {
				return nil, fmt.Errorf("attempt to delete a nonexistent key: %s", real)
			}
		}
		attr, ok := topicAttrs[real]
		if !ok {
			return nil, fmt.Errorf("unsupported key: %s", real)
		}
		if !create && !attr.changeable {
			return nil, fmt.Errorf("attempt to update an unchangeable attribute. key: %s", real)
		}
		if !add {
			delete(out, real)
			continue
		}
		if attr.values != nil && !contains(attr.values, value) {
			return nil, fmt.Errorf("value is not in set: [%s]", strings.Join(attr.values, ", "))
		}
		out[real] = value
	}
	return out, nil
}

func contains(list []string, v string) bool {
	for _, s := range list {
		if s == v {
			return true
		}
	}
	return false
}
