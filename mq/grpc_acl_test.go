package mq_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"path/filepath"
	"strings"
	"testing"
	"time"

	rmq "github.com/apache/rocketmq-clients/golang/v5"
	"github.com/apache/rocketmq-clients/golang/v5/credentials"
	v2 "github.com/apache/rocketmq-clients/golang/v5/protocol/v2"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	grpcstatus "google.golang.org/grpc/status"

	"github.com/tide-run/tide/mq"
	"github.com/tide-run/tide/mq/acl"
	"github.com/tide-run/tide/mq/mqmeta"
)

// acl5Doc: an application account that may publish and subscribe orders5 as group orders-consumers, and a reader
// that may only subscribe orders5 as group readers.
const acl5Doc = `
accounts:
  - accessKey: orders-app
    secretKey: orders-secret
    defaultTopicPerm: DENY
    defaultGroupPerm: DENY
    topicPerms: [orders5=PUB|SUB]
    groupPerms: [orders-consumers=SUB]
  - accessKey: reader-app
    secretKey: reader-secret
    defaultTopicPerm: DENY
    defaultGroupPerm: DENY
    topicPerms: [orders5=SUB, notes5=PUB]
    groupPerms: [readers=SUB]
`

var (
	ordersCreds = &credentials.SessionCredentials{AccessKey: "orders-app", AccessSecret: "orders-secret"}
	readerCreds = &credentials.SessionCredentials{AccessKey: "reader-app", AccessSecret: "reader-secret"}
)

// startProducer5 starts a 5.x producer and returns Start's error (the producer is stopped at the end either way).
func startProducer5(t *testing.T, srv *mq.Server, creds *credentials.SessionCredentials, opts ...rmq.ProducerOption) (rmq.Producer, error) {
	t.Helper()
	p, err := rmq.NewProducer(&rmq.Config{Endpoint: srv.GRPCAddr(), Credentials: creds}, opts...)
	if err != nil {
		t.Fatal(err)
	}
	err = p.Start()
	t.Cleanup(func() { _ = p.GracefulStop() })
	return p, err
}

func startSimpleConsumer5(t *testing.T, srv *mq.Server, creds *credentials.SessionCredentials, group, topic string) (rmq.SimpleConsumer, error) {
	t.Helper()
	c, err := rmq.NewSimpleConsumer(&rmq.Config{Endpoint: srv.GRPCAddr(), ConsumerGroup: group, Credentials: creds},
		rmq.WithSimpleAwaitDuration(time.Second), rmq.WithSimpleSubscriptionExpressions(map[string]*rmq.FilterExpression{topic: rmq.SUB_ALL}))
	if err != nil {
		t.Fatal(err)
	}
	err = c.Start()
	t.Cleanup(func() { _ = c.GracefulStop() })
	return c, err
}

func wantErrText(t *testing.T, what string, err error, parts ...string) {
	t.Helper()
	if err == nil {
		t.Fatalf("%s: no error, want one containing %q", what, parts)
	}
	for _, p := range parts {
		if !strings.Contains(err.Error(), p) {
			t.Fatalf("%s: %v, want it to contain %q", what, err, p)
		}
	}
}

// signedCtx is what a 5.x client puts in its metadata, with the given authorization value ("" none).
func signedCtx(ctx context.Context, auth, date string) context.Context {
	kv := []string{"x-mq-client-id", "raw-acl@1", acl.GRPCDateTime, date}
	if auth != "" {
		kv = append(kv, acl.GRPCAuthorization, auth)
	}
	return metadata.AppendToOutgoingContext(ctx, kv...)
}

