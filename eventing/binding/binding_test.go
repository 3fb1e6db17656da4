package binding

import (
	"bytes"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/cloudevents/sdk-go/v2/event"
	"github.com/cloudevents/sdk-go/v2/types"
)

func sample(version string) *event.Event {
	e := event.New(version)
	e.SetID("abc-1")
	e.SetSource("/apis/v1/namespaces/default/rocketmqsources/orders#orders")
	e.SetType("dev.knative.rocketmq.event")
	e.SetSubject("order-42")
	e.SetTime(time.Date(2026, 11, 21, 10, 0, 0, 123000000, time.UTC))
	e.SetDataSchema("http://example.com/schema")
	e.SetExtension("knativearrivaltime", "2026-11-21T10:00:00Z")
	e.SetExtension("knativebrokerttl", 255)
	_ = e.SetData("application/json", map[string]any{"order": 42})
	return &e
}

func TestBinaryRoundTrip(t *testing.T) {
	for _, v := range []string{event.CloudEventsVersionV1, event.CloudEventsVersionV03} {
		t.Run(v, func(t *testing.T) {
			in := sample(v)
			body, props, err := Encode(in)
			if err != nil {
				t.Fatal(err)
			}
			if props[PropSpecVersion] != v || props["CE_id"] != "abc-1" || props[PropContentType] != "application/json" {
				t.Fatalf("binary properties wrong: %v", props)
			}
			if props["CE_knativebrokerttl"] != "255" {
				t.Fatalf("extension property = %q", props["CE_knativebrokerttl"])
			}
			if !bytes.Equal(body, in.Data()) {
				t.Fatalf("body = %q", body)
			}
			if !IsCloudEvent(props) {
				t.Fatal("IsCloudEvent = false")
			}
			out, err := Decode(body, props)
			if err != nil {
				t.Fatal(err)
			}
			assertSame(t, in, out)
		})
	}
}

func assertSame(t *testing.T, in, out *event.Event) {
	t.Helper()
	if out.SpecVersion() != in.SpecVersion() || out.ID() != in.ID() || out.Source() != in.Source() ||
		out.Type() != in.Type() || out.Subject() != in.Subject() || !out.Time().Equal(in.Time()) ||
		out.DataSchema() != in.DataSchema() || out.DataContentType() != in.DataContentType() {
		t.Fatalf("attributes differ:\n in: %s\nout: %s", in, out)
	}
	if !bytes.Equal(out.Data(), in.Data()) {
		t.Fatalf("data differs: %q vs %q", out.Data(), in.Data())
	}
	for k, v := range in.Extensions() {
		got, ok := out.Extensions()[k]
		if !ok {
			t.Fatalf("extension %s lost", k)
		}
		if a, b := fmtAny(v), fmtAny(got); a != b {
			t.Fatalf("extension %s = %s, want %s", k, b, a)
		}
	}
}

// fmtAny compares extension values by their canonical string form: binary
// mode carries every value as a string, as HTTP binary mode does.
func fmtAny(v any) string {
	s, err := types.Format(v)
	if err != nil {
		return "<" + err.Error() + ">"
	}
	return s
}

func TestStructuredFallbackAndDecode(t *testing.T) {
	in := sample(event.CloudEventsVersionV1)
	in.SetSubject("has\x01separator")
	body, props, err := Encode(in)
	if err != nil {
		t.Fatal(err)
	}
	if props[PropContentType] != JSONFormat || len(props) != 1 {
		t.Fatalf("want structured fallback, props = %v", props)
	}
	out, err := Decode(body, props)
	if err != nil {
		t.Fatal(err)
	}
	if out.Subject() != in.Subject() || out.ID() != in.ID() {
		t.Fatalf("structured round trip: %s", out)
	}
	if !bytes.Equal(out.Data(), in.Data()) {
		t.Fatalf("data %q", out.Data())
	}
}

