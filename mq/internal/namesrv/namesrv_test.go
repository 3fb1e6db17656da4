package namesrv

import (
	"encoding/json"
	"testing"

	"github.com/tide-run/tide/mq/remoting"
)

type fakeBroker struct{ topics map[string]Route }

func (fakeBroker) BrokerName() string  { return "b1" }
func (fakeBroker) ClusterName() string { return "c1" }
func (fakeBroker) Addr() string        { return "10.0.0.1:10911" }
func (f fakeBroker) TopicRoute(t string) (Route, bool) {
	r, ok := f.topics[t]
	return r, ok
}
func (f fakeBroker) TopicNames() []string {
	var n []string
	for k := range f.topics {
		n = append(n, k)
	}
	return n
}

func TestRoutesAndLists(t *testing.T) {
	// A fake broker is enough here: the name server only reads its topic table; the real one is tested over the
	// wire with the official client in package mq.
	s := New(nil)
	s.Register(fakeBroker{topics: map[string]Route{"a": {4, 4, 6}, "b": {1, 2, 2}}})
	resp := s.Handle(nil, remoting.NewRequest(remoting.GetRouteInfoByTopic, map[string]string{"topic": "a"}, nil))
	want := `{"orderTopicConf":"","queueDatas":[{"brokerName":"b1","readQueueNums":4,"writeQueueNums":4,"perm":6,"topicSysFlag":0}],"brokerDatas":[{"cluster":"c1","brokerName":"b1","brokerAddrs":{"0":"10.0.0.1:10911"}}],"filterServerTable":{}}`
	if resp.Code != remoting.Success || string(resp.Body) != want {
		t.Fatalf("%d %s", resp.Code, resp.Body)
	}
	if r := s.Handle(nil, remoting.NewRequest(remoting.GetRouteInfoByTopic, map[string]string{"topic": "zz"}, nil)); r.Code != remoting.TopicNotExist {
		t.Fatal(r.Code)
	}
	if r := s.Handle(nil, remoting.NewRequest(remoting.GetRouteInfoByTopic, nil, nil)); r.Code != remoting.SystemError {
		t.Fatal("missing topic accepted")
	}
	r := s.Handle(nil, remoting.NewRequest(remoting.GetAllTopicListFromNameSrv, nil, nil))
	var list struct{ TopicList []string }
	if err := json.Unmarshal(r.Body, &list); err != nil || len(list.TopicList) != 2 || list.TopicList[0] != "a" {
		t.Fatalf("%s %v", r.Body, err)
	}
	r = s.Handle(nil, remoting.NewRequest(remoting.GetBrokerClusterInfo, nil, nil))
	var ci map[string]any
	if err := json.Unmarshal(r.Body, &ci); err != nil {
		t.Fatalf("cluster info not JSON: %s", r.Body)
	}
	if r := s.Handle(nil, remoting.NewRequest(4242, nil, nil)); r.Code != remoting.RequestCodeNotSupported {
		t.Fatal(r.Code)
	}
}
