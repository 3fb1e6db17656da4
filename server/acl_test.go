package server_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/apache/rocketmq-client-go/v2/primitive"
	"github.com/apache/rocketmq-client-go/v2/producer"

	"github.com/tide-run/tide/server"
)

// TestEmbeddedBrokerWithACL runs tide with --acl: Brokers and Triggers keep working (tide's eventing signs with its
// internal admin account), a RocketMQSource whose Secret holds an account's keys delivers, one with a wrong secret
// reports BadCredentials with Apache's text and recovers when the Secret is fixed, and `tide mq` needs keys.
func TestEmbeddedBrokerWithACL(t *testing.T) {
	dir := t.TempDir()
	aclFile := filepath.Join(dir, "plain_acl.yml")
	if err := os.WriteFile(aclFile, []byte(`
accounts:
  - accessKey: orders-app
    secretKey: orders-secret
    defaultTopicPerm: DENY
    defaultGroupPerm: SUB
    topicPerms: [orders=PUB|SUB]
`), 0o600); err != nil {
		t.Fatal(err)
	}
	p := newPlatform(t, server.Options{DataDir: filepath.Join(dir, "data"), ACLFile: aclFile,
		Eventing: server.EventingOptions{StatsInterval: 100 * time.Millisecond}})
	eventually(t, 15*time.Second, func() error {
		if !p.srv.Ready() {
			return fmt.Errorf("not ready")
		}
		return nil
	})
	ns := p.endpoint("rocketmq name server")

	// Eventing's own clients: a Broker (topic created with an admin request) and a Trigger (a consumer group).
	sub := newReceiver(t)
	p.apply(fmt.Sprintf(`
apiVersion: eventing.knative.dev/v1
kind: Broker
metadata: {name: default}
---
apiVersion: eventing.knative.dev/v1
kind: Trigger
metadata: {name: all}
spec:
  broker: default
  subscriber: {uri: %s}
`, sub.URL))
	p.waitReady("broker", "default")
	p.waitReady("trigger", "all")
	p.postUntilDelivered(t, "/default/default", "via-broker", sub)

	// An application with the account's keys produces; without keys it is refused.
	prod, err := producer.NewDefaultProducer(producer.WithNsResolver(primitive.NewPassthroughResolver([]string{ns})),
		producer.WithGroupName("orders-producer"), producer.WithInstanceName(fmt.Sprintf("acl-%d", time.Now().UnixNano())),
		producer.WithRetry(2), producer.WithCredentials(primitive.Credentials{AccessKey: "orders-app", SecretKey: "orders-secret"}))
	if err != nil {
		t.Fatal(err)
	}
	if err := prod.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = prod.Shutdown() })
	send(t, prod, "orders", "", `{"n":1}`)
	anon := newProducer(t, ns)
	if _, err := anon.SendSync(context.Background(), primitive.NewMessage("orders", []byte("x"))); err == nil ||
		!strings.Contains(err.Error(), "No accessKey is configured") {
		t.Fatalf("unsigned send: %v", err)
	}

	// A RocketMQSource with the right keys in its Secret delivers.
	sink := newReceiver(t)
	p.apply(fmt.Sprintf(`
apiVersion: v1
kind: Secret
metadata: {name: orders-acl}
stringData: {accessKey: orders-app, secretKey: orders-secret}
---
apiVersion: v1
kind: Secret
metadata: {name: wrong-acl}
stringData: {accessKey: orders-app, secretKey: not-the-secret}
---
apiVersion: sources.knative.dev/v1alpha1
kind: RocketMQSource
metadata: {name: good}
spec:
  topic: orders
  initialOffset: earliest
  accessKey: {secretKeyRef: {name: orders-acl, key: accessKey}}
  secretKey: {secretKeyRef: {name: orders-acl, key: secretKey}}
  sink: {uri: %s}
---
apiVersion: sources.knative.dev/v1alpha1
kind: RocketMQSource
metadata: {name: bad}
spec:
  topic: orders
  initialOffset: earliest
  accessKey: {secretKeyRef: {name: wrong-acl, key: accessKey}}
  secretKey: {secretKeyRef: {name: wrong-acl, key: secretKey}}
  sink: {uri: %s}
`, sink.URL, sink.URL))
	p.waitReady("rocketmqsource", "good")
	eventually(t, 20*time.Second, func() error {
		if evs, _ := sink.snapshot(); len(evs) == 0 {
			return fmt.Errorf("no event from the source")
		}
		return nil
	})

	// Wrong keys: BadCredentials, with the broker's reason.
	eventually(t, 15*time.Second, func() error {
		obj := p.getJSON("rocketmqsource", "bad")
		if s, r := condReason(obj, "Deployed"); s != "False" || r != "BadCredentials" {
			return fmt.Errorf("Deployed %s %s", s, r)
		}
		if msg := fmt.Sprint(obj["status"]); !strings.Contains(msg, "Check signature failed for accessKey=orders-app") {
			return fmt.Errorf("status without the broker's reason: %s", msg)
		}
		return nil
	})
	// Fixing the Secret fixes the source (the reconciler retries).
	p.apply(`
apiVersion: v1
kind: Secret
metadata: {name: wrong-acl}
stringData: {accessKey: orders-app, secretKey: orders-secret}
`)
	p.waitReadyWithin("rocketmqsource", "bad", "60s")

	// tide mq: the keys are needed, and admin commands need an admin account.
	_, errOut, code := p.run("", "mq", "--namesrv", ns, "topic", "list")
	if code == 0 || !strings.Contains(errOut, "No accessKey is configured") || !strings.Contains(errOut, "--access-key") {
		t.Fatalf("tide mq without keys: exit %d %s", code, errOut)
	}
	out, errOut, code := p.run("", "mq", "--namesrv", ns, "--access-key", "orders-app", "--secret-key", "orders-secret", "topic", "list")
	if code != 0 || !strings.Contains(out, "orders") {
		t.Fatalf("tide mq with keys: exit %d %s %s", code, out, errOut)
	}
	_, errOut, code = p.run("", "mq", "--namesrv", ns, "--access-key", "orders-app", "--secret-key", "orders-secret", "topic", "create", "more")
	if code == 0 || !strings.Contains(errOut, "Need admin permission for request code=17") {
		t.Fatalf("tide mq topic create as a non-admin: exit %d %s", code, errOut)
	}
	_, errOut, code = p.run("", "mq", "--namesrv", ns, "--access-key", "orders-app", "topic", "list")
	if code != 2 || !strings.Contains(errOut, "--secret-key") {
		t.Fatalf("tide mq with one key: exit %d %s", code, errOut)
	}

	// A deleted Trigger's consumer group is deleted (an admin request, signed with the internal account).
	triggerGroups := func() int {
		out := p.mustRun("", "mq", "--namesrv", ns, "--access-key", "orders-app", "--secret-key", "orders-secret", "groups", "-o", "json")
		return strings.Count(out, `"tide-trigger-default-all-`)
	}
	if n := triggerGroups(); n != 1 {
		t.Fatalf("%d trigger groups before the delete, want 1", n)
	}
	p.mustRun("", "delete", "trigger", "all")
	p.mustRun("", "wait", "trigger", "all", "--for=delete", "--timeout=20s")
	if n := triggerGroups(); n != 0 {
		t.Fatalf("%d trigger groups after the delete, want 0", n)
	}
}

// TestBadACLFileStopsStart: tide up with an ACL file that does not parse does not start, and says which file and
// field.
func TestBadACLFileStopsStart(t *testing.T) {
	dir := t.TempDir()
	aclFile := filepath.Join(dir, "plain_acl.yml")
	if err := os.WriteFile(aclFile, []byte("accounts:\n- accessKey: orders-app\n  secretKey: orders-secret\n  groupPerms: [readers]\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	srv, err := server.New(server.Options{DataDir: filepath.Join(dir, "data"), ACLFile: aclFile, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	err = srv.Start(context.Background())
	defer srv.Shutdown(context.Background())
	if err == nil || !strings.Contains(err.Error(), aclFile) || !strings.Contains(err.Error(), "accounts[0].groupPerms[0]") {
		t.Fatalf("start with a bad ACL file: %v", err)
	}
}