// With --acl the gRPC port is on and checks every call with the remoting port's accounts, as Apache's proxy does
// with plain ACL: the official Go 5.x client with the right keys sends and receives; a wrong secret, no keys and a
// missing permission are refused with the v2 codes and Apache's text; a forged signature stores nothing.
func TestGRPCACL(t *testing.T) {
	t.Parallel() // its own server on free ports; most of the time is the clients waiting
	path := filepath.Join(t.TempDir(), "plain_acl.yml")
	writeACL(t, path, acl5Doc)
	opts := grpcOpts(t)
	opts.ACLFile = path
	srv := start(t, opts)
	if srv.GRPCAddr() == "" {
		t.Fatal("the gRPC endpoint is off under ACL")
	}
	createTopic5(t, srv, "orders5", mqmeta.MessageTypeNormal, 2)
	createTopic5(t, srv, "notes5", mqmeta.MessageTypeNormal, 1)
	ctx := context.Background()

	// The right keys: send, receive, ack.
	p, err := startProducer5(t, srv, ordersCreds, rmq.WithTopics("orders5"))
	if err != nil {
		t.Fatalf("producer with the right keys: %v", err)
	}
	if _, err := p.Send(ctx, &rmq.Message{Topic: "orders5", Body: []byte("m1")}); err != nil {
		t.Fatalf("send with the right keys: %v", err)
	}
	c, err := startSimpleConsumer5(t, srv, ordersCreds, "orders-consumers", "orders5")
	if err != nil {
		t.Fatalf("consumer with the right keys: %v", err)
	}
	if got := receiveN(t, c, 1, 10*time.Second, true, 20*time.Second); string(got[0].GetBody()) != "m1" {
		t.Fatalf("received %q, want m1", got[0].GetBody())
	}

	// A wrong secret and no keys: Start fails on its first call (the route query), UNAUTHORIZED.
	_, err = startProducer5(t, srv, &credentials.SessionCredentials{AccessKey: "orders-app", AccessSecret: "not-the-secret"}, rmq.WithTopics("orders5"))
	wantErrText(t, "wrong secret", err, "CODE: UNAUTHORIZED, MESSAGE: Check signature failed for accessKey=orders-app")
	_, err = startProducer5(t, srv, nil, rmq.WithTopics("orders5"))
	wantErrText(t, "no keys", err, "CODE: UNAUTHORIZED, MESSAGE: No accessKey is configured")

	// Missing rights. A send without PUB: FORBIDDEN (the route query needs PUB or SUB, which the reader has).
	rp, err := startProducer5(t, srv, readerCreds, rmq.WithTopics("notes5"))
	if err != nil {
		t.Fatalf("reader's producer without topics: %v", err)
	}
	_, err = rp.Send(ctx, &rmq.Message{Topic: "orders5", Body: []byte("not allowed")})
	if !isCode(err, int32(v2.Code_FORBIDDEN)) {
		t.Fatalf("send without PUB: %v, want FORBIDDEN", err)
	}
	wantErrText(t, "send without PUB", err, "No permission for topic:orders5")
	// A producer declaring the topic: its settings are refused on the Telemetry stream, so Start fails.
	_, err = startProducer5(t, srv, readerCreds, rmq.WithTopics("orders5"))
	wantErrText(t, "producer of a topic without PUB", err, "PermissionDenied", "No permission for topic:orders5")
	// A consumer in a group the account may not use.
	_, err = startSimpleConsumer5(t, srv, readerCreds, "orders-consumers", "orders5")
	wantErrText(t, "consumer in a group without SUB", err, "PermissionDenied", "No default permission for group:orders-consumers")

	// A forged signature (the right access key, a signature not made with its secret) changes nothing: the same
	// raw requests signed properly are served, so only the signature differs.
	raw := rawConn(t, srv.GRPCAddr(), true)
	date := time.Now().UTC().Format("20060102T150405Z")
	junk := make([]byte, 20)
	rand.Read(junk)
	forged := "MQv2-HMAC-SHA1 Credential=orders-app//Rocketmq, SignedHeaders=x-mq-date-time, Signature=" + hex.EncodeToString(junk)
	good := acl.Credentials{AccessKey: "orders-app", SecretKey: "orders-secret"}.SignGRPC(date)
	msg := func(id, body string) *v2.SendMessageRequest {
		return &v2.SendMessageRequest{Messages: []*v2.Message{{Topic: &v2.Resource{Name: "orders5"}, Body: []byte(body),
			SystemProperties: &v2.SystemProperties{MessageId: id, MessageType: v2.MessageType_NORMAL, BodyEncoding: v2.Encoding_IDENTITY}}}}
	}
	cctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	for _, auth := range []string{forged, ""} {
		sr, err := raw.SendMessage(signedCtx(cctx, auth, date), msg("01FORGED", "forged"))
		if err != nil || sr.GetStatus().GetCode() != v2.Code_UNAUTHORIZED {
			t.Fatalf("send signed %q: %v %v, want UNAUTHORIZED", auth, sr, err)
		}
	}
	// A receive with the forged signature takes nothing (it would otherwise hide m2 below for its invisible time).
	rs, err := raw.ReceiveMessage(signedCtx(cctx, forged, date), &v2.ReceiveMessageRequest{Group: &v2.Resource{Name: "orders-consumers"},
		MessageQueue: &v2.MessageQueue{Topic: &v2.Resource{Name: "orders5"}}, BatchSize: 32, AutoRenew: false})
	if err != nil {
		t.Fatal(err)
	}
	first, err := rs.Recv()
	if err != nil || first.GetStatus().GetCode() != v2.Code_UNAUTHORIZED {
		t.Fatalf("receive with a forged signature: %v %v, want UNAUTHORIZED", first, err)
	}
	// Telemetry: the stream ends with PERMISSION_DENIED and the text.
	ts, err := raw.Telemetry(signedCtx(cctx, forged, date))
	if err != nil {
		t.Fatal(err)
	}
	if err := ts.Send(&v2.TelemetryCommand{Command: &v2.TelemetryCommand_Settings{Settings: &v2.Settings{ClientType: v2.ClientType_PRODUCER.Enum(),
		PubSub: &v2.Settings_Publishing{Publishing: &v2.Publishing{Topics: []*v2.Resource{{Name: "orders5"}}}}}}}); err != nil {
		t.Fatal(err)
	}
	_, err = ts.Recv()
	if st, _ := grpcstatus.FromError(err); st.Code() != codes.PermissionDenied || st.Message() != "Check signature failed for accessKey=orders-app" {
		t.Fatalf("telemetry with a forged signature: %v", err)
	}
	if sr, err := raw.SendMessage(signedCtx(cctx, good, date), msg("01SIGNED", "signed")); err != nil || sr.GetStatus().GetCode() != v2.Code_OK {
		t.Fatalf("the same send signed properly: %v %v", sr, err)
	}
	got := receiveN(t, c, 1, 10*time.Second, true, 20*time.Second)
	if string(got[0].GetBody()) != "signed" {
		t.Fatalf("received %q, want only the properly signed message", got[0].GetBody())
	}
	if mvs, err := c.Receive(ctx, 32, 10*time.Second); len(mvs) != 0 || !isNotFound(err) {
		t.Fatalf("after the signed message: %d more messages (%v); the forged send was stored", len(mvs), err)
	}
}
