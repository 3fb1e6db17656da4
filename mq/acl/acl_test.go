package acl

import (
	"errors"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	clocktesting "k8s.io/utils/clock/testing"
)

const sample = `
globalWhiteRemoteAddresses:
  - 10.10.103.*
  - 192.168.0.{1,2}

accounts:
  - accessKey: RocketMQ
    secretKey: 12345678
    whiteRemoteAddress:
    admin: false
    defaultTopicPerm: DENY
    defaultGroupPerm: SUB
    topicPerms:
      - topicA=DENY
      - topicB=PUB|SUB
      - topicC=SUB
    groupPerms:
      # the group should convert to retry topic
      - groupA=DENY
      - groupB=PUB|SUB
      - groupC=SUB

  - accessKey: rocketmq2
    secretKey: 12345678
    whiteRemoteAddress: 192.168.1.*
    # if it is admin, it could access all resources
    admin: true
`

var (
	local   = netip.MustParseAddr("127.0.0.1")
	userKey = Credentials{AccessKey: "RocketMQ", SecretKey: "12345678"}
	adminKy = Credentials{AccessKey: "rocketmq2", SecretKey: "12345678"}
)

func mustParse(t testing.TB, s string) *Policy {
	t.Helper()
	p, err := Parse("plain_acl.yml", []byte(s))
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// TestSignatureVector pins the signed content and the HMAC to a value computed independently (Python's hmac over
// the sorted values and the body), which is what the official clients send.
func TestSignatureVector(t *testing.T) {
	ext := map[string]string{"topic": "TopicTest", "queueId": "1", "AccessKey": "RocketMQ", "producerGroup": "pg",
		"Signature": "ignored", "_UNIQUE_KEY_QUERY": "false"}
	body := []byte("Hello RocketMQ")
	if got := string(Content(ext, body)); got != "RocketMQpg1TopicTestHello RocketMQ" {
		t.Fatalf("content %q", got)
	}
	if got := Signature(Content(ext, body), []byte("12345678")); got != "U6rLUcTULeNhPMLIcdu1JdAcWJs=" {
		t.Fatalf("signature %q", got)
	}
	if got := requestSignature(ext, body, []byte("12345678")); got != "U6rLUcTULeNhPMLIcdu1JdAcWJs=" {
		t.Fatalf("streaming signature %q", got)
	}
	signed := userKey.Sign(map[string]string{"topic": "TopicTest", "queueId": "1", "producerGroup": "pg"}, body)
	if signed[FieldSignature] != "U6rLUcTULeNhPMLIcdu1JdAcWJs=" || signed[FieldAccessKey] != "RocketMQ" {
		t.Fatalf("Sign: %v", signed)
	}
}

func send(c Credentials, topic string) Request {
	ext := map[string]string{"b": topic, "a": "pg", "d": "4"}
	body := []byte("hi")
	if !c.Empty() {
		ext = c.Sign(ext, body)
	}
	return Request{Code: codeSendMessageV2, Remote: local, Ext: ext, Body: body}
}

func wantDeny(t *testing.T, err error, msg string) {
	t.Helper()
	var ae *Error
	if !errors.As(err, &ae) {
		t.Fatalf("got %v, want denial %q", err, msg)
	}
	if ae.Msg != msg {
		t.Fatalf("denial %q, want %q", ae.Msg, msg)
	}
	if !strings.HasPrefix(ae.Remark(), "org.apache.rocketmq.acl.common.AclException: ") {
		t.Fatalf("remark %q", ae.Remark())
	}
}

func TestDecisions(t *testing.T) {
	p := mustParse(t, sample)
	if err := p.Check(send(userKey, "topicB")); err != nil {
		t.Fatalf("PUB on topicB: %v", err)
	}
	wantDeny(t, p.Check(send(userKey, "topicA")), "No permission for topic:topicA")
	wantDeny(t, p.Check(send(userKey, "topicC")), "No permission for topic:topicC")
	wantDeny(t, p.Check(send(userKey, "other")), "No default permission for topic:other")
	wantDeny(t, p.Check(send(Credentials{AccessKey: "RocketMQ", SecretKey: "wrong-secret"}, "topicB")), "Check signature failed for accessKey=RocketMQ")
	wantDeny(t, p.Check(send(Credentials{AccessKey: "nobody-here", SecretKey: "12345678"}, "topicB")), "No acl config for nobody-here")
	wantDeny(t, p.Check(send(Credentials{}, "topicB")), "No accessKey is configured")
	if err := p.Check(send(adminKy, "anything")); err != nil {
		t.Fatalf("admin: %v", err)
	}

	// A body changed after signing fails the signature.
	r := send(userKey, "topicB")
	r.Body = []byte("tampered")
	wantDeny(t, p.Check(r), "Check signature failed for accessKey=RocketMQ")
	// So does a changed field.
	r = send(userKey, "topicB")
	r.Ext["b"] = "topicC"
	wantDeny(t, p.Check(r), "Check signature failed for accessKey=RocketMQ")

	// Global whitelist: no credentials needed.
	r = send(Credentials{}, "topicA")
	r.Remote = netip.MustParseAddr("10.10.103.7")
	if err := p.Check(r); err != nil {
		t.Fatalf("global whitelist: %v", err)
	}
	r.Remote = netip.MustParseAddr("192.168.0.2")
	if err := p.Check(r); err != nil {
		t.Fatalf("global whitelist list: %v", err)
	}
	r.Remote = netip.MustParseAddr("192.168.0.3")
	wantDeny(t, p.Check(r), "No accessKey is configured")
	// Account whitelist: the account's key without a valid signature passes from its addresses (Apache's rule).
	r = send(Credentials{AccessKey: "rocketmq2", SecretKey: "not-the-secret"}, "x")
	r.Remote = netip.MustParseAddr("192.168.1.44")
	if err := p.Check(r); err != nil {
		t.Fatalf("account whitelist: %v", err)
	}

	// Admin codes.
	create := Request{Code: codeUpdateAndCreateTopic, Remote: local, Ext: userKey.Sign(map[string]string{"topic": "t"}, nil)}
	wantDeny(t, p.Check(create), "Need admin permission for request code=17, but accessKey=RocketMQ is not")
	create.Ext = adminKy.Sign(map[string]string{"topic": "t"}, nil)
	if err := p.Check(create); err != nil {
		t.Fatal(err)
	}

	// Pull: topic SUB and group SUB.
	pull := func(topic, group string) Request {
		return Request{Code: codePullMessage, Remote: local, Ext: userKey.Sign(map[string]string{"topic": topic, "consumerGroup": group}, nil)}
	}
	if err := p.Check(pull("topicC", "groupC")); err != nil {
		t.Fatal(err)
	}
	if err := p.Check(pull("topicB", "anyGroup")); err != nil { // default group perm SUB
		t.Fatal(err)
	}
	wantDeny(t, p.Check(pull("topicC", "groupA")), "No permission for group:groupA")
	wantDeny(t, p.Check(pull("topicA", "groupC")), "No permission for topic:topicA")

	// Heartbeat: every consumer group and subscribed topic.
	hb := []byte(`{"clientID":"1@1","producerDataSet":[{"groupName":"pg"}],"consumerDataSet":[{"groupName":"groupC","subscriptionDataSet":[{"topic":"topicC"},{"topic":"topicA"}]}]}`)
	r = Request{Code: codeHeartBeat, Remote: local, Ext: userKey.Sign(nil, hb), Body: hb}
	wantDeny(t, p.Check(r), "No permission for topic:topicA")
	r = Request{Code: codeHeartBeat, Remote: local, Ext: userKey.Sign(nil, []byte("{")), Body: []byte("{")}
	if err := p.Check(r); err == nil || !strings.Contains(err.Error(), "heartbeat body") {
		t.Fatalf("bad heartbeat: %v", err)
	}

	// Send to a retry topic needs SUB on that group.
	if err := p.Check(send(userKey, "%RETRY%groupC")); err != nil {
		t.Fatal(err)
	}
	wantDeny(t, p.Check(send(userKey, "%RETRY%groupA")), "No permission for group:groupA")
}

func TestParseErrors(t *testing.T) {
	for _, tc := range []struct{ doc, want string }{
		{"accounts:\n- accessKey: short\n  secretKey: 12345678\n", "accounts[0].accessKey: want at least 7"},
		{"accounts:\n- accessKey: longenough\n  secretKey: 123\n", "accounts[0].secretKey"},
		{"accounts:\n- accessKey: longenough\n  secretKey: 12345678\n  topicPerms: [a=PUBB]\n", `accounts[0].topicPerms[0]: "a=PUBB": permission "PUBB"`},
		{"accounts:\n- accessKey: longenough\n  secretKey: 12345678\n  groupPerms: [nogroup]\n", "accounts[0].groupPerms[0]"},
		{"accounts:\n- accessKey: longenough\n  secretKey: 12345678\n  defaultTopicPerm: ALL\n", "accounts[0].defaultTopicPerm"},
		{"accounts:\n- accessKey: longenough\n  secretKey: 12345678\n  whiteRemoteAddress: 1.2.300.4\n", "accounts[0].whiteRemoteAddress"},
		{"accounts:\n- accessKey: longenough\n  secretKey: 12345678\n- accessKey: longenough\n  secretKey: 12345678\n", "appears twice"},
		{"acounts: []\n", "unknown field"},
		{"globalWhiteRemoteAddresses: [1.2.*.4]\n", "globalWhiteRemoteAddresses[0]"},
		{"", "no accounts"},
		{"accounts: [", "plain_acl.yml"},
	} {
		_, err := Parse("plain_acl.yml", []byte(tc.doc))
		if err == nil || !errors.Is(err, ErrConfig) || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%q: got %v, want %q", tc.doc, err, tc.want)
		}
	}
}