func TestLargeAttributesGoStructured(t *testing.T) {
	in := sample(event.CloudEventsVersionV1)
	in.SetExtension("big", strings.Repeat("x", MaxPropertiesBytes))
	body, props, err := Encode(in)
	if err != nil {
		t.Fatal(err)
	}
	if props[PropContentType] != JSONFormat {
		t.Fatalf("want structured mode for oversized attributes, props has %d keys", len(props))
	}
	out, err := Decode(body, props)
	if err != nil || out.Extensions()["big"] != strings.Repeat("x", MaxPropertiesBytes) {
		t.Fatalf("round trip: %v", err)
	}
}

func TestDecodeErrors(t *testing.T) {
	if _, err := Decode([]byte("hello"), map[string]string{"TAGS": "x"}); !errors.Is(err, ErrNotCloudEvent) {
		t.Fatalf("plain message: %v", err)
	}
	if IsCloudEvent(map[string]string{"KEYS": "a"}) {
		t.Fatal("plain message detected as CloudEvent")
	}
	cases := map[string]struct {
		body  string
		props map[string]string
	}{
		"missing id":          {"", map[string]string{"CE_specversion": "1.0", "CE_source": "/s", "CE_type": "t"}},
		"unknown specversion": {"", map[string]string{"CE_specversion": "9.9", "CE_id": "1", "CE_source": "/s", "CE_type": "t"}},
		"bad time":            {"", map[string]string{"CE_specversion": "1.0", "CE_id": "1", "CE_source": "/s", "CE_type": "t", "CE_time": "yesterday"}},
		"bad structured json": {"{", map[string]string{"CE_contenttype": JSONFormat}},
		"unsupported format":  {"{}", map[string]string{"CE_contenttype": "application/cloudevents+avro"}},
	}
	for name, tc := range cases {
		if _, err := Decode([]byte(tc.body), tc.props); !errors.Is(err, ErrInvalidEvent) {
			t.Errorf("%s: err = %v, want ErrInvalidEvent", name, err)
		}
	}
}

func TestDecodeForeignBinary(t *testing.T) {
	// What a Java producer using sdk-java's RocketMQ binding writes.
	props := map[string]string{
		"CE_specversion": "1.0", "CE_id": "x1", "CE_source": "/java", "CE_type": "com.example.java",
		"CE_contenttype": "text/plain", "CE_myext": "v", "TAGS": "tagA", "KEYS": "k1",
	}
	e, err := Decode([]byte("hi"), props)
	if err != nil {
		t.Fatal(err)
	}
	if e.ID() != "x1" || e.DataContentType() != "text/plain" || string(e.Data()) != "hi" || e.Extensions()["myext"] != "v" {
		t.Fatalf("decoded %s", e)
	}
	if _, ok := e.Extensions()["tags"]; ok {
		t.Fatal("non-CE property became an extension")
	}
}

func FuzzDecode(f *testing.F) {
	f.Add([]byte(`{"specversion":"1.0","id":"1","source":"/s","type":"t"}`), JSONFormat, "1.0", "1", "")
	f.Add([]byte("data"), "text/plain", "1.0", "1", "2026-11-21T10:00:00Z")
	f.Add([]byte(""), "", "0.3", "", "x")
	f.Fuzz(func(t *testing.T, body []byte, ct, sv, id, tm string) {
		props := map[string]string{"CE_source": "/s", "CE_type": "t"}
		if ct != "" {
			props[PropContentType] = ct
		}
		if sv != "" {
			props[PropSpecVersion] = sv
		}
		if id != "" {
			props["CE_id"] = id
		}
		if tm != "" {
			props["CE_time"] = tm
		}
		e, err := Decode(body, props)
		if err != nil {
			return
		}
		// Whatever decodes must re-encode and decode to the same identity.
		b2, p2, err := Encode(e)
		if err != nil {
			t.Fatalf("decoded event does not encode: %v", err)
		}
		e2, err := Decode(b2, p2)
		if err != nil {
			t.Fatalf("re-decode: %v", err)
		}
		if e2.ID() != e.ID() || e2.Source() != e.Source() {
			t.Fatalf("identity changed")
		}
	})
}
