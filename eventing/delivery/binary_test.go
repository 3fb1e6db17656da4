package delivery

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"reflect"
	"strings"
	"testing"
	"time"

	cloudevents "github.com/cloudevents/sdk-go/v2"
	"github.com/cloudevents/sdk-go/v2/binding"
	"github.com/cloudevents/sdk-go/v2/event"
	cehttp "github.com/cloudevents/sdk-go/v2/protocol/http"
	"github.com/cloudevents/sdk-go/v2/types"
)

// TestWriteBinaryMatchesSDK: writeBinary must put exactly what sdk-go's binary HTTP writer puts into a request
// (headers, body, content length), for 1.0 and 0.3 events with every optional attribute set or not and
// extensions of every CloudEvents type.
func TestWriteBinaryMatchesSDK(t *testing.T) {
	full := func(version string) event.Event {
		ev := cloudevents.NewEvent(version)
		ev.SetID("id-1")
		ev.SetSource("/apis/v1/namespaces/ns/rocketmqsources/s#topic")
		ev.SetType("dev.tide.test")
		ev.SetSubject("tag-a")
		ev.SetDataSchema("https://example.com/schema?x=1")
		ev.SetTime(time.Date(2026, 11, 21, 16, 0, 0, 123456789, time.FixedZone("x", 3600)))
		ev.SetExtension("strext", "v a l")
		ev.SetExtension("intext", 42)
		ev.SetExtension("boolext", true)
		ev.SetExtension("timeext", time.Date(2020, 1, 2, 3, 4, 5, 0, time.UTC))
		ev.SetExtension("uriext", types.URI{})
		ev.SetExtension("binext", []byte{0, 1, 2, 255})
		ev.SetExtension("knativebrokerttl", int32(254))
		ev.SetExtension("9digit", "starts with a digit")
		_ = ev.SetData("application/json", map[string]string{"k": "v"})
		return ev
	}
	minimal := cloudevents.NewEvent()
	minimal.SetID("m")
	minimal.SetSource("/s")
	minimal.SetType("t")
	raw := cloudevents.NewEvent()
	raw.SetID("r")
	raw.SetSource("/s")
	raw.SetType("t")
	raw.DataEncoded = []byte{0xff, 0x00, 'x'}
	raw.SetDataContentType("application/octet-stream")
	empty := full(cloudevents.VersionV1)
	empty.SetSubject("")
	empty.DataEncoded = nil
	for name, ev := range map[string]event.Event{
		"v1 full": full(cloudevents.VersionV1), "v03 full": full(cloudevents.VersionV03), "v1 minimal": minimal,
		"v1 raw bytes": raw, "v1 blank subject, no data": empty,
	} {
		t.Run(name, func(t *testing.T) {
			want, _ := http.NewRequest(http.MethodPost, "http://example.com/", nil)
			if err := cehttp.WriteRequest(context.Background(), binding.ToMessage(&ev), want); err != nil {
				t.Fatal(err)
			}
			got, _ := http.NewRequest(http.MethodPost, "http://example.com/", nil)
			if err := writeBinary(got, &ev); err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(map[string][]string(got.Header), map[string][]string(want.Header)) {
				t.Errorf("headers:\n got  %v\n want %v", got.Header, want.Header)
			}
			if got.ContentLength != want.ContentLength {
				t.Errorf("content length %d, want %d", got.ContentLength, want.ContentLength)
			}
			if (got.Body == nil) != (want.Body == nil) {
				t.Fatalf("body set: %v, want %v", got.Body != nil, want.Body != nil)
			}
			if got.Body != nil {
				gb, _ := io.ReadAll(got.Body)
				wb, _ := io.ReadAll(want.Body)
				if !bytes.Equal(gb, wb) {
					t.Errorf("body %q, want %q", gb, wb)
				}
				again, err := got.GetBody()
				if err != nil {
					t.Fatal(err)
				}
				if rb, _ := io.ReadAll(again); !bytes.Equal(rb, wb) {
					t.Errorf("GetBody %q, want %q", rb, wb)
				}
			}
		})
	}
}

// TestExtHeaderKnownNames: the constant header names of common extensions are what the general rule gives.
func TestExtHeaderKnownNames(t *testing.T) {
	for _, n := range []string{"knativearrivaltime", "traceparent", "tracestate", "partitionkey", "myext", "x1"} {
		if got, want := extHeader(n), "Ce-"+strings.ToUpper(n[:1])+n[1:]; got != want {
			t.Errorf("extHeader(%q) = %q, want %q", n, got, want)
		}
	}
}