func TestAddressPatterns(t *testing.T) {
	for _, tc := range []struct {
		pattern string
		yes, no []string
	}{
		{"*", []string{"1.2.3.4", "::1"}, nil},
		{"", nil, []string{"1.2.3.4"}},
		{"192.168.0.1", []string{"192.168.0.1", "::ffff:192.168.0.1"}, []string{"192.168.0.2"}},
		{"::1", []string{"::1"}, []string{"127.0.0.1"}},
		{"192.168.0.{1,2}", []string{"192.168.0.1", "192.168.0.2"}, []string{"192.168.0.3", "192.168.1.1"}},
		{"192.168.*", []string{"192.168.9.9"}, []string{"192.169.0.1", "::1"}},
		{"192.168.1.*", []string{"192.168.1.200"}, []string{"192.168.2.1"}},
		{"192.168.1.1-20", []string{"192.168.1.1", "192.168.1.20"}, []string{"192.168.1.21", "192.168.1.0"}},
		{"10.1-5.*.*", []string{"10.3.9.9"}, []string{"10.6.0.0"}},
	} {
		m, err := parseAddr(tc.pattern)
		if err != nil {
			t.Fatalf("%q: %v", tc.pattern, err)
		}
		for _, a := range tc.yes {
			if !m.match(netip.MustParseAddr(a)) {
				t.Errorf("%q should match %s", tc.pattern, a)
			}
		}
		for _, a := range tc.no {
			if m.match(netip.MustParseAddr(a)) {
				t.Errorf("%q should not match %s", tc.pattern, a)
			}
		}
	}
	for _, bad := range []string{"1.2.3.4.5", "1.2.*.4", "1.2.3.{1,x}", "1.2.{1}.3", "1.2.3.9-1", "host.example"} {
		if _, err := parseAddr(bad); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}

func TestWatcherReload(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "plain_acl.yml")
	if err := os.WriteFile(path, []byte(sample), 0o600); err != nil {
		t.Fatal(err)
	}
	clk := clocktesting.NewFakeClock(time.Unix(1000, 0))
	var logs strings.Builder
	w, err := Load(path, WatchOptions{Interval: time.Second, Clock: clk, Logger: newTextLogger(&logs)})
	if err != nil {
		t.Fatal(err)
	}
	wantDeny(t, w.Check(send(userKey, "topicA")), "No permission for topic:topicA")

	// A bad edit keeps the last good policy and logs once, however often it is looked at.
	if err := os.WriteFile(path, []byte("accounts: [\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	for range 3 {
		if changed, err := w.Reload(); changed || (err == nil && !strings.Contains(logs.String(), "invalid")) {
			t.Fatalf("bad file: changed=%v err=%v", changed, err)
		}
	}
	if n := strings.Count(logs.String(), "keeping the last good policy"); n != 1 {
		t.Fatalf("%d log lines for one bad edit:\n%s", n, logs.String())
	}
	wantDeny(t, w.Check(send(userKey, "topicA")), "No permission for topic:topicA")

	// A good edit takes effect through Run's ticker.
	if err := os.WriteFile(path, []byte(strings.Replace(sample, "topicA=DENY", "topicA=PUB", 1)), 0o600); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := contextWithCancel()
	defer cancel()
	done := make(chan struct{})
	go func() { w.Run(ctx); close(done) }()
	deadline := time.Now().Add(10 * time.Second)
	for w.Check(send(userKey, "topicA")) != nil {
		if time.Now().After(deadline) {
			t.Fatal("reload did not take effect")
		}
		clk.Step(time.Second)
		time.Sleep(time.Millisecond)
	}
	cancel()
	<-done

	// A file that disappears keeps the policy too.
	os.Remove(path)
	if _, err := w.Reload(); err == nil {
		t.Fatal("missing file: no error")
	}
	if err := w.Check(send(userKey, "topicA")); err != nil {
		t.Fatalf("policy lost with the file: %v", err)
	}
}
