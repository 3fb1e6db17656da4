package rocketmqsource

import (
	"bytes"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"testing"

	"github.com/apache/rocketmq-client-go/v2/primitive"
)

var update = flag.Bool("update", false, "rewrite golden files")

// orderBody is the food-delivery demo's order message from the seed.
const orderBody = `{"orderId":"123214342","orderStatus":"completed","userPhoneNo":"152122131323","prodId":"2141412","prodName":"test","chargeMoney":"30.0","chargeTime":"1584932320","finishTime":"1584932320"}`

func message(topic, body string, queueID int, offset int64, props map[string]string) *primitive.MessageExt {
	m := &primitive.MessageExt{
		Message:       primitive.Message{Topic: topic, Body: []byte(body), Queue: &primitive.MessageQueue{Topic: topic, BrokerName: "broker-a", QueueId: queueID}},
		MsgId:         "7F00000100002A9F0000000000001234",
		OffsetMsgId:   "7F00000100002A9F0000000000001234",
		QueueOffset:   offset,
		BornTimestamp: 1584932320123,
	}
	m.WithProperties(props)
	return m
}

func goldenCases() map[string]*primitive.MessageExt {
	retried := message("orders", "plain text body", 3, 77, map[string]string{
		"UNIQ_KEY": "AC11000100002A9F0000000000000003", "TAGS": "refund", "KEYS": "order-9",
		"content-type": "text/plain", "RETRY_TOPIC": "orders", "region": "eu-west", "Region": "shadowed",
		"x-Trace_ID": "abc", "CONSUME_START_TIME": "1584932320999", "PGROUP": "producers",
	})
	retried.ReconsumeTimes = 2
	return map[string]*primitive.MessageExt{
		"plain":  message("orders", orderBody, 0, 0, map[string]string{"UNIQ_KEY": "AC11000100002A9F0000000000000000"}),
		"tagged": message("orders", orderBody, 1, 5, map[string]string{"UNIQ_KEY": "AC11000100002A9F0000000000000001", "TAGS": "completed"}),
		"keyed": message("orders", orderBody, 2, 9, map[string]string{
			"UNIQ_KEY": "AC11000100002A9F0000000000000002", "TAGS": "completed", "KEYS": "123214342 152122131323"}),
		"property-rich": retried,
		"binary-bytes":  message("blobs", "\x00\x01\x02binary", 0, 1, nil),
		"ce-binary": message("events", `{"hello":"world"}`, 0, 2, map[string]string{
			"UNIQ_KEY": "AC11000100002A9F0000000000000004", "CE_specversion": "1.0", "CE_id": "evt-1",
			"CE_source": "/shop/checkout", "CE_type": "com.example.order.completed", "CE_time": "2026-01-02T03:04:05Z",
			"CE_subject": "order-1", "CE_datacontenttype": "application/json", "CE_traceparent": "00-abc-def-01"}),
		"ce-structured": message("events",
			`{"specversion":"1.0","id":"evt-2","source":"/shop","type":"com.example.order.created","datacontenttype":"application/json","data":{"n":1},"myext":"v"}`,
			0, 3, map[string]string{"CE_contenttype": "application/cloudevents+json; charset=UTF-8"}),
		"ce-invalid-falls-back": message("events", `{"specversion":"1.0"}`, 0, 4, map[string]string{
			"UNIQ_KEY": "AC11000100002A9F0000000000000005", "content-type": "application/cloudevents+json"}),
	}
}

