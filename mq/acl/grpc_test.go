package acl

import (
	"crypto/hmac"
	"crypto/sha1"
	"encoding/hex"
	"errors"
	"net/netip"
	"strings"
	"testing"
)

const date = "20261207T214800Z"

func grpcReq(auth string, res ...ResourcePerm) GRPCRequest {
	return GRPCRequest{Remote: local, Authorization: auth, DateTime: date, Resources: res}
}

// goClientHeader is the header rocketmq-clients/golang v5.1.4 builds (client.go Sign), written out by hand so
// the test does not trust SignGRPC to agree with itself.
func goClientHeader(ak, sk, date string) string {
	m := hmac.New(sha1.New, []byte(sk))
	m.Write([]byte(date))
	return "MQv2-HMAC-SHA1 Credential=" + ak + "//Rocketmq, SignedHeaders=x-mq-date-time, Signature=" + hex.EncodeToString(m.Sum(nil))
}

func wantDenial(t *testing.T, err error, msg string, forbidden bool) {
	t.Helper()
	var ae *Error
	if !errors.As(err, &ae) {
		t.Fatalf("got %v, want denial %q", err, msg)
	}
	if ae.Msg != msg || ae.Forbidden != forbidden {
		t.Fatalf("denial %q (forbidden %v), want %q (forbidden %v)", ae.Msg, ae.Forbidden, msg, forbidden)
	}
}

func TestCheckGRPC(t *testing.T) {
	p := mustParse(t, sample)
	good := goClientHeader("RocketMQ", "12345678", date)
	if good != userKey.SignGRPC(date) {
		t.Fatalf("SignGRPC %q, the Go client sends %q", userKey.SignGRPC(date), good)
	}
	pubB := ResourcePerm{"topicB", Pub}
	for _, tc := range []struct {
		name      string
		req       GRPCRequest
		msg       string // "" allowed
		forbidden bool
	}{
		{"signed, allowed topic", grpcReq(good, pubB), "", false},
		{"signed, Any on a SUB topic (QueryRoute)", grpcReq(good, ResourcePerm{"topicC", Any}), "", false},
		{"signed, group by default SUB", grpcReq(good, ResourcePerm{"%RETRY%other", Sub}, ResourcePerm{"topicC", Sub}), "", false},
		{"no header", grpcReq(""), "No accessKey is configured", false},
		{"no Credential item", grpcReq("MQv2-HMAC-SHA1 Signature=00"), "No accessKey is configured", false},
		{"unknown key", grpcReq(goClientHeader("nobody-here", "12345678", date)), "No acl config for nobody-here", false},
		{"wrong secret", grpcReq(goClientHeader("RocketMQ", "wrong-secret", date), pubB), "Check signature failed for accessKey=RocketMQ", false},
		{"signature of another date", grpcReq(goClientHeader("RocketMQ", "12345678", "20261207T214801Z"), pubB), "Check signature failed for accessKey=RocketMQ", false},
		{"no Signature item", grpcReq("MQv2-HMAC-SHA1 Credential=RocketMQ//Rocketmq"), "Check signature failed for accessKey=RocketMQ", false},
		{"signature not hex", grpcReq("MQv2-HMAC-SHA1 Credential=RocketMQ, Signature=zz"), "authorization signature is not hex: encoding/hex: invalid byte: U+007A 'z'", false},
		{"no method", grpcReq("Credential=RocketMQ"), "authorization header is incorrect", false},
		{"item without =", grpcReq("MQv2-HMAC-SHA1 Credential"), "authorization keyValues length is incorrect, actual length=1", false},
		{"credential of slashes", grpcReq("MQv2-HMAC-SHA1 Credential=//"), "authorization credential length is incorrect, actual length=0", false},
		{"denied topic", grpcReq(good, ResourcePerm{"topicA", Pub}), "No permission for topic:topicA", true},
		{"SUB-only topic, PUB wanted", grpcReq(good, ResourcePerm{"topicC", Pub}), "No permission for topic:topicC", true},
		{"topic by default DENY", grpcReq(good, ResourcePerm{"elsewhere", Any}), "No default permission for topic:elsewhere", true},
		{"denied group", grpcReq(good, ResourcePerm{"%RETRY%groupA", Sub}, pubB), "No permission for group:groupA", true},
		{"unreadable request", GRPCRequest{Remote: local, Authorization: good, DateTime: date, Err: "SendMessageRequest, messageCount is zero"}, "SendMessageRequest, messageCount is zero", false},
		{"admin may do anything", grpcReq(goClientHeader("rocketmq2", "12345678", date), ResourcePerm{"topicA", Pub}), "", false},
		{"global whitelist needs no header", GRPCRequest{Remote: netip.MustParseAddr("10.10.103.7"), Resources: []ResourcePerm{{"topicA", Pub}}}, "", false},
		{"account whitelist needs no signature", GRPCRequest{Remote: netip.MustParseAddr("192.168.1.5"), Authorization: "MQv2-HMAC-SHA1 Credential=rocketmq2//Rocketmq, Signature=00"}, "", false},
		{"a malformed header is refused even on the whitelist", GRPCRequest{Remote: netip.MustParseAddr("10.10.103.7"), Authorization: "garbage"}, "authorization header is incorrect", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := p.CheckGRPC(tc.req)
			if tc.msg == "" {
				if err != nil {
					t.Fatalf("refused: %v", err)
				}
				return
			}
			wantDenial(t, err, tc.msg, tc.forbidden)
		})
	}
}

