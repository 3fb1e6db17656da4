package delivery

import (
	"context"
	"net/http"
	"testing"
)

// FuzzParseReply feeds arbitrary response bodies and content types to the reply parser: it must never panic, and
// whatever it returns must be a valid event.
func FuzzParseReply(f *testing.F) {
	f.Add("application/cloudevents+json", []byte(`{"specversion":"1.0","id":"1","source":"/s","type":"t","data":{"a":1}}`))
	f.Add("application/cloudevents+json", []byte(`{"specversion":"0.3","id":"1","source":"/s","type":"t"}`))
	f.Add("application/cloudevents+json", []byte(`{"specversion":"1.0"`))
	f.Add("application/json", []byte(`{"a":1}`))
	f.Add("text/plain", []byte("hello"))
	f.Fuzz(func(t *testing.T, contentType string, body []byte) {
		h := http.Header{}
		h.Set("Content-Type", contentType)
		if ev := parseReply(context.Background(), attempt{status: 200, header: h, body: body}); ev != nil {
			if err := ev.Validate(); err != nil {
				t.Fatalf("invalid reply returned: %v", err)
			}
		}
	})
}
