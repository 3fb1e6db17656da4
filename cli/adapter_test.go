package cli

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/apache/rocketmq-client-go/v2"
	"github.com/apache/rocketmq-client-go/v2/primitive"
	"github.com/apache/rocketmq-client-go/v2/producer"
	"github.com/apache/rocketmq-client-go/v2/rlog"

	"github.com/tide-run/tide/internal/promtest"
	"github.com/tide-run/tide/mq"
	"github.com/tide-run/tide/mq/mqmeta"
	"github.com/tide-run/tide/mq/mqtest"
)

// TestAdapterRocketMQFromEnvironment runs `tide adapter rocketmq` configured only through environment variables
// against the embedded broker, delivering to a plain HTTP receiver that knows nothing about CloudEvents.
func TestAdapterRocketMQFromEnvironment(t *testing.T) {
	rlog.SetLogLevel("error")
	srv := mqtest.RunServer(t, mq.Options{})
	if err := srv.CreateTopic(mqmeta.TopicConfig{TopicName: "orders", ReadQueueNums: 2, WriteQueueNums: 2, Perm: mqmeta.PermRW}); err != nil {
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
		"K_SINK":                     recv.URL,
		"K_CE_OVERRIDES":             `{"extensions":{"team":"checkout"}}`,
		"ROCKETMQ_NAME_SERVERS":      srv.NameServerAddr(),
		"ROCKETMQ_TOPIC":             "orders",
		"ROCKETMQ_INITIAL_OFFSET":    "earliest",
		"ROCKETMQ_SOURCE_NAME":       "orders-source",
		"ROCKETMQ_ADAPTER_HTTP_ADDR": "127.0.0.1:0",
	}
	cmd := newAdapterCommand(func(k string) string { return env[k] })
	var errOut syncBuffer
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
	// The health and metrics endpoint (ROCKETMQ_ADAPTER_HTTP_ADDR) reports the running consumer and the delivery.
	m := regexp.MustCompile(`"addr":"([0-9.:]+)"`).FindStringSubmatch(errOut.String())
	if m == nil {
		t.Fatalf("no endpoint address logged:\n%s", errOut.String())
	}
	f := promtest.WaitValue(t, "http://"+m[1]+"/metrics", nil, "tide_rocketmqsource_messages_total",
		map[string]string{"outcome": "delivered", "name": "orders-source"}, 1, 10*time.Second)
	for _, h := range []string{"tide_rocketmqsource_delivery_duration_seconds", "tide_rocketmqsource_message_age_seconds"} {
		if v, _ := f.Value(h, map[string]string{"name": "orders-source"}); v != 1 {
			t.Errorf("%s count = %v, want 1", h, v)
		}
	}
	for path, want := range map[string]string{"/healthz": "ok"} {
		// The counter moves when the receiver's answer is back, just after the receiver saw the request: poll.
		waitUntil(t, 10*time.Second, func() bool {
			resp, err := http.Get("http://" + m[1] + path)
			if err != nil {
				t.Fatal(err)
			}
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			return resp.StatusCode == 200 && strings.Contains(string(b), want)
		})
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

// TestAdapterRocketMQWaitsForRocketMQ: started before RocketMQ is up, the adapter retries instead of exiting, and
// delivers once the name server appears.
func TestAdapterRocketMQWaitsForRocketMQ(t *testing.T) {
	rlog.SetLogLevel("error")
	ports := make([]int, 2)
	for i := range ports { // two free ports, released for the broker to take later
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		ports[i] = l.Addr().(*net.TCPAddr).Port
		defer l.Close()
		l.Close()
	}
	var mu sync.Mutex
	n := 0
	recv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		n++
		mu.Unlock()
		w.WriteHeader(http.StatusAccepted)
	}))
	defer recv.Close()
	env := map[string]string{"K_SINK": recv.URL, "ROCKETMQ_NAME_SERVERS": fmt.Sprintf("127.0.0.1:%d", ports[0]),
		"ROCKETMQ_TOPIC": "late", "ROCKETMQ_INITIAL_OFFSET": "earliest"}
	cmd := newAdapterCommand(func(k string) string { return env[k] })
	var errOut syncBuffer
	cmd.SetErr(&errOut)
	cmd.SetArgs([]string{"rocketmq"})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- cmd.ExecuteContext(ctx) }()

	waitUntil(t, 10*time.Second, func() bool { return strings.Contains(errOut.String(), "NameServerUnreachable") })
	srv := mqtest.RunServer(t, mq.Options{NameServerPort: ports[0], BrokerPort: ports[1]}) // the ports the adapter was given
	if err := srv.CreateTopic(mqmeta.TopicConfig{TopicName: "late", ReadQueueNums: 1, WriteQueueNums: 1, Perm: mqmeta.PermRW}); err != nil {
		t.Fatal(err)
	}
	p, err := rocketmq.NewProducer(producer.WithNameServer([]string{srv.NameServerAddr()}), producer.WithInstanceName("cli-late-p"), producer.WithGroupName("cli-late-pg"))
	if err != nil {
		t.Fatal(err)
	}
	if err := p.Start(); err != nil {
		t.Fatal(err)
	}
	defer p.Shutdown()
	if _, err := p.SendSync(context.Background(), primitive.NewMessage("late", []byte(`{"late":true}`))); err != nil {
		t.Fatal(err)
	}
	waitUntil(t, 30*time.Second, func() bool { mu.Lock(); defer mu.Unlock(); return n > 0 })
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("adapter exited with %v; log:\n%s", err, errOut.String())
	}
}

func waitUntil(t *testing.T, d time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("condition not reached within %v", d)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
