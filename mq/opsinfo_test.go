package mq_test

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/tide-run/tide/mq"
	"github.com/tide-run/tide/mq/remoting"
)

// TestOperationsRequests: the requests Apache's mqadmin makes for clusterList/brokerStatus, getBrokerConfig,
// topicStatus and consumerConnection, over the wire (test/interop runs mqadmin itself against tide and Apache).
func TestOperationsRequests(t *testing.T) {
	srv := start(t, mq.Options{})
	c := dial(t, srv.BrokerAddr())
	create := invoke(t, c, remoting.NewRequest(remoting.UpdateAndCreateTopic, map[string]string{"topic": "ops",
		"readQueueNums": "2", "writeQueueNums": "2", "perm": "6", "topicFilterType": "SINGLE_TAG"}, nil))
	if create.Code != remoting.Success {
		t.Fatalf("create topic: %d %s", create.Code, create.Remark)
	}
	send := invoke(t, c, remoting.NewRequest(remoting.SendMessageV2, map[string]string{"a": "p", "b": "ops", "e": "1",
		"c": "TBW102", "d": "4", "f": "0", "g": "0", "h": "0", "i": "", "j": "0", "k": "false"}, []byte("x")))
	if send.Code != remoting.Success {
		t.Fatalf("send: %d %s", send.Code, send.Remark)
	}

	rt := invoke(t, c, remoting.NewRequest(28, nil, nil))
	var kv struct{ Table map[string]string }
	if err := json.Unmarshal(rt.Body, &kv); rt.Code != remoting.Success || err != nil {
		t.Fatalf("runtime info: %d %s %v", rt.Code, rt.Remark, err)
	}
	if kv.Table["msgPutTotalTodayNow"] != "1" || kv.Table["brokerVersionDesc"] == "" || kv.Table["earliestMessageTimeStamp"] == "-1" {
		t.Errorf("runtime info: %v", kv.Table)
	}

	cfg := invoke(t, c, remoting.NewRequest(26, nil, nil))
	if cfg.Code != remoting.Success || !strings.Contains(string(cfg.Body), "brokerName=broker-a\n") || cfg.ExtFields["version"] == "" {
		t.Errorf("broker config: %d %q %v", cfg.Code, cfg.Body, cfg.ExtFields)
	}

	stats := invoke(t, c, remoting.NewRequest(202, map[string]string{"topic": "ops"}, nil))
	body := string(stats.Body)
	if stats.Code != remoting.Success || strings.Count(body, `"maxOffset":`) != 2 || !strings.Contains(body, `"queueId":`) ||
		!strings.Contains(body, `"maxOffset":1`) {
		t.Errorf("topic stats: %d %s", stats.Code, body)
	}
	if r := invoke(t, c, remoting.NewRequest(202, map[string]string{"topic": "nope"}, nil)); r.Code != remoting.TopicNotExist {
		t.Errorf("topic stats of an unknown topic: %d %s", r.Code, r.Remark)
	}

	if r := invoke(t, c, remoting.NewRequest(203, map[string]string{"consumerGroup": "ops-g"}, nil)); r.Code != 206 {
		t.Errorf("connections of a group nobody consumes in: %d %s, want 206 (CONSUMER_NOT_ONLINE)", r.Code, r.Remark)
	}
	if r := invoke(t, c, remoting.NewRequest(204, map[string]string{"producerGroup": "ops-p"}, nil)); r.Code != remoting.SystemError {
		t.Errorf("connections of a producer group nobody is in: %d %s, want 1 (Apache's 'not exist')", r.Code, r.Remark)
	}
	hb := remoting.NewRequest(remoting.HeartBeat, nil, []byte(`{"clientID":"127.0.0.1@ops","producerDataSet":[{"groupName":"ops-p"}],`+
		`"consumerDataSet":[{"groupName":"ops-g","consumeType":"CONSUME_ACTIVELY","messageModel":"BROADCASTING",`+
		`"consumeFromWhere":"CONSUME_FROM_FIRST_OFFSET","unitMode":false,"subscriptionDataSet":[{"topic":"ops",`+
		`"subString":"a || b","tagsSet":["a","b"],"subVersion":7,"expressionType":"TAG"}]}]}`))
	if r := invoke(t, c, hb); r.Code != remoting.Success {
		t.Fatalf("heartbeat: %d %s", r.Code, r.Remark)
	}
	conns := invoke(t, c, remoting.NewRequest(203, map[string]string{"consumerGroup": "ops-g"}, nil))
	var cc struct {
		ConnectionSet []struct {
			ClientID, ClientAddr, Language string
			Version                        int
		}
		SubscriptionTable map[string]struct {
			SubString string
			TagsSet   []string
			CodeSet   []int32
		}
		ConsumeType, MessageModel, ConsumeFromWhere string
	}
	if err := json.Unmarshal(conns.Body, &cc); conns.Code != remoting.Success || err != nil {
		t.Fatalf("connections: %d %s %v", conns.Code, conns.Remark, err)
	}
	if len(cc.ConnectionSet) != 1 || cc.ConnectionSet[0].ClientID != "127.0.0.1@ops" || cc.ConnectionSet[0].Language != "GO" ||
		cc.ConnectionSet[0].ClientAddr == "" || cc.ConnectionSet[0].Version != int(remoting.Version) {
		t.Errorf("connections: %+v", cc.ConnectionSet)
	}
	if s := cc.SubscriptionTable["ops"]; s.SubString != "a || b" || len(s.TagsSet) != 2 || len(s.CodeSet) != 2 {
		t.Errorf("subscriptions: %+v", cc.SubscriptionTable)
	}
	if cc.ConsumeType != "CONSUME_ACTIVELY" || cc.MessageModel != "BROADCASTING" || cc.ConsumeFromWhere != "CONSUME_FROM_FIRST_OFFSET" {
		t.Errorf("consume type, model, from where: %s %s %s", cc.ConsumeType, cc.MessageModel, cc.ConsumeFromWhere)
	}
	pc := invoke(t, c, remoting.NewRequest(204, map[string]string{"producerGroup": "ops-p"}, nil))
	if pc.Code != remoting.Success || !strings.Contains(string(pc.Body), `"clientId":"127.0.0.1@ops"`) || !strings.Contains(string(pc.Body), `"language":"GO"`) {
		t.Errorf("producer connections: %d %s %s", pc.Code, pc.Remark, pc.Body)
	}
}
