package broker

import (
	"maps"

	"github.com/tide-run/tide/mq/mqmeta"
	"github.com/tide-run/tide/mq/remoting"
)

func topicEqual(a, b mqmeta.TopicConfig) bool {
	return a.TopicName == b.TopicName && a.ReadQueueNums == b.ReadQueueNums && a.WriteQueueNums == b.WriteQueueNums &&
		a.Perm == b.Perm && a.Order == b.Order && a.TopicSysFlag == b.TopicSysFlag && maps.Equal(a.Attributes, b.Attributes)
}

// topicAttributes computes the attributes a topic create/update request leaves on topic name, as Java's
// AdminBrokerProcessor and TopicConfigManager do: MIXED refused (enableMixedMessageType is off by default) with
// INVALID_PARAMETER, reserve.time refused without a tiered store, everything else through
// mqmeta.AlterAttributes (an error there is a SYSTEM_ERROR with Java's message). No changes keep the current ones.
func (b *Broker) topicAttributes(req *remoting.Command, name, mod string) (map[string]string, *remoting.Command) {
	changes, err := mqmeta.ParseAttributeChanges(mod)
	if err != nil {
		return nil, remoting.Errorf(req, remoting.SystemError, "%v", err)
	}
	if changes["+"+mqmeta.AttrMessageType] == mqmeta.MessageTypeMixed {
		return nil, remoting.Errorf(req, remoting.InvalidParameter, "MIXED message type is not supported.")
	}
	cur, exists := b.cfg.topic(name)
	attrs, err := mqmeta.AlterAttributes(!exists, cur.Attributes, changes)
	if err != nil {
		return nil, remoting.Errorf(req, remoting.SystemError, "%v", err)
	}
	for k := range changes {
		if len(k) > 0 && k[1:] == mqmeta.AttrReserveTime {
			return nil, remoting.Errorf(req, remoting.SystemError, "Update topic reserveTime not supported")
		}
	}
	if len(attrs) == 0 {
		attrs = nil
	}
	return attrs, nil
}

// handleGetTopicConfig answers GET_TOPIC_CONFIG (351) with the topic's config (Java's TopicConfigAndQueueMapping
// body: the TopicConfig fields, attributes included), or TOPIC_NOT_EXIST.
func (b *Broker) handleGetTopicConfig(req *remoting.Command) *remoting.Command {
	f := req.ReadFields()
	name := f.String("topic")
	if f.Err != nil {
		return remoting.Errorf(req, remoting.SystemError, "get topic config: %v", f.Err)
	}
	t, ok := b.cfg.topic(name)
	if !ok {
		return remoting.Errorf(req, remoting.TopicNotExist, "No topic in this broker. topic: %s", name)
	}
	if t.Attributes == nil {
		t.Attributes = map[string]string{}
	}
	return jsonResponse(req, t)
}
