package kafkasource

import (
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"math"
	"strconv"
	"strings"
	"time"

	cloudevents "github.com/cloudevents/sdk-go/v2"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/tide-run/tide/apis/sources/v1beta1"
)

// Extension attribute names, as Knative's KafkaSource dispatcher sets them.
const (
	// ExtPartition and ExtOffset are on every event (Knative's CloudEventOverridesMutator).
	ExtPartition = "knativekafkapartition"
	ExtOffset    = "knativekafkaoffset"
	// ExtKey and ExtPartitionKey carry the record key of a record that is not a CloudEvent.
	ExtKey          = "key"
	ExtPartitionKey = "partitionkey"
	// ExtHeaderPrefix prefixes each record header of a record that is not a CloudEvent:
	// kafkaheader<name lower-cased, a-z0-9 only>.
	ExtHeaderPrefix = "kafkaheader"
)

// Mapper turns Kafka records into CloudEvents for one KafkaSource. Immutable; safe for concurrent use.
type Mapper struct {
	// Namespace and Name identify the KafkaSource; they make the event source attribute.
	Namespace, Name string
	// KeyType is how the record key is read: string (default), int, float or byte-array.
	KeyType string
	// Overrides are ceOverrides extensions, applied last.
	Overrides map[string]string
}

// Map returns the CloudEvent for rec. A record that is a CloudEvent under the Kafka protocol binding (binary:
// ce_* headers; structured: content-type application/cloudevents+json) passes through; any other record becomes
// an event the way Knative's InvalidCloudEventInterceptor builds it: id "partition:<p>/offset:<o>", type
// dev.knative.kafka.event, source /apis/v1/namespaces/<ns>/kafkasources/<name>#<topic>, subject
// "partition:<p>#<o>", time the record's timestamp, the key as extensions key and partitionkey, each header as
// kafkaheader<name>, a content-type header as datacontenttype, the value as data. Then, on every event, the
// knativekafkapartition and knativekafkaoffset extensions and ceOverrides. Map never fails: a record that claims
// to be a CloudEvent but is not a valid one is mapped as a plain record, so it is delivered rather than lost.
func (m *Mapper) Map(rec *kgo.Record) cloudevents.Event {
	ev, ok := decodeBinding(rec)
	if !ok {
		ev = m.plain(rec)
	}
	ev.SetExtension(ExtPartition, strconv.FormatInt(int64(rec.Partition), 10))
	ev.SetExtension(ExtOffset, strconv.FormatInt(rec.Offset, 10))
	for k, v := range m.Overrides {
		ev.SetExtension(k, v)
	}
	return ev
}

func (m *Mapper) plain(rec *kgo.Record) cloudevents.Event {
	ev := cloudevents.NewEvent(cloudevents.VersionV1)
	p, o := strconv.FormatInt(int64(rec.Partition), 10), strconv.FormatInt(rec.Offset, 10)
	ev.SetID("partition:" + p + "/offset:" + o)
	ev.SetType(v1beta1.EventType)
	ev.SetSource(v1beta1.EventSource(m.Namespace, m.Name, rec.Topic))
	ev.SetSubject("partition:" + p + "#" + o)
	if !rec.Timestamp.IsZero() {
		ev.SetTime(rec.Timestamp.UTC())
	}
	if rec.Key != nil {
		k := m.key(rec.Key)
		ev.SetExtension(ExtKey, k)
		ev.SetExtension(ExtPartitionKey, k)
	}
	contentType := ""
	for _, h := range rec.Headers {
		if strings.EqualFold(h.Key, "content-type") {
			contentType = strings.ToLower(string(h.Value))
			continue
		}
		name := ExtHeaderPrefix + sanitize(h.Key)
		ev.SetExtension(name, string(h.Value))
	}
	if contentType != "" {
		ev.SetDataContentType(contentType)
	}
	if rec.Value != nil {
		ev.DataEncoded = rec.Value
	}
	return ev
}

// key renders a record key per the key-type label as Knative's KeyDeserializer reads it: int and float are
// big-endian 4- or 8-byte numbers (other lengths fall back to a string), byte-array is base64.
func (m *Mapper) key(b []byte) string {
	switch m.KeyType {
	case "int":
		switch len(b) {
		case 4:
			return strconv.FormatInt(int64(int32(binary.BigEndian.Uint32(b))), 10)
		case 8:
			return strconv.FormatInt(int64(binary.BigEndian.Uint64(b)), 10)
		}
	case "float":
		switch len(b) {
		case 4:
			return strconv.FormatFloat(float64(math.Float32frombits(binary.BigEndian.Uint32(b))), 'g', -1, 32)
		case 8:
			return strconv.FormatFloat(math.Float64frombits(binary.BigEndian.Uint64(b)), 'g', -1, 64)
		}
	case "byte-array":
		return base64.StdEncoding.EncodeToString(b)
	}
	return string(b)
}

// sanitize lower-cases name and keeps a-z and 0-9 (CloudEvents attribute names), as Knative does.
func sanitize(name string) string {
	var sb strings.Builder
	for _, r := range strings.ToLower(name) {
		if r >= 'a' && r <= 'z' || r >= '0' && r <= '9' {
			sb.WriteRune(r)
		}
	}
	return sb.String()
}

// decodeBinding reads a CloudEvent under the Kafka protocol binding.
func decodeBinding(rec *kgo.Record) (cloudevents.Event, bool) {
	var specversion, contentType string
	for _, h := range rec.Headers {
		switch strings.ToLower(h.Key) {
		case "ce_specversion":
			specversion = string(h.Value)
		case "content-type":
			contentType = string(h.Value)
		}
	}
	if specversion == "" {
		if strings.HasPrefix(strings.ToLower(contentType), "application/cloudevents+json") {
			var ev cloudevents.Event
			if err := json.Unmarshal(rec.Value, &ev); err == nil && ev.Validate() == nil {
				return ev, true
			}
		}
		return cloudevents.Event{}, false
	}
	ev := cloudevents.NewEvent(specversion)
	if ev.SpecVersion() != specversion {
		return cloudevents.Event{}, false
	}
	for _, h := range rec.Headers {
		k := strings.ToLower(h.Key)
		v := string(h.Value)
		if k == "content-type" {
			ev.SetDataContentType(v)
			continue
		}
		name, ok := strings.CutPrefix(k, "ce_")
		if !ok {
			continue
		}
		switch name {
		case "specversion":
		case "id":
			ev.SetID(v)
		case "source":
			ev.SetSource(v)
		case "type":
			ev.SetType(v)
		case "subject":
			ev.SetSubject(v)
		case "dataschema":
			ev.SetDataSchema(v)
		case "time":
			t, err := time.Parse(time.RFC3339Nano, v)
			if err != nil {
				return cloudevents.Event{}, false
			}
			ev.SetTime(t)
		default:
			if name == "" || sanitize(name) != name {
				continue // not a valid CloudEvents attribute name
			}
			ev.SetExtension(name, v)
		}
	}
	if rec.Value != nil {
		ev.DataEncoded = rec.Value
	}
	if ev.Validate() != nil {
		return cloudevents.Event{}, false
	}
	return ev, true
}

func fingerprintOf(parts ...[]byte) string {
	h := sha256.New()
	for _, p := range parts {
		h.Write([]byte(strconv.Itoa(len(p))))
		h.Write(p)
	}
	return hex.EncodeToString(h.Sum(nil))
}
