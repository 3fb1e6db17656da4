package kafkasource

import (
	"encoding/binary"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

func TestMappingRules(t *testing.T) {
	m := Mapper{Namespace: "ns", Name: "src", Overrides: map[string]string{"team": "blue"}}
	at := time.Date(2026, 12, 7, 10, 0, 0, 0, time.FixedZone("x", 3600))

	t.Run("plain record as Knative maps it", func(t *testing.T) {
		ev := m.Map(&kgo.Record{Topic: "orders", Partition: 2, Offset: 41, Timestamp: at, Key: []byte("k1"), Value: []byte(`{"a":1}`),
			Headers: []kgo.RecordHeader{{Key: "Content-Type", Value: []byte("Application/JSON")}, {Key: "X-Trace_ID", Value: []byte("t")}}})
		if ev.ID() != "partition:2/offset:41" || ev.Type() != "dev.knative.kafka.event" || ev.Source() != "/apis/v1/namespaces/ns/kafkasources/src#orders" ||
			ev.Subject() != "partition:2#41" || !ev.Time().Equal(at) || ev.DataContentType() != "application/json" || string(ev.Data()) != `{"a":1}` {
			t.Fatalf("event %v", ev)
		}
		ext := ev.Extensions()
		for k, v := range map[string]string{"key": "k1", "partitionkey": "k1", "kafkaheaderxtraceid": "t", "knativekafkapartition": "2",
			"knativekafkaoffset": "41", "team": "blue"} {
			if ext[k] != v {
				t.Errorf("extension %s = %v, want %s", k, ext[k], v)
			}
		}
		if err := ev.Validate(); err != nil {
			t.Fatal(err)
		}
	})
	t.Run("binary CloudEvent passes through", func(t *testing.T) {
		ev := m.Map(&kgo.Record{Topic: "orders", Partition: 0, Offset: 1, Value: []byte("hi"), Headers: []kgo.RecordHeader{
			{Key: "ce_specversion", Value: []byte("1.0")}, {Key: "ce_id", Value: []byte("abc")}, {Key: "ce_source", Value: []byte("/mine")},
			{Key: "ce_type", Value: []byte("my.type")}, {Key: "ce_myext", Value: []byte("v")}, {Key: "content-type", Value: []byte("text/plain")}}})
		if ev.ID() != "abc" || ev.Source() != "/mine" || ev.Type() != "my.type" || ev.Extensions()["myext"] != "v" ||
			ev.DataContentType() != "text/plain" || string(ev.Data()) != "hi" || ev.Extensions()["knativekafkaoffset"] != "1" {
			t.Fatalf("event %v", ev)
		}
	})
	t.Run("structured CloudEvent passes through", func(t *testing.T) {
		ev := m.Map(&kgo.Record{Topic: "orders", Value: []byte(`{"specversion":"1.0","id":"s1","source":"/s","type":"t","data":{"x":1}}`),
			Headers: []kgo.RecordHeader{{Key: "content-type", Value: []byte("application/cloudevents+json; charset=utf-8")}}})
		if ev.ID() != "s1" || ev.Type() != "t" {
			t.Fatalf("event %v", ev)
		}
	})
	t.Run("an invalid CloudEvent is mapped, not lost", func(t *testing.T) {
		ev := m.Map(&kgo.Record{Topic: "orders", Partition: 1, Offset: 5, Value: []byte("x"),
			Headers: []kgo.RecordHeader{{Key: "ce_specversion", Value: []byte("1.0")}}})
		if ev.ID() != "partition:1/offset:5" || ev.Type() != "dev.knative.kafka.event" {
			t.Fatalf("event %v", ev)
		}
	})
	t.Run("key types", func(t *testing.T) {
		i := make([]byte, 4)
		binary.BigEndian.PutUint32(i, uint32(0xFFFFFFFE))
		for kt, want := range map[string]string{"int": "-2", "byte-array": "/////g==", "string": "\xff\xff\xff\xfe"} {
			mm := Mapper{Namespace: "ns", Name: "s", KeyType: kt}
			if got := mm.Map(&kgo.Record{Topic: "t", Key: i}).Extensions()["key"]; got != want {
				t.Errorf("key type %s: %q, want %q", kt, got, want)
			}
		}
	})
}
