package broker

import (
	"encoding/json"
	"net/netip"
	"strconv"
	"testing"
	"time"

	clocktesting "k8s.io/utils/clock/testing"

	"github.com/tide-run/tide/mq/message"
	"github.com/tide-run/tide/mq/mqmeta"
	"github.com/tide-run/tide/mq/remoting"
)

// The handlers' wire contract (the official clients' side runs in cli's and test/interop's tests): Java's header
// names, the not-found codes and remarks, the response header, the body layout, and the trace topic at start.
func TestQueryViewAndConsumeByWho(t *testing.T) {
	fc := clocktesting.NewFakeClock(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
	b := newTestBroker(t, fc)
	if _, ok := b.Topic(mqmeta.TraceTopic); !ok {
		t.Fatal("no trace topic at start")
	}
	var pos []int64
	for i, keys := range []string{"k1", "k2 k1", "k3"} {
		props := message.FormatProperties(map[string]string{"KEYS": keys, "UNIQ_KEY": "U" + strconv.Itoa(i)})
		res, _, err := b.st.Put([]*message.Message{{Topic: "t1", Body: []byte{'a' + byte(i)}, Properties: props,
			BornHost: netip.MustParseAddrPort("127.0.0.1:1")}})
		if err != nil {
			t.Fatal(err)
		}
		pos = append(pos, res[0].Pos)
	}
	query := func(ext map[string]string) *remoting.Command {
		return b.handleQueryMessage(remoting.NewRequest(remoting.QueryMessage, ext, nil))
	}
	resp := query(map[string]string{"topic": "t1", "key": "k1", "maxNum": "32", "beginTimestamp": "0",
		"endTimestamp": strconv.FormatInt(1<<62, 10), mqmeta.UniqueKeyQueryFlag: "false"})
	var got []string
	for body := resp.Body; len(body) > 0; {
		m, n, err := message.Decode(body)
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, string(m.Body))
		body = body[n:]
	}
	if resp.Code != remoting.Success || len(got) != 2 || got[0] != "a" || got[1] != "b" ||
		resp.ExtFields["indexLastUpdatePhyoffset"] != strconv.FormatInt(pos[2], 10) ||
		resp.ExtFields["indexLastUpdateTimestamp"] != strconv.FormatInt(fc.Now().UnixMilli(), 10) {
		t.Fatalf("query k1: code %d %q, bodies %v, ext %v", resp.Code, resp.Remark, got, resp.ExtFields)
	}
	// A unique-key query matches message ids only; a time range before the messages finds nothing.
	if r := query(map[string]string{"topic": "t1", "key": "U2", mqmeta.UniqueKeyQueryFlag: "true", "maxNum": "1"}); r.Code != remoting.Success {
		t.Fatalf("query U2: %d %q", r.Code, r.Remark)
	}
	for _, ext := range []map[string]string{
		{"topic": "t1", "key": "k1", mqmeta.UniqueKeyQueryFlag: "true"},
		{"topic": "t1", "key": "k1", "beginTimestamp": "0", "endTimestamp": "1"},
		{"topic": "t2", "key": "k1"},
	} {
		if r := query(ext); r.Code != remoting.QueryNotFound || r.Remark != "can not find message, maybe time range not correct" {
			t.Fatalf("query %v: %d %q", ext, r.Code, r.Remark)
		}
	}
	if r := query(map[string]string{"key": "k1"}); r.Code != remoting.SystemError {
		t.Fatalf("query without topic: %d", r.Code)
	}
	// VIEW_MESSAGE_BY_ID: a record's position, not one inside it.
	view := func(off int64) *remoting.Command {
		return b.handleViewMessage(remoting.NewRequest(remoting.ViewMessageByID, map[string]string{"offset": strconv.FormatInt(off, 10)}, nil))
	}
	if r := view(pos[1]); r.Code != remoting.Success {
		t.Fatalf("view: %d %q", r.Code, r.Remark)
	} else if m, _, err := message.Decode(r.Body); err != nil || string(m.Body) != "b" {
		t.Fatalf("view: %v %v", m, err)
	}
	for _, off := range []int64{pos[1] + 4, pos[2] + 1000, -1} {
		if r := view(off); r.Code != remoting.SystemError || r.Remark != "can not find message by the offset, "+strconv.FormatInt(off, 10) {
			t.Fatalf("view %d: %d %q", off, r.Code, r.Remark)
		}
	}
	// QUERY_TOPIC_CONSUME_BY_WHO: groups with offsets on the topic.
	b.cfg.setOffset("t1", "g1", 0, 1)
	b.cfg.setOffset("other", "g2", 0, 1)
	r := b.handleTopicConsumeByWho(remoting.NewRequest(queryTopicConsumeByWho, map[string]string{"topic": "t1"}, nil))
	var gl struct {
		GroupList []string `json:"groupList"`
	}
	if err := json.Unmarshal(r.Body, &gl); err != nil || r.Code != remoting.Success || len(gl.GroupList) != 1 || gl.GroupList[0] != "g1" {
		t.Fatalf("consume by who: %d %s %v", r.Code, r.Body, err)
	}
}