// FuzzCheckGRPC feeds arbitrary authorization headers, dates and resources to the gRPC decision. Invariants: it
// never panics; a denial is an *Error with a one-line message; a header signed for one date is refused with any
// other date, and a forged signature is refused (unless the peer is whitelisted).
func FuzzCheckGRPC(f *testing.F) {
	f.Add(goClientHeader("RocketMQ", "12345678", date), date, "topicB", []byte{127, 0, 0, 1}, "other")
	f.Add("MQv2-HMAC-SHA1 Credential=RocketMQ//Rocketmq, SignedHeaders=x-mq-date-time, Signature=00ff", "", "%RETRY%groupA", []byte{10, 10, 103, 1}, "")
	f.Add("MQv2-HMAC-SHA1 Credential=//,,", "x", "", []byte{192, 168, 1, 9}, "\n")
	f.Add("a b=c,d=e/f, Signature=0", "x", "topicC", []byte(nil), "y")
	p := mustParse(f, sample)
	f.Fuzz(func(t *testing.T, header, date, resource string, remote []byte, other string) {
		var addr netip.Addr
		if a, ok := netip.AddrFromSlice(remote); ok {
			addr = a
		}
		res := []ResourcePerm{{resource, Pub}, {"topicC", Any}}
		checkErr(t, p.CheckGRPC(GRPCRequest{Remote: addr, Authorization: header, DateTime: date, Resources: res}))
		whitelisted := false
		for _, m := range p.global {
			whitelisted = whitelisted || m.match(addr)
		}
		if whitelisted || other == date {
			return
		}
		// Signed for date, sent with another: refused for its signature.
		err := p.CheckGRPC(GRPCRequest{Remote: addr, Authorization: userKey.SignGRPC(date), DateTime: other, Resources: res})
		var ae *Error
		if !errors.As(err, &ae) || !strings.HasPrefix(ae.Msg, "Check signature failed") {
			t.Fatalf("replayed with another date: %v", err)
		}
		// The right key's name with a signature that is not its own.
		forged := "MQv2-HMAC-SHA1 Credential=RocketMQ//Rocketmq, SignedHeaders=x-mq-date-time, Signature=" + hex.EncodeToString([]byte(header))
		if header == userKey.SignGRPC(date) {
			return
		}
		if err := p.CheckGRPC(GRPCRequest{Remote: addr, Authorization: forged, DateTime: date, Resources: res}); !errors.As(err, &ae) {
			t.Fatalf("forged signature allowed: %v", err)
		}
	})
}
