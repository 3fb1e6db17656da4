package delivery

import (
	"context"
	"errors"
	"net/http"
	"testing"
)

// FuzzParseReply feeds arbitrary response bodies and content types to the reply parser: it must never panic;
// whatever it returns must be a valid event or an error wrapping ErrBadReply, and only an empty body may be neither.
func FuzzParseReply(f *testing.F) {
	f.Add("application/cloudevents+json", []byte(`{"specversion":"1.0","id":"1","source":"/s","type":"t","data":{"a":1}}`))
	f.Add("application/cloudevents+json", []byte(`{"specversion":"0.3","id":"1","source":"/s","type":"t"}`))
	f.Add("application/cloudevents+json", []byte(`{"specversion":"1.0"`))
	f.Add("application/json", []byte(`{"a":1}`))
	f.Add("text/plain", []byte("hello"))
	f.Fuzz(func(t *testing.T, contentType string, body []byte) {
		h := http.Header{}
		h.Set("Content-Type", contentType)
		ev, err := parseReply(context.Background(), h, body)
		switch {
		case ev != nil && err != nil:
			t.Fatalf("both a reply and an error: %v", err)
		case ev != nil:
			if verr := ev.Validate(); verr != nil {
				t.Fatalf("invalid reply returned: %v", verr)
			}
		case err != nil:
			if !errors.Is(err, ErrBadReply) {
				t.Fatalf("error does not wrap ErrBadReply: %v", err)
			}
		case len(body) != 0:
			t.Fatalf("non-empty body %q neither a reply nor a bad reply", body)
		}
	})
}
