package cli

import (
	"bytes"
	"context"
	"strings"
	"testing"
	"time"

	v2 "github.com/apache/rocketmq-clients/golang/v5/protocol/v2"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/tide-run/tide/internal/promtest"
	"github.com/tide-run/tide/mq/admin"
)

func TestBrokerRejectsBadFlush(t *testing.T) {
	var out, errOut bytes.Buffer
	code := Main([]string{"broker", "--flush", "sometimes", "--data-dir", t.TempDir()}, strings.NewReader(""), &out, &errOut)
	if code != 2 || !strings.Contains(errOut.String(), "--flush") {
		t.Fatalf("exit %d stderr %q", code, errOut.String())
	}
}

func TestBrokerServesAndStops(t *testing.T) {
	var out, errOut syncBuffer
	root := NewRootCommand(strings.NewReader(""), &out, &errOut)
	root.SetArgs([]string{"broker", "--namesrv-port", "0", "--broker-port", "0", "--grpc-port", "0", "--data-dir", t.TempDir(), "--flush", "sync",
		"--health-addr", "127.0.0.1:0"})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- root.ExecuteContext(ctx) }()
	deadline := time.Now().Add(10 * time.Second)
	for !strings.Contains(out.String(), "health ") {
		if time.Now().After(deadline) {
			t.Fatalf("no endpoints printed; stderr %s", errOut.String())
		}
		time.Sleep(10 * time.Millisecond)
	}
	var ns, health string
	for _, line := range strings.Split(out.String(), "\n") {
		if rest, ok := strings.CutPrefix(line, "name server "); ok {
			ns = rest
		}
		if rest, ok := strings.CutPrefix(line, "health "); ok {
			health = rest
		}
	}
	c, err := admin.Dial(ctx, ns)
	if err != nil {
		t.Fatal(err)
	}
	if err := c.CreateTopic(ctx, "cli-topic", 2); err != nil {
		t.Fatal(err)
	}
	c.Close()
	// --health-addr also serves the broker's metrics: the one topic creation is one answered request.
	promtest.WaitValue(t, health+"/metrics", nil, "rocketmq_rpc_latency",
		map[string]string{"request_code": "update_and_create_topic", "response_code": "success"}, 1, 5*time.Second)
	// The RocketMQ 5 endpoint is printed too and routes the topic (plaintext here; TLS on the same port).
	for !strings.Contains(out.String(), "grpc ") {
		if time.Now().After(deadline) {
			t.Fatalf("no grpc endpoint printed: %s", out.String())
		}
		time.Sleep(10 * time.Millisecond)
	}
	var grpcAddr string
	for _, line := range strings.Split(out.String(), "\n") {
		if rest, ok := strings.CutPrefix(line, "grpc "); ok {
			grpcAddr = rest
		}
	}
	cc, err := grpc.NewClient(grpcAddr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer cc.Close()
	r, err := v2.NewMessagingServiceClient(cc).QueryRoute(ctx, &v2.QueryRouteRequest{Topic: &v2.Resource{Name: "cli-topic"}})
	if err != nil || r.GetStatus().GetCode() != v2.Code_OK || len(r.GetMessageQueues()) != 2 {
		t.Fatalf("route over the printed grpc endpoint %s: %v %v", grpcAddr, r, err)
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("broker exited with %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("broker did not stop")
	}
}
