package mq_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/apache/rocketmq-client-go/v2/consumer"
	"github.com/apache/rocketmq-client-go/v2/primitive"
	"github.com/apache/rocketmq-client-go/v2/producer"

	"github.com/tide-run/tide/mq"
	"github.com/tide-run/tide/mq/acl"
	"github.com/tide-run/tide/mq/remoting"
)

// aclDoc is Apache's sample plain_acl.yml shape: one ordinary account (the client examples' keys) and an admin.
const aclDoc = `
globalWhiteRemoteAddresses:
  - 10.10.103.*
accounts:
  - accessKey: RocketMQ
    secretKey: 12345678
    defaultTopicPerm: DENY
    defaultGroupPerm: DENY
    topicPerms:
      - test=PUB|SUB
      - onlypub=PUB
      - denied=DENY
    groupPerms:
      - testGroup=SUB
  - accessKey: rocketmq2
    secretKey: 87654321
    admin: true
`

var (
	goodKeys  = primitive.Credentials{AccessKey: "RocketMQ", SecretKey: "12345678"}
	adminKeys = acl.Credentials{AccessKey: "rocketmq2", SecretKey: "87654321"}
)

func writeACL(t *testing.T, path, doc string) {
	t.Helper()
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, []byte(doc), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, path); err != nil {
		t.Fatal(err)
	}
}

func startACL(t *testing.T, doc string) (*mq.Server, string) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "plain_acl.yml")
	writeACL(t, path, doc)
	srv := start(t, mq.Options{ACLFile: path, ACLReloadInterval: 20 * time.Millisecond})
	createTopic(t, srv, "test", 2)
	createTopic(t, srv, "denied", 1)
	createTopic(t, srv, "onlypub", 1)
	return srv, path
}

func sendErr(t *testing.T, srv *mq.Server, topic string, opts ...producer.Option) error {
	t.Helper()
	p := newProducer(t, srv, opts...)
	_, err := p.SendSync(context.Background(), primitive.NewMessage(topic, []byte("hello")))
	return err
}

// wantACLError checks the error the official client surfaces: Apache's response (code 1, the AclException text).
func wantACLError(t *testing.T, err error, msg string) {
	t.Helper()
	want := "CODE: 1, DESC: org.apache.rocketmq.acl.common.AclException: " + msg
	if err == nil || !strings.Contains(err.Error(), want) {
		t.Fatalf("got %v, want an error containing %q", err, want)
	}
}

