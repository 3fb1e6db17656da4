package acl

import (
	"errors"
	"net/netip"
	"strings"
	"testing"
)

// FuzzCheck feeds arbitrary requests (code, ext fields, body, peer address) to the decision. Invariants: it never
// panics; a denial is an *Error with a one-line message; and a request signed with an account's key is refused
// after any change to its body or fields (unless the peer is whitelisted), so the check cannot be fooled by
// moving bytes between fields and body.
func FuzzCheck(f *testing.F) {
	f.Add(int16(310), "topicB", "groupB", "RocketMQ", "", []byte("hello"), []byte{127, 0, 0, 1}, "x")
	f.Add(int16(34), "", "", "RocketMQ", "bad", []byte(`{"consumerDataSet":[{"groupName":"g","subscriptionDataSet":[{"topic":"topicA"}]}]}`), []byte{10, 10, 103, 1}, "")
	f.Add(int16(11), "topicC", "groupA", "", "", []byte{}, []byte{192, 168, 1, 9}, "q")
	f.Add(int16(17), "t", "", "rocketmq2", "", []byte(nil), []byte{1, 2, 3}, "")
	p := mustParse(f, sample)
	f.Fuzz(func(t *testing.T, code int16, topic, group, ak, sig string, body, remote []byte, extra string) {
		var addr netip.Addr
		if a, ok := netip.AddrFromSlice(remote); ok {
			addr = a
		}
		ext := map[string]string{"topic": topic, "b": topic, "consumerGroup": group, "group": group, "x": extra}
		if ak != "" {
			ext[FieldAccessKey] = ak
		}
		if sig != "" {
			ext[FieldSignature] = sig
		}
		checkErr(t, p.Check(Request{Code: code, Remote: addr, Ext: ext, Body: body}))
		if a, b := requestSignature(ext, body, []byte(extra)), Signature(Content(ext, body), []byte(extra)); a != b {
			t.Fatalf("streaming signature %s != %s", a, b)
		}

		// Signed with the right key, then tampered with: always refused (unless whitelisted).
		signed := userKey.Sign(map[string]string{"topic": topic, "b": topic, "consumerGroup": group, "x": extra}, body)
		whitelisted := false
		for _, m := range p.global {
			whitelisted = whitelisted || m.match(addr)
		}
		if whitelisted {
			return
		}
		tampered := append(append([]byte(nil), body...), 0)
		err := p.Check(Request{Code: code, Remote: addr, Ext: signed, Body: tampered})
		checkErr(t, err)
		var ae *Error
		if code == codeHeartBeat && err != nil && strings.HasPrefix(err.Error(), "acl: heartbeat body") {
			return
		}
		if !errors.As(err, &ae) || !strings.HasPrefix(ae.Msg, "Check signature failed") {
			t.Fatalf("tampered body: %v", err)
		}
		moved := map[string]string{}
		for k, v := range signed {
			moved[k] = v
		}
		moved["x"] = extra + "y"
		if err := p.Check(Request{Code: code, Remote: addr, Ext: moved, Body: body}); !errors.As(err, &ae) {
			t.Fatalf("tampered field: %v", err)
		}
	})
}

func checkErr(t *testing.T, err error) {
	t.Helper()
	if err == nil {
		return
	}
	var ae *Error
	if !errors.As(err, &ae) {
		t.Fatalf("denial is not an *Error: %T %v", err, err)
	}
	if strings.ContainsAny(ae.Msg, "\n\r") {
		t.Fatalf("multi-line denial %q", ae.Msg)
	}
}

// FuzzParse feeds arbitrary documents to the config parser: it never panics, and a document it accepts decides
// a request without panicking.
func FuzzParse(f *testing.F) {
	f.Add([]byte(sample))
	f.Add([]byte("globalWhiteRemoteAddresses: ['*']\n"))
	f.Add([]byte("accounts:\n- accessKey: 1234567\n  secretKey: 7654321\n  topicPerms: ['a = PUB|SUB']\n"))
	f.Fuzz(func(t *testing.T, doc []byte) {
		p, err := Parse("f.yml", doc)
		if err != nil {
			if !errors.Is(err, ErrConfig) {
				t.Fatalf("error without ErrConfig: %v", err)
			}
			return
		}
		checkErr(t, p.Check(send(userKey, "topicB")))
	})
}
