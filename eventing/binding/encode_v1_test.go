package binding

import (
	"errors"
	"reflect"
	"testing"
	"time"

	"github.com/cloudevents/sdk-go/v2/event"
	"github.com/cloudevents/sdk-go/v2/types"
)

// TestEncodeV1MatchesGeneric: the 1.0 fast path must give exactly the properties (and the structured fallback
// decision) of the generic walk over sdk-go's attribute table.
func TestEncodeV1MatchesGeneric(t *testing.T) {
	mk := func(f func(e *event.Event)) event.Event {
		e := event.New()
		e.SetID("id-1")
		e.SetSource("/apis/v1/namespaces/ns/rocketmqsources/s#t")
		e.SetType("dev.tide.test")
		f(&e)
		return e
	}
	cases := map[string]event.Event{
		"minimal": mk(func(*event.Event) {}),
		"full": mk(func(e *event.Event) {
			e.SetSubject("sub")
			e.SetDataSchema("https://example.com/s?x=1")
			e.SetTime(time.Date(2026, 11, 21, 16, 0, 0, 1, time.FixedZone("x", -7200)))
			_ = e.SetData("application/json", map[string]int{"n": 1})
			e.SetExtension("knativebrokerttl", int32(254))
			e.SetExtension("knativearrivaltime", "2026-11-21T16:00:00.5Z")
			e.SetExtension("flag", true)
			e.SetExtension("bin", []byte{1, 2})
			e.SetExtension("when", time.Date(2020, 1, 1, 0, 0, 0, 0, time.UTC))
			e.SetExtension("where", types.URI{})
		}),
		"blank subject":         mk(func(e *event.Event) { e.SetSubject("") }),
		"unsafe attribute":      mk(func(e *event.Event) { e.SetSubject("a\x01b") }),
		"unsafe id":             mk(func(e *event.Event) { e.SetID("a\x02b") }),
		"unsafe extension":      mk(func(e *event.Event) { e.SetExtension("x", "a\x01") }),
		"unsafe content type":   mk(func(e *event.Event) { e.SetDataContentType("text/\x01plain") }),
		"content type, no data": mk(func(e *event.Event) { e.SetDataContentType("text/plain") }),
	}
	for name, e := range cases {
		t.Run(name, func(t *testing.T) {
			got, gotStructured, gotErr := encodeV1(e.Context.(*event.EventContextV1))
			want, wantStructured, wantErr := encodeGeneric(&e)
			if (gotErr != nil) != (wantErr != nil) || gotStructured != wantStructured || !reflect.DeepEqual(got, want) {
				t.Errorf("encodeV1 = %v, %v, %v\nencodeGeneric = %v, %v, %v", got, gotStructured, gotErr, want, wantStructured, wantErr)
			}
		})
	}
}

// BenchmarkDecode: one binary-mode message as the ingress stores it (the Trigger side's first step).
//
//	go test ./eventing/binding -run '^$' -bench Decode -benchmem
func BenchmarkDecode(b *testing.B) {
	e := event.New()
	e.SetID("id-1")
	e.SetSource("/bench/1")
	e.SetType("bench")
	_ = e.SetData("application/json", map[string]int{"n": 1})
	e.SetExtension("knativebrokerttl", int32(254))
	e.SetExtension("knativearrivaltime", "2026-11-21T16:00:00.123456789Z")
	body, props, err := Encode(&e)
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Decode(body, props); err != nil {
			b.Fatal(err)
		}
	}
}

// TestDecodeV1MatchesGeneric: the 1.0 fast path must decode exactly what the generic walk over sdk-go's attribute
// table decodes, and fail where it fails.
func TestDecodeV1MatchesGeneric(t *testing.T) {
	base := func(extra map[string]string) map[string]string {
		p := map[string]string{"CE_specversion": "1.0", "CE_id": "id-1", "CE_source": "/s", "CE_type": "t"}
		for k, v := range extra {
			if v == "\x00delete" {
				delete(p, k)
				continue
			}
			p[k] = v
		}
		return p
	}
	cases := map[string]map[string]string{
		"minimal": base(nil),
		"full": base(map[string]string{"CE_contenttype": "application/json", "CE_subject": "sub",
			"CE_dataschema": "https://example.com/s?x=1", "CE_time": "2026-11-21T16:00:00.123456789+02:00",
			"CE_knativebrokerttl": "254", "CE_knativearrivaltime": "2026-11-21T16:00:00.5Z", "TAGS": "a", "KEYS": "k"}),
		"upper-case names":        base(map[string]string{"CE_id": "\x00delete", "CE_ID": "x", "CE_SUBJECT": "s", "CE_MyExt": "v", "CE_SPECVERSION": "0.3"}),
		"datacontenttype spelled": base(map[string]string{"CE_datacontenttype": "text/plain"}),
		"CONTENTTYPE upper":       base(map[string]string{"CE_CONTENTTYPE": "text/plain"}),
		"blank subject":           base(map[string]string{"CE_subject": "  "}),
		"blank dataschema":        base(map[string]string{"CE_dataschema": " "}),
		"blank id":                base(map[string]string{"CE_id": " "}),
		"no id":                   base(map[string]string{"CE_id": "\x00delete"}),
		"no source":               base(map[string]string{"CE_source": "\x00delete"}),
		"bad source":              base(map[string]string{"CE_source": "%zz"}),
		"bad dataschema":          base(map[string]string{"CE_dataschema": "%zz"}),
		"bad time":                base(map[string]string{"CE_time": "yesterday"}),
		"zero time":               base(map[string]string{"CE_time": "0001-01-01T00:00:00Z"}),
		"bad extension name":      base(map[string]string{"CE_my-ext": "v"}),
		"empty extension name":    base(map[string]string{"CE_": "v"}),
		"type with spaces":        base(map[string]string{"CE_type": "  t  "}),
	}
	for name, props := range cases {
		for _, body := range [][]byte{nil, []byte(`{"n":1}`)} {
			got, gotErr := decodeV1(body, props)
			want, wantErr := decodeGeneric("1.0", body, props)
			if (gotErr == nil) != (wantErr == nil) || (gotErr != nil && !errors.Is(gotErr, ErrInvalidEvent)) {
				t.Errorf("%s: decodeV1 err = %v, decodeGeneric err = %v", name, gotErr, wantErr)
				continue
			}
			if gotErr == nil && !reflect.DeepEqual(got, want) {
				t.Errorf("%s: decodeV1 = %v\ndecodeGeneric = %v", name, got, want)
			}
		}
	}
}

// FuzzDecodeV1: for any one extra property on a 1.0 message, the fast path and the generic walk agree.
func FuzzDecodeV1(f *testing.F) {
	f.Add("CE_time", "2026-11-21T10:00:00Z", []byte("x"))
	f.Add("CE_SUBJECT", " s ", []byte(nil))
	f.Add("CE_ext", "v", []byte("{}"))
	f.Add("CE_dataschema", "::", []byte(nil))
	f.Fuzz(func(t *testing.T, key, val string, body []byte) {
		props := map[string]string{"CE_specversion": "1.0", "CE_id": "1", "CE_source": "/s", "CE_type": "t", key: val}
		got, gotErr := decodeV1(body, props)
		want, wantErr := decodeGeneric("1.0", body, props)
		if (gotErr == nil) != (wantErr == nil) {
			t.Fatalf("decodeV1 err = %v, decodeGeneric err = %v", gotErr, wantErr)
		}
		if gotErr == nil && !reflect.DeepEqual(got, want) {
			t.Fatalf("decodeV1 = %v\ndecodeGeneric = %v", got, want)
		}
	})
}