// TestACLOfficialClient is the client's producer_acl / consumer_acl examples against the ACL-enabled broker, then
// every way to be refused, each with Apache's code and text as the official Go client reports it.
func TestACLOfficialClient(t *testing.T) {
	srv, _ := startACL(t, aclDoc)

	// producer_acl: the right keys send.
	p := newProducer(t, srv, producer.WithCredentials(goodKeys))
	ids := sendN(t, p, "test", 20, "")

	// consumer_acl: the right keys consume (group testGroup has SUB; offsets, heartbeats, rebalance all signed).
	c := newPushConsumer(t, srv, "testGroup", consumer.WithCredentials(goodKeys), consumer.WithConsumeFromWhere(consumer.ConsumeFromFirstOffset))
	got := consume(t, c, "test", consumer.MessageSelector{})
	waitFor(t, 30*time.Second, "20 messages", func() bool { return got.count() >= len(ids) })

	t.Run("wrong secret", func(t *testing.T) {
		wantACLError(t, sendErr(t, srv, "test", producer.WithCredentials(primitive.Credentials{AccessKey: "RocketMQ", SecretKey: "wrong-secret"})),
			"Check signature failed for accessKey=RocketMQ")
	})
	t.Run("unknown access key", func(t *testing.T) {
		wantACLError(t, sendErr(t, srv, "test", producer.WithCredentials(primitive.Credentials{AccessKey: "stranger", SecretKey: "12345678"})),
			"No acl config for stranger")
	})
	t.Run("no credentials", func(t *testing.T) {
		wantACLError(t, sendErr(t, srv, "test"), "No accessKey is configured")
	})
	t.Run("DENY topic", func(t *testing.T) {
		wantACLError(t, sendErr(t, srv, "denied", producer.WithCredentials(goodKeys)), "No permission for topic:denied")
	})
	t.Run("topic not listed, default DENY", func(t *testing.T) {
		createTopic(t, srv, "unlisted", 1)
		wantACLError(t, sendErr(t, srv, "unlisted", producer.WithCredentials(goodKeys)), "No default permission for topic:unlisted")
	})

	t.Run("group without SUB", func(t *testing.T) {
		// The push consumer's Start does not report refused heartbeats (client behaviour, as against Apache), so the
		// refusal is checked on the wire with a pull signed like the client signs, and the consumer is checked to
		// receive nothing while testGroup (above) received everything.
		rc := dialSigned(t, srv.BrokerAddr(), acl.Credentials{AccessKey: "RocketMQ", SecretKey: "12345678"})
		resp, err := rc.Invoke(context.Background(), remoting.NewRequest(remoting.PullMessage, map[string]string{
			"consumerGroup": "otherGroup", "topic": "test", "queueId": "0", "queueOffset": "0", "maxMsgNums": "32",
			"sysFlag": "0", "commitOffset": "0", "suspendTimeoutMillis": "0", "subscription": "*", "subVersion": "0"}, nil))
		if err != nil {
			t.Fatal(err)
		}
		if resp.Code != remoting.SystemError || resp.Remark != "org.apache.rocketmq.acl.common.AclException: No default permission for group:otherGroup" {
			t.Fatalf("pull by a group without SUB: code %d %q", resp.Code, resp.Remark)
		}
		bad := newPushConsumer(t, srv, "otherGroup", consumer.WithCredentials(goodKeys), consumer.WithConsumeFromWhere(consumer.ConsumeFromFirstOffset))
		other := consume(t, bad, "test", consumer.MessageSelector{})
		sendN(t, p, "test", 1, "")
		waitFor(t, 30*time.Second, "testGroup to get the new message", func() bool { return got.count() > len(ids) })
		time.Sleep(2 * time.Second) // the refused group had the same time to pull as testGroup
		if n := other.count(); n != 0 {
			t.Fatalf("group without SUB consumed %d messages", n)
		}
	})

	t.Run("PUB only cannot pull", func(t *testing.T) {
		if err := sendErr(t, srv, "onlypub", producer.WithCredentials(goodKeys)); err != nil {
			t.Fatal(err)
		}
		rc := dialSigned(t, srv.BrokerAddr(), acl.Credentials{AccessKey: "RocketMQ", SecretKey: "12345678"})
		resp, err := rc.Invoke(context.Background(), remoting.NewRequest(remoting.PullMessage, map[string]string{
			"consumerGroup": "testGroup", "topic": "onlypub", "queueId": "0", "queueOffset": "0", "maxMsgNums": "32",
			"sysFlag": "0", "commitOffset": "0", "suspendTimeoutMillis": "0", "subscription": "*", "subVersion": "0"}, nil))
		if err != nil {
			t.Fatal(err)
		}
		if resp.Code != remoting.SystemError || !strings.HasSuffix(resp.Remark, "No permission for topic:onlypub") {
			t.Fatalf("pull of a PUB-only topic: code %d %q", resp.Code, resp.Remark)
		}
	})

	t.Run("admin codes need admin", func(t *testing.T) {
		user := dialSigned(t, srv.BrokerAddr(), acl.Credentials{AccessKey: "RocketMQ", SecretKey: "12345678"})
		create := func(rc *remoting.Client) *remoting.Command {
			resp, err := rc.Invoke(context.Background(), remoting.NewRequest(remoting.UpdateAndCreateTopic, map[string]string{
				"topic": "made", "defaultTopic": "TBW102", "readQueueNums": "1", "writeQueueNums": "1", "perm": "6",
				"topicFilterType": "SINGLE_TAG", "topicSysFlag": "0", "order": "false"}, nil))
			if err != nil {
				t.Fatal(err)
			}
			return resp
		}
		if resp := create(user); resp.Code != remoting.SystemError || !strings.HasSuffix(resp.Remark, "Need admin permission for request code=17, but accessKey=RocketMQ is not") {
			t.Fatalf("user creating a topic: code %d %q", resp.Code, resp.Remark)
		}
		if _, ok := srv.Topic("made"); ok {
			t.Fatal("refused request created the topic")
		}
		if resp := create(dialSigned(t, srv.BrokerAddr(), adminKeys)); resp.Code != remoting.Success {
			t.Fatalf("admin creating a topic: code %d %q", resp.Code, resp.Remark)
		}
	})

	t.Run("name server is not checked", func(t *testing.T) {
		// As in Apache RocketMQ, routes are served to anyone: ACL is the broker's.
		rc, err := remoting.Dial(context.Background(), srv.NameServerAddr())
		if err != nil {
			t.Fatal(err)
		}
		defer rc.Close()
		resp, err := rc.Invoke(context.Background(), remoting.NewRequest(remoting.GetRouteInfoByTopic, map[string]string{"topic": "test"}, nil))
		if err != nil || resp.Code != remoting.Success {
			t.Fatalf("unsigned route query: %v %+v", err, resp)
		}
	})
}