func TestGoldenMapping(t *testing.T) {
	m := &Mapper{Namespace: "shop", Name: "orders-source", Overrides: map[string]string{"team": "checkout"}}
	for name, msg := range goldenCases() {
		t.Run(name, func(t *testing.T) {
			ev := m.Map(msg, "broker-a")
			if err := ev.Validate(); err != nil {
				t.Fatalf("invalid event: %v", err)
			}
			got, err := json.MarshalIndent(ev, "", "  ")
			if err != nil {
				t.Fatal(err)
			}
			got = append(got, '\n')
			path := filepath.Join("testdata", "golden", name+".json")
			if *update {
				if err := os.WriteFile(path, got, 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(path)
			if err != nil {
				t.Fatalf("%v (run go test -run TestGoldenMapping -update to create)", err)
			}
			if !bytes.Equal(normalize(t, got), normalize(t, want)) {
				t.Errorf("mapping of %s changed:\n got %s\nwant %s", name, got, want)
			}
		})
	}
}

// normalize re-encodes JSON so key order and whitespace do not matter.
func normalize(t *testing.T, b []byte) []byte {
	var v any
	if err := json.Unmarshal(b, &v); err != nil {
		t.Fatalf("%v in %s", err, b)
	}
	out, _ := json.Marshal(v)
	return out
}

func TestMappingRules(t *testing.T) {
	m := &Mapper{Namespace: "ns", Name: "src"}
	ev := m.Map(goldenCases()["property-rich"], "broker-a")
	if ev.ID() != "AC11000100002A9F0000000000000003" || ev.Source() != "/apis/v1/namespaces/ns/rocketmqsources/src#orders" ||
		ev.Type() != "dev.knative.rocketmq.event" || ev.Subject() != "refund" || ev.DataContentType() != "text/plain" {
		t.Errorf("attributes %v", ev.Context)
	}
	ext := ev.Extensions()
	for k, want := range map[string]string{
		"rocketmqtopic": "orders", "rocketmqbroker": "broker-a", "rocketmqqueueid": "3", "rocketmqqueueoffset": "77",
		"rocketmqkeys": "order-9", "rocketmqtag": "refund", "rocketmqreconsume": "2",
		"rocketmqheaderregion": "shadowed", "rocketmqheaderxtraceid": "abc",
	} {
		if ext[k] != want {
			t.Errorf("extension %s = %v, want %q", k, ext[k], want)
		}
	}
	for _, k := range []string{"rocketmqheaderpgroup", "rocketmqheaderuniqkey", "rocketmqheadercontenttype", "rocketmqheaderretrytopic"} {
		if _, ok := ext[k]; ok {
			t.Errorf("system property mapped as %s", k)
		}
	}
	// A RocketMQ namespace prefix does not leak into the event.
	nsm := &Mapper{Namespace: "ns", Name: "src", RocketMQNamespace: "prod"}
	if ev := nsm.Map(message("prod%orders", "x", 0, 0, nil), "b"); ev.Source() != "/apis/v1/namespaces/ns/rocketmqsources/src#orders" || ev.Extensions()[ExtTopic] != "orders" {
		t.Errorf("namespaced topic: %s %v", ev.Source(), ev.Extensions()[ExtTopic])
	}
	// ceOverrides apply last, over mapped extensions too; passed-through events keep their own attributes.
	m.Overrides = map[string]string{"rocketmqtag": "overridden"}
	if got := m.Map(goldenCases()["tagged"], "b").Extensions()["rocketmqtag"]; got != "overridden" {
		t.Errorf("override: %v", got)
	}
	pass := m.Map(goldenCases()["ce-binary"], "b")
	if pass.ID() != "evt-1" || pass.Type() != "com.example.order.completed" || pass.Extensions()["traceparent"] != "00-abc-def-01" {
		t.Errorf("pass-through changed: %v", pass)
	}
	if _, ok := pass.Extensions()["rocketmqtopic"]; ok {
		t.Error("pass-through event got mapping extensions")
	}
}

// FuzzMap feeds arbitrary property sets and bodies (network bytes from the broker) to the mapper: it must not
// panic and must always produce a valid event.
func FuzzMap(f *testing.F) {
	f.Add("CE_specversion", "1.0", "CE_id", "x", []byte(`{}`))
	f.Add("CE_contenttype", "application/cloudevents+json", "k", "v", []byte(`{"specversion":"1.0","id":"1","source":"/s","type":"t"}`))
	f.Add("TAGS", "a", "KEYS", "b c", []byte("body"))
	f.Add("CE_time", "not a time", "CE_specversion", "0.3", []byte{0xff})
	m := &Mapper{Namespace: "ns", Name: "n"}
	f.Fuzz(func(t *testing.T, k1, v1, k2, v2 string, body []byte) {
		msg := message("t", string(body), 0, 0, map[string]string{k1: v1, k2: v2})
		ev := m.Map(msg, "b")
		if err := ev.Validate(); err != nil {
			t.Fatalf("invalid event for %q=%q %q=%q: %v", k1, v1, k2, v2, err)
		}
	})
}
