package clientexamples_test

import (
	"bufio"
	"context"
	"io"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/apache/rocketmq-client-go/v2"
	"github.com/apache/rocketmq-client-go/v2/primitive"
	"github.com/apache/rocketmq-client-go/v2/producer"
	"github.com/apache/rocketmq-client-go/v2/rlog"

	"github.com/tide-run/tide/mq"
	"github.com/tide-run/tide/mq/mqmeta"
)

func TestMain(m *testing.M) {
	rlog.SetLogLevel("error")
	os.Exit(m.Run())
}

func waitFor(t *testing.T, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", d, what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

const examples = "github.com/apache/rocketmq-client-go/v2/examples/"

// TestClientExamplesRunUnchanged builds the official client's example programs (simple, async, batch, tag, delay
// and transaction producers; simple, tag, orderly, delay and broadcast consumers) from the module cache (nothing is
// copied) and runs them against the embedded broker. They hardcode the name server 127.0.0.1:9876, so the test
// needs that port and skips when it is taken. Producers send to "test"; the consumer examples subscribe "test",
// "TopicTest" and "min", which the test fills with the official client, resetting the shared group "testGroup"
// to the first offset before each consumer example runs.
func TestClientExamplesRunUnchanged(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the client's examples")
	}
	ln, err := net.Listen("tcp", "127.0.0.1:9876")
	if err != nil {
		t.Skipf("the examples hardcode 127.0.0.1:9876, which is in use: %v", err)
	}
	ln.Close()
	bin := t.TempDir()
	build := func(dir string, pkgs ...string) {
		args := []string{"build", "-o", filepath.Join(bin, dir) + string(filepath.Separator)}
		for _, p := range pkgs {
			args = append(args, examples+p)
		}
		cmd := exec.Command("go", args...)
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Errorf("go %v: %v\n%s", args, err, out)
		}
	}
	// Two invocations because producer and consumer examples share names (simple, tag, delay); run side by side.
	var wg sync.WaitGroup
	wg.Add(2)
	go func() {
		defer wg.Done()
		build("producer", "producer/simple", "producer/async", "producer/batch", "producer/tag", "producer/delay", "producer/transaction")
	}()
	go func() {
		defer wg.Done()
		build("consumer", "consumer/simple", "consumer/tag", "consumer/orderly", "consumer/delay", "consumer/broadcast")
	}()
	wg.Wait()
	if t.Failed() {
		return
	}

	// Started by hand, not with mqtest: the official examples hard-code 127.0.0.1:9876, and a taken port must fail
	// with the hint below rather than mqtest's bare listen error.
	srv, err := mq.New(mq.Options{DataDir: t.TempDir(), NameServerPort: 9876, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.Start(context.Background()); err != nil {
		// The examples hard-code 127.0.0.1:9876 and must run unchanged, so this is the one test that needs a fixed
		// port: a `tide up` or `tide broker` left running with the default ports takes it.
		t.Fatalf("%v (the client's examples dial 127.0.0.1:9876; stop whatever listens there, e.g. a running tide up or tide broker)", err)
	}
	defer func() {
		if err := srv.Check(); err != nil {
			t.Errorf("store consistency: %v", err)
		}
		srv.Shutdown(context.Background())
	}()
	createTopic := func(name string, queues int) {
		if err := srv.CreateTopic(mqmeta.TopicConfig{TopicName: name, ReadQueueNums: queues, WriteQueueNums: queues}); err != nil {
			t.Fatal(err)
		}
	}
	runToEnd := func(prog string, wantLines int) {
		t.Helper()
		cmd := exec.Command(filepath.Join(bin, prog))
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("%s: %v\n%s", prog, err, out)
		}
		if n := strings.Count(string(out), "send message success"); n != wantLines {
			t.Fatalf("%s: %d successful sends, want %d\n%s", prog, n, wantLines, out)
		}
	}
	runToEnd("producer/simple", 10)
	runToEnd("producer/async", 10)
	runToEnd("producer/batch", 1)
	runToEnd("producer/tag", 3)
	runToEnd("producer/delay", 10)

	// runUntil starts a consumer example and waits until its output has want lines containing marker.
	runUntil := func(prog, marker string, want int) string {
		t.Helper()
		cmd := exec.Command(filepath.Join(bin, prog))
		stdout, err := cmd.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		cmd.Stderr = os.Stderr
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		defer func() { cmd.Process.Kill(); cmd.Wait() }()
		var mu sync.Mutex
		var lines []string
		count := 0
		go func() {
			sc := bufio.NewScanner(stdout)
			sc.Buffer(make([]byte, 1<<20), 1<<20)
			for sc.Scan() {
				mu.Lock()
				lines = append(lines, sc.Text())
				if strings.Contains(sc.Text(), marker) {
					count++
				}
				mu.Unlock()
			}
		}()
		defer func(s time.Time) { t.Log(prog, time.Since(s)) }(time.Now())
		waitFor(t, 30*time.Second, prog+" output", func() bool { mu.Lock(); defer mu.Unlock(); return count >= want })
		mu.Lock()
		defer mu.Unlock()
		return strings.Join(lines, "\n")
	}
	// 10 simple + 10 async + 10 batched + 3 tagged; the 10 delayed ones (level 3, 10 s) may not have arrived yet.
	runUntil("consumer/simple", "subscribe callback", 33)
	// The transaction example sends 10 half messages (its listener answers "unknown", then decides on checks) and
	// sleeps for minutes: wait for its 10 sends.
	runUntil("producer/transaction", "send message success", 10)

	createTopic("TopicTest", 4)
	createTopic("min", 2)
	p, err := rocketmq.NewProducer(producer.WithNameServer([]string{srv.NameServerAddr()}), producer.WithInstanceName("examples-test"))
	if err != nil {
		t.Fatal(err)
	}
	if err := p.Start(); err != nil {
		t.Fatal(err)
	}
	defer p.Shutdown()
	for _, tag := range []string{"TagA", "TagB", "TagC", "TagA", "TagB", "TagC"} {
		if _, err := p.SendSync(context.Background(), primitive.NewMessage("TopicTest", []byte("hello "+tag)).WithTag(tag)); err != nil {
			t.Fatal(err)
		}
	}
	for i := 0; i < 3; i++ {
		if _, err := p.SendSync(context.Background(), primitive.NewMessage("min", []byte("broadcast"))); err != nil {
			t.Fatal(err)
		}
	}
	reset := func() {
		if _, err := srv.ResetOffset("testGroup", "TopicTest", 0); err != nil {
			t.Fatal(err)
		}
	}
	reset()
	out := runUntil("consumer/tag", "subscribe callback", 4)
	if strings.Contains(out, "TagB") {
		t.Fatalf("tag example got TagB:\n%s", out)
	}
	reset()
	runUntil("consumer/orderly", "subscribe orderly callback", 6)
	reset()
	runUntil("consumer/delay", "Receive message", 6)
	runUntil("consumer/broadcast", "subscribe callback", 3)
}
