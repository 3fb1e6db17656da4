package cli

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/apache/rocketmq-client-go/v2"
	"github.com/apache/rocketmq-client-go/v2/primitive"
	"github.com/apache/rocketmq-client-go/v2/producer"
	"github.com/apache/rocketmq-client-go/v2/rlog"

	"github.com/tide-run/tide/mq"
	"github.com/tide-run/tide/mq/broker"
)

// TestAdapterRocketMQFromEnvironment runs `tide adapter rocketmq` configured only through environment variables
// against the embedded broker, delivering to a plain HTTP receiver that knows nothing about CloudEvents.
func TestAdapterRocketMQFromEnvironment(t *testing.T) {
	rlog.SetLogLevel("error")
	srv, err := mq.New(mq.Options{DataDir: t.TempDir(), Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	defer srv.Shutdown(context.Background())
	if err := srv.Broker().CreateTopic(broker.TopicConfig{TopicName: "orders", ReadQueueNums: 2, WriteQueueNums: 2, Perm: broker.PermRW}); err != nil {
		t.Fatal(err)
	}
	p, err := rocketmq.NewProducer(producer.WithNameServer([]string{srv.NameServerAddr()}), producer.WithInstanceName("cli-test-p"), producer.WithGroupName("cli-test-pg"))
	if err != nil {
		t.Fatal(err)
	}
	if err := p.Start(); err != nil {
		t.Fatal(err)
	}
	defer p.Shutdown()
	body := `{"orderId":"123214342","orderStatus":"completed"}`
	r, err := p.SendSync(context.Background(), primitive.NewMessage("orders", []byte(body)).WithTag("completed"))
	if err != nil {
		t.Fatal(err)
	}

	type got struct {
		header http.Header
		body   string
	}
	var mu sync.Mutex
	var received []got
	recv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		mu.Lock()
		received = append(received, got{r.Header.Clone(), string(b)})
		mu.Unlock()
		w.WriteHeader(http.StatusOK) // a plain receiver: 200 with no event is success, no reply
	}))
	defer recv.Close()

	env := map[string]string{
		"K_SINK":                  recv.URL,
		"K_CE_OVERRIDES":          `{"extensions":{"team":"checkout"}}`,
		"ROCKETMQ_NAME_SERVERS":   srv.NameServerAddr(),
		"ROCKETMQ_TOPIC":          "orders",
		"ROCKETMQ_INITIAL_OFFSET": "earliest",
		"ROCKETMQ_SOURCE_NAME":    "orders-source",
	}
	cmd := newAdapterCommand(func(k string) string { return env[k] })
	var errOut bytes.Buffer
	cmd.SetErr(&errOut)
	cmd.SetArgs([]string{"rocketmq"})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- cmd.ExecuteContext(ctx) }()

	deadline := time.Now().Add(20 * time.Second)
	for {
		mu.Lock()
		n := len(received)
		mu.Unlock()
		if n > 0 {
			break
		}
		if time.Now().After(deadline) {
			cancel()
			t.Fatalf("nothing delivered; adapter log:\n%s", errOut.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("adapter exited with %v", err)
		}
	case <-time.After(40 * time.Second):
		t.Fatal("adapter did not stop")
	}
	mu.Lock()
	defer mu.Unlock()
	g := received[0]
	if g.body != body || g.header.Get("Ce-Id") != r.MsgID || g.header.Get("Ce-Type") != "dev.knative.rocketmq.event" ||
		g.header.Get("Ce-Source") != "/apis/v1/namespaces/default/rocketmqsources/orders-source#orders" ||
		g.header.Get("Ce-Subject") != "completed" || g.header.Get("Ce-Team") != "checkout" || g.header.Get("Content-Type") != "application/json" {
		t.Fatalf("received %q with headers %v", g.body, g.header)
	}
	if !strings.Contains(errOut.String(), `"delivered":1`) {
		t.Errorf("exit log lacks the counters: %s", errOut.String())
	}
}
