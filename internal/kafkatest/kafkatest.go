package kafkatest

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/tide-run/tide/internal/jvmscript"
)

// Kafka is one running Apache Kafka node (broker and KRaft controller in one JVM).
type Kafka struct {
	// Version is the Apache Kafka release running (pinned in the script).
	Version string
	// Bootstrap is the PLAINTEXT listener's address (host:port).
	Bootstrap string
	// Dir holds the configuration, the log directory (data) and the server log (logs/server.log).
	Dir string

	proc *jvmscript.Process
}

// Available reports whether this machine can run Apache Kafka (java and mvn on PATH), and if not, why.
func Available() (bool, string) { return jvmscript.Available() }

// Require skips the test (or fails it under CI=true) when Apache Kafka cannot run here.
func Require(t testing.TB) {
	t.Helper()
	jvmscript.Require(t, "Apache Kafka tests")
}

// Script returns the path of test/apache/kafka in this checkout.
func Script() string { return jvmscript.Script("kafka") }

// Start runs Apache Kafka on free loopback ports for the rest of the test and returns it. It fails the test with
// the script's output if Kafka is not serving within four minutes.
func Start(t testing.TB) *Kafka {
	t.Helper()
	Require(t)
	dir := t.TempDir()
	var k *Kafka
	var err error
	// A port picked free can still be taken before the JVM binds it: try again on other ports.
	for attempt := range 3 {
		port, cport := freePort(), freePort()
		k, err = startOn(filepath.Join(dir, fmt.Sprint(attempt)), port, cport, 4*time.Minute)
		if err == nil || !strings.Contains(err.Error(), "in use") {
			break
		}
	}
	if err != nil {
		t.Fatalf("starting Apache Kafka: %v", err)
	}
	t.Cleanup(func() {
		if err := k.Stop(); err != nil {
			t.Errorf("stopping Apache Kafka: %v", err)
		}
		if t.Failed() {
			t.Logf("Apache Kafka's log is %s/logs/server.log (removed with the test's temp dir); script output:\n%s", k.Dir, k.proc.Output())
		}
	})
	return k
}

func startOn(dir string, port, cport int, timeout time.Duration) (*Kafka, error) {
	p, err := jvmscript.Start(Script(), dir, []string{fmt.Sprintf("KAFKA_PORT=%d", port),
		fmt.Sprintf("KAFKA_CONTROLLER_PORT=%d", cport)}, timeout)
	if err != nil {
		return nil, fmt.Errorf("Apache Kafka: %w", err)
	}
	return &Kafka{Dir: dir, proc: p, Version: p.Ready["version"], Bootstrap: p.Ready["bootstrap"]}, nil
}

// Stop stops the JVM (SIGTERM, up to 15 s for its shutdown, then SIGKILL) and waits for it to be gone.
func (k *Kafka) Stop() error { return k.proc.Stop() }

// Client returns a franz-go client (no group) on the node, closed with the test.
func (k *Kafka) Client(t testing.TB, opts ...kgo.Opt) *kgo.Client {
	t.Helper()
	cl, err := kgo.NewClient(append([]kgo.Opt{kgo.SeedBrokers(k.Bootstrap)}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cl.Close)
	return cl
}

// CreateTopic creates topic with the given number of partitions.
func (k *Kafka) CreateTopic(t testing.TB, topic string, partitions int32) {
	t.Helper()
	adm := kadm.NewClient(k.Client(t))
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	resp, err := adm.CreateTopic(ctx, partitions, 1, nil, topic)
	if err == nil {
		err = resp.Err
	}
	if err != nil {
		t.Fatalf("create topic %s: %v", topic, err)
	}
}

// freePort picks a free loopback port below the ephemeral range, so a server another test starts on port 0
// cannot take it between the pick and the JVM's bind.
func freePort() int {
	for range 200 {
		p := 20000 + rand.IntN(12000)
		l, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", p))
		if err != nil {
			continue
		}
		l.Close()
		return p
	}
	return 0
}