// TestACLReloadAndWhitelist changes the file under a running broker: the decision changes without a restart, a bad
// edit keeps the last good policy, and the global whitelist lets a credential-less client in only from listed
// addresses.
func TestACLReloadAndWhitelist(t *testing.T) {
	srv, path := startACL(t, aclDoc)
	p := newProducer(t, srv, producer.WithCredentials(goodKeys))
	sendN(t, p, "test", 1, "")
	anon := newProducer(t, srv)
	send := func(pr interface {
		SendSync(context.Context, ...*primitive.Message) (*primitive.SendResult, error)
	}, topic string) error {
		_, err := pr.SendSync(context.Background(), primitive.NewMessage(topic, []byte("x")))
		return err
	}
	wantACLError(t, send(anon, "test"), "No accessKey is configured") // 127.0.0.1 is not 10.10.103.*

	// Deny "test" to the account: refused without a restart.
	writeACL(t, path, strings.Replace(aclDoc, "test=PUB|SUB", "test=DENY", 1))
	waitFor(t, 10*time.Second, "the reload to deny test", func() bool { return send(p, "test") != nil })
	wantACLError(t, send(p, "test"), "No permission for topic:test")

	// A broken file keeps that policy.
	writeACL(t, path, "accounts: [\n")
	time.Sleep(200 * time.Millisecond) // ten reload intervals
	wantACLError(t, send(p, "test"), "No permission for topic:test")

	// Whitelist loopback: the credential-less producer is let in.
	writeACL(t, path, strings.Replace(aclDoc, "10.10.103.*", "127.0.0.1", 1))
	waitFor(t, 10*time.Second, "the whitelist to take effect", func() bool { return send(anon, "test") == nil })
	if err := send(p, "test"); err != nil {
		t.Fatalf("signed send after reload: %v", err)
	}
}

// TestACLRequiredBeyondLoopback: a broker listening on a non-loopback address needs an ACL file or an explicit
// InsecureNoAuth; a bad ACL file stops Start with the file and field named.
func TestACLRequiredBeyondLoopback(t *testing.T) {
	_, err := mq.New(mq.Options{DataDir: t.TempDir(), Host: "0.0.0.0"})
	if !errors.Is(err, mq.ErrInsecure) || !strings.Contains(err.Error(), "--insecure-no-auth") || !strings.Contains(err.Error(), "--acl") {
		t.Fatalf("0.0.0.0 without ACL: %v", err)
	}
	if _, err := mq.New(mq.Options{DataDir: t.TempDir(), Host: "0.0.0.0", InsecureNoAuth: true}); err != nil {
		t.Fatal(err)
	}
	if _, err := mq.New(mq.Options{DataDir: t.TempDir(), Host: "0.0.0.0", ACLFile: "/some/file"}); err != nil {
		t.Fatal(err)
	}
	if _, err := mq.New(mq.Options{DataDir: t.TempDir(), Host: "::1"}); err != nil {
		t.Fatal(err)
	}

	path := filepath.Join(t.TempDir(), "acl.yml")
	writeACL(t, path, "accounts:\n- accessKey: RocketMQ\n  secretKey: 12345678\n  topicPerms: [a=PUBSUB]\n")
	srv, err := mq.New(mq.Options{DataDir: t.TempDir(), ACLFile: path, Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	err = srv.Start(context.Background())
	if err == nil || !errors.Is(err, acl.ErrConfig) || !strings.Contains(err.Error(), path) || !strings.Contains(err.Error(), "accounts[0].topicPerms[0]") {
		t.Fatalf("bad ACL file: %v", err)
	}
}

func dialSigned(t *testing.T, addr string, creds acl.Credentials) *remoting.Client {
	t.Helper()
	rc, err := remoting.Dial(context.Background(), addr)
	if err != nil {
		t.Fatal(err)
	}
	rc.Sign = func(c *remoting.Command) { c.ExtFields = creds.Sign(c.ExtFields, c.Body) }
	t.Cleanup(func() { rc.Close() })
	return rc
}
