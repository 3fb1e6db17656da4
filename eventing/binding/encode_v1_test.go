package binding

import (
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
