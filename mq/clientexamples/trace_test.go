package clientexamples_test

import (
	"bufio"
	"context"
	"io"
	"log/slog"
	"net"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/apache/rocketmq-client-go/v2"
	"github.com/apache/rocketmq-client-go/v2/primitive"
	"github.com/apache/rocketmq-client-go/v2/producer"

	"github.com/tide-run/tide/mq"
	"github.com/tide-run/tide/mq/admin"
	"github.com/tide-run/tide/mq/mqmeta"
	"github.com/tide-run/tide/mq/msgtrace"
)

// TestTraceExamplesRunUnchanged runs the official client's producer/trace and consumer/trace examples (built from
// the module cache, unchanged) against the embedded broker, checks they log no error, and reads their records back
// the way `tide mq trace` does (admin.Trace): the producer example's message has its Pub record, and a message the
// test sends to the consumer example's topic shows the example's group consuming it. Needs 127.0.0.1:9876, like the
// other examples; the producer example sleeps 10 s before it exits, while the consumer example runs beside it.
func TestTraceExamplesRunUnchanged(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the client's examples")
	}
	ln, err := net.Listen("tcp", "127.0.0.1:9876")
	if err != nil {
		t.Skipf("the examples hardcode 127.0.0.1:9876, which is in use: %v", err)
	}
	ln.Close()
	bin := t.TempDir()
	var wg sync.WaitGroup
	for _, ex := range []string{"producer", "consumer"} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if out, err := exec.Command("go", "build", "-o", filepath.Join(bin, ex+"-trace"), examples+ex+"/trace").CombinedOutput(); err != nil {
				t.Errorf("build %s/trace: %v\n%s", ex, err, out)
			}
		}()
	}
	wg.Wait()
	if t.Failed() {
		return
	}
	srv, err := mq.New(mq.Options{DataDir: t.TempDir(), NameServerPort: 9876, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.Start(context.Background()); err != nil {
		t.Fatalf("%v (the client's examples dial 127.0.0.1:9876; stop whatever listens there)", err)
	}
	defer func() {
		if err := srv.Check(); err != nil {
			t.Errorf("store consistency: %v", err)
		}
		srv.Shutdown(context.Background())
	}()
	c, err := admin.Dial(context.Background(), srv.NameServerAddr())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()

	// start runs an example, collecting its output; wait returns it once the program exited (or was killed).
	start := func(prog string) (lines func() string, stop func() string) {
		cmd := exec.Command(filepath.Join(bin, prog))
		out, err := cmd.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		cmd.Stderr = cmd.Stdout
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		var mu sync.Mutex
		var b strings.Builder
		done := make(chan struct{})
		go func() {
			defer close(done)
			sc := bufio.NewScanner(out)
			sc.Buffer(make([]byte, 1<<20), 1<<20)
			for sc.Scan() {
				mu.Lock()
				b.WriteString(sc.Text() + "\n")
				mu.Unlock()
			}
		}()
		lines = func() string { mu.Lock(); defer mu.Unlock(); return b.String() }
		stop = func() string {
			cmd.Process.Kill()
			cmd.Wait()
			<-done
			return lines()
		}
		return lines, stop
	}
	noErrors := func(prog, out string) {
		for _, l := range strings.Split(out, "\n") {
			if strings.Contains(strings.ToLower(l), "level=error") || strings.Contains(l, "error:") {
				t.Errorf("%s logged an error: %s\n%s", prog, l, out)
				return
			}
		}
	}
	trace := func(id string, done func(msgtrace.Timeline) bool) admin.MessageTrace {
		t.Helper()
		var got []admin.MessageTrace
		waitFor(t, 20*time.Second, "the trace of "+id, func() bool {
			got, err = c.Trace(context.Background(), id, "", time.Time{}, time.Time{})
			return err == nil && len(got) == 1 && done(got[0].Timeline)
		})
		return got[0]
	}

	// The consumer example subscribes TopicTest and fails to start without it.
	if err := srv.CreateTopic(mqmeta.TopicConfig{TopicName: "TopicTest", ReadQueueNums: 4, WriteQueueNums: 4}); err != nil {
		t.Fatal(err)
	}
	prodOut, prodStop := start("producer-trace")
	defer prodStop()
	consOut, consStop := start("consumer-trace")
	defer consStop()

	// The producer example sends one message to "test" and prints its result.
	var msgID string
	idRE := regexp.MustCompile(`msgIds=([0-9A-Fa-f]{32})`)
	defer func() {
		if t.Failed() {
			t.Logf("producer/trace output:\n%s\nconsumer/trace output:\n%s", prodOut(), consOut())
		}
	}()
	waitFor(t, 30*time.Second, "the producer example's send", func() bool {
		m := idRE.FindStringSubmatch(prodOut())
		if m != nil {
			msgID = m[1]
		}
		return m != nil
	})
	pub := trace(msgID, func(tl msgtrace.Timeline) bool { return len(tl.Published) == 1 })
	if p := pub.Published[0]; p.Topic != "test" || !p.Success || pub.Stored == nil || pub.Stored.Topic != "test" {
		t.Fatalf("producer example's trace: %+v, stored %+v", p, pub.Stored)
	}

	// The consumer example (group testGroup) reads TopicTest.
	p, err := rocketmq.NewProducer(producer.WithNameServer([]string{srv.NameServerAddr()}), producer.WithInstanceName("trace-examples-test"))
	if err != nil {
		t.Fatal(err)
	}
	if err := p.Start(); err != nil {
		t.Fatal(err)
	}
	defer p.Shutdown()
	r, err := p.SendSync(context.Background(), primitive.NewMessage("TopicTest", []byte("traced by the consumer example")).WithKeys([]string{"order-7"}))
	if err != nil {
		t.Fatal(err)
	}
	cons := trace("order-7", func(tl msgtrace.Timeline) bool {
		return len(tl.Groups) == 1 && len(tl.Groups[0].Attempts) == 1 && tl.Groups[0].Attempts[0].Done
	})
	if g := cons.Groups[0]; cons.MsgID != r.MsgID || g.Group != "testGroup" || !g.Attempts[0].Success || g.Attempts[0].Result != "SUCCESS" {
		t.Fatalf("consumer example's trace: %+v", cons)
	}
	if !strings.Contains(consOut(), "traced by the consumer example") {
		t.Fatalf("the consumer example did not print the message:\n%s", consOut())
	}
	noErrors("consumer/trace", consStop())
	noErrors("producer/trace", prodStop())
}
