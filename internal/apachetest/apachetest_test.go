package apachetest_test

import (
	"context"
	"crypto/tls"
	"fmt"
	"net"
	"os"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/apache/rocketmq-client-go/v2"
	"github.com/apache/rocketmq-client-go/v2/admin"
	"github.com/apache/rocketmq-client-go/v2/consumer"
	"github.com/apache/rocketmq-client-go/v2/primitive"
	"github.com/apache/rocketmq-client-go/v2/producer"
	"github.com/apache/rocketmq-client-go/v2/rlog"

	"github.com/tide-run/tide/internal/apachetest"
)

func TestMain(m *testing.M) {
	rlog.SetLogLevel("error") // the official client's logger is process-global
	os.Exit(m.Run())
}

// TestHarness proves the harness gives a serving Apache RocketMQ: the official 4.x Go client creates a topic, sends
// and consumes through the name server and broker, and the proxy's gRPC port completes a TLS handshake (what every
// 5.x client does first). After Stop, nothing listens on the ports any more (no JVM left behind).
func TestHarness(t *testing.T) {
	c := apachetest.Start(t)
	t.Logf("Apache RocketMQ %s: namesrv %s broker %s grpc %s", c.Version, c.NameServer, c.Broker, c.GRPC)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()

	const topic = "apachetest-harness"
	adm, err := admin.NewAdmin(admin.WithResolver(primitive.NewPassthroughResolver([]string{c.NameServer})))
	if err != nil {
		t.Fatal(err)
	}
	defer adm.Close()
	if err := adm.CreateTopic(ctx, admin.WithTopicCreate(topic), admin.WithBrokerAddrCreate(c.Broker),
		admin.WithReadQueueNums(4), admin.WithWriteQueueNums(4)); err != nil {
		t.Fatalf("create topic on Apache's broker: %v", err)
	}

	p, err := rocketmq.NewProducer(producer.WithNameServer([]string{c.NameServer}), producer.WithRetry(2),
		producer.WithGroupName("apachetest-p"), producer.WithInstanceName(fmt.Sprintf("p-%d", os.Getpid())))
	if err != nil {
		t.Fatal(err)
	}
	if err := p.Start(); err != nil {
		t.Fatal(err)
	}
	defer p.Shutdown()
	const n = 20
	// The route of a new topic reaches the name server with the broker's next registration: retry the first send.
	deadline := time.Now().Add(60 * time.Second)
	for i := 0; i < n; i++ {
		msg := primitive.NewMessage(topic, []byte(fmt.Sprintf("m%d", i)))
		for {
			res, err := p.SendSync(ctx, msg)
			if err == nil && res.Status == primitive.SendOK {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("send %d to Apache: %v %v", i, res, err)
			}
			time.Sleep(200 * time.Millisecond)
		}
	}

	var mu sync.Mutex
	got := map[string]bool{}
	pc, err := rocketmq.NewPushConsumer(consumer.WithNameServer([]string{c.NameServer}),
		consumer.WithGroupName("apachetest-c"), consumer.WithConsumeFromWhere(consumer.ConsumeFromFirstOffset),
		consumer.WithInstance(fmt.Sprintf("c-%d", os.Getpid())))
	if err != nil {
		t.Fatal(err)
	}
	if err := pc.Subscribe(topic, consumer.MessageSelector{}, func(_ context.Context, msgs ...*primitive.MessageExt) (consumer.ConsumeResult, error) {
		mu.Lock()
		defer mu.Unlock()
		for _, m := range msgs {
			got[string(m.Body)] = true
		}
		return consumer.ConsumeSuccess, nil
	}); err != nil {
		t.Fatal(err)
	}
	if err := pc.Start(); err != nil {
		t.Fatal(err)
	}
	defer pc.Shutdown()
	for {
		mu.Lock()
		k := len(got)
		mu.Unlock()
		if k == n {
			break
		}
		if ctx.Err() != nil {
			t.Fatalf("consumed %d of %d messages from Apache", k, n)
		}
		time.Sleep(100 * time.Millisecond)
	}

	conn, err := tls.DialWithDialer(&net.Dialer{Timeout: 10 * time.Second}, "tcp", c.GRPC,
		&tls.Config{InsecureSkipVerify: true, NextProtos: []string{"h2"}}) // as the Go 5.x client dials
	if err != nil {
		t.Fatalf("TLS handshake with Apache's gRPC proxy: %v", err)
	}
	if proto := conn.ConnectionState().NegotiatedProtocol; proto != "h2" {
		t.Errorf("ALPN: got %q, want h2", proto)
	}
	conn.Close()

	if err := c.Stop(); err != nil {
		t.Fatal(err)
	}
	for _, addr := range []string{c.NameServer, c.Broker, c.GRPC, c.ProxyRemoting} {
		if conn, err := net.DialTimeout("tcp", addr, time.Second); err == nil {
			conn.Close()
			t.Errorf("%s still accepts after Stop: a JVM was left behind", addr)
		}
	}
	if runtime.GOOS == "linux" {
		if s := strays(c.Dir); len(s) > 0 {
			t.Errorf("JVMs left behind after Stop: %v", s)
		}
	}
}

// strays lists processes whose command line mentions dir (a JVM of that cluster still running).
func strays(dir string) []string {
	var out []string
	ents, _ := os.ReadDir("/proc")
	for _, e := range ents {
		b, err := os.ReadFile("/proc/" + e.Name() + "/cmdline")
		if err != nil {
			continue
		}
		if cmd := strings.ReplaceAll(string(b), "\x00", " "); strings.Contains(cmd, dir) && strings.Contains(cmd, "java") {
			out = append(out, e.Name()+": "+cmd)
		}
	}
	return out
}
