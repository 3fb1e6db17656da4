package rocketmqsource

import (
	"strings"
	"testing"

	"github.com/apache/rocketmq-client-go/v2/primitive"
)

// TestIsContentTypeKeyMatchesSanitize: the in-place comparison must agree with its definition,
// sanitize(k) == "contenttype", including Unicode case folding (the Kelvin sign lower-cases to 'k') and
// invalid UTF-8.
func TestIsContentTypeKeyMatchesSanitize(t *testing.T) {
	for _, k := range []string{
		"content-type", "Content-Type", "contentType", "CONTENT_TYPE", "content type", "contenttype",
		"contenttypes", "contenttyp", "xcontenttype", "content-type-", "ContentType\u212a", "\u212aontent", "",
		"con\xfftent-type", "c.o.n.t.e.n.t.t.y.p.e", "contenttype1", "CONTENT\u0130TYPE", "cöntenttype",
	} {
		if got, want := isContentTypeKey(k), sanitize(k) == "contenttype"; got != want {
			t.Errorf("isContentTypeKey(%q) = %v, want %v", k, got, want)
		}
	}
	for _, s := range []string{"abc123", "ABC", "a-b", "", "\u212a"} {
		want := func() string {
			var b strings.Builder
			for _, c := range strings.ToLower(s) {
				if c >= 'a' && c <= 'z' || c >= '0' && c <= '9' {
					b.WriteRune(c)
				}
			}
			return b.String()
		}()
		if got := sanitize(s); got != want {
			t.Errorf("sanitize(%q) = %q, want %q", s, got, want)
		}
	}
}

// BenchmarkMap: mapping one plain message with a few user properties.
//
//	go test -run '^$' -bench 'Map$' -benchmem ./eventing/rocketmqsource/
func BenchmarkMap(b *testing.B) {
	msg := &primitive.MessageExt{Message: primitive.Message{Topic: "orders", Body: []byte(`{"order":42}`)},
		MsgId: "0A0A0A0A00002A9F0000000000000001", QueueOffset: 1234, BornTimestamp: 1763740800000}
	msg.WithTag("created")
	msg.WithKeys([]string{"k1"})
	msg.WithProperty("UNIQ_KEY", "7F0000010001000000000000000000AB")
	msg.WithProperty("tenant", "acme")
	msg.WithProperty("Trace-Id", "abc")
	msg.Queue = &primitive.MessageQueue{Topic: "orders", BrokerName: "b", QueueId: 3}
	m := Mapper{Namespace: "ns", Name: "src"}
	b.ReportAllocs()
	for b.Loop() {
		_ = m.Map(msg, "b")
	}
}
