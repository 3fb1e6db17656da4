package broker

import (
	"encoding/json"
	"strings"
	"testing"

	clocktesting "k8s.io/utils/clock/testing"

	"github.com/tide-run/tide/mq/mqmeta"
	"github.com/tide-run/tide/mq/remoting"
)

// TestTopicMessageTypeAttribute: UPDATE_AND_CREATE_TOPIC's attributes as Apache's broker takes them (MIXED refused
// with INVALID_PARAMETER, bad ones with SYSTEM_ERROR and Java's text), kept across a restart, listed by
// GET_ALL_TOPIC_CONFIG. (Sends of another kind over remoting are not refused, as on Apache: test/interop.)
func TestTopicMessageTypeAttribute(t *testing.T) {
	dir := t.TempDir()
	fc := clocktesting.NewFakeClock(timerStart)
	b, closeB := openBroker(t, dir, fc)
	create := func(attrs string) *remoting.Command {
		return b.handleCreateTopic(remoting.NewRequest(remoting.UpdateAndCreateTopic, map[string]string{
			"topic": "orders", "readQueueNums": "2", "writeQueueNums": "2", "perm": "6", "attributes": attrs}, nil))
	}
	if r := create("+message.type=MIXED"); r.Code != remoting.InvalidParameter || r.Remark != "MIXED message type is not supported." {
		t.Fatalf("MIXED: %d %q", r.Code, r.Remark)
	}
	if r := create("+message.type=LATER"); r.Code != remoting.SystemError || !strings.Contains(r.Remark, "value is not in set") {
		t.Fatalf("bad value: %d %q", r.Code, r.Remark)
	}
	if _, ok := b.Topic("orders"); ok {
		t.Fatal("a refused create created the topic")
	}
	if r := create("+message.type=FIFO"); r.Code != remoting.Success {
		t.Fatalf("create: %d %q", r.Code, r.Remark)
	}
	if r := create(""); r.Code != remoting.Success {
		t.Fatalf("update without attributes: %d %q", r.Code, r.Remark)
	}
	closeB()
	b, closeB = openBroker(t, dir, fc)
	defer closeB()
	if tc, _ := b.Topic("orders"); tc.MessageType() != mqmeta.MessageTypeFIFO {
		t.Fatalf("after a restart: %+v", tc)
	}
	var all struct {
		TopicConfigTable map[string]mqmeta.TopicConfig `json:"topicConfigTable"`
	}
	if err := json.Unmarshal(b.handleAllTopics(remoting.NewRequest(remoting.GetAllTopicConfig, nil, nil)).Body, &all); err != nil ||
		all.TopicConfigTable["orders"].Attributes[mqmeta.AttrMessageType] != "FIFO" {
		t.Fatalf("GET_ALL_TOPIC_CONFIG: %+v %v", all.TopicConfigTable["orders"], err)
	}
}
