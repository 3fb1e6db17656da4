package clientexamples_test

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tide-run/tide/mq"
	"github.com/tide-run/tide/mq/mqmeta"
)

const v5Module = "github.com/apache/rocketmq-clients/golang/v5"

var endpointConst = regexp.MustCompile(`(Endpoint\s*=\s*)"xxxxxx"`)

// TestV5ExamplesRunWithEndpointChanged runs the official Go 5.x client's example programs (producer normal, async,
// fifo, delay and transaction; the simple consumer) against the embedded broker's gRPC endpoint, changed only in
// their Endpoint constant (each example's source is read from the module cache and built with that one constant
// replaced). The examples use the topic and group "xxxxxx", which the test creates with the message type each
// producer needs (on a server of its own); the normal example also turns TLS off, so it exercises plaintext.
func TestV5ExamplesRunWithEndpointChanged(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the client's examples")
	}
	out, err := exec.Command("go", "list", "-m", "-f", "{{.Dir}}", v5Module).Output()
	if err != nil {
		t.Fatalf("go list -m %s: %v", v5Module, err)
	}
	modDir := strings.TrimSpace(string(out))
	type example struct {
		dir, msgType string
		srv          *mq.Server
	}
	examples := []*example{{"producer/normal", mqmeta.MessageTypeNormal, nil}, {"producer/async", mqmeta.MessageTypeNormal, nil},
		{"producer/fifo", mqmeta.MessageTypeFIFO, nil}, {"producer/delay", mqmeta.MessageTypeDelay, nil},
		{"producer/transaction", mqmeta.MessageTypeTransaction, nil}}
	for _, ex := range examples {
		srv, err := mq.New(mq.Options{DataDir: t.TempDir(), Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
		if err != nil {
			t.Fatal(err)
		}
		if err := srv.Start(context.Background()); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			_ = srv.Shutdown(ctx)
		})
		if err := srv.CreateTopic(mqmeta.TopicConfig{TopicName: "xxxxxx", ReadQueueNums: 4, WriteQueueNums: 4, Perm: mqmeta.PermRW,
			Attributes: map[string]string{mqmeta.AttrMessageType: ex.msgType}}); err != nil {
			t.Fatal(err)
		}
		ex.srv = srv
	}
	// The sources go under this package (a "_" directory, ignored by ./...) so they build in tide's module with
	// its pinned client version; removed when the test ends.
	src, err := os.MkdirTemp(".", "_v5examples")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(src) })
	bin := t.TempDir()
	write := func(name, exampleDir, endpoint string) string {
		b, err := os.ReadFile(filepath.Join(modDir, "example", exampleDir, "main.go"))
		if err != nil {
			t.Fatal(err)
		}
		changed := endpointConst.ReplaceAll(b, []byte(`${1}"`+endpoint+`"`))
		if bytes.Equal(changed, b) {
			t.Fatalf("%s: no Endpoint constant to change", exampleDir)
		}
		dir := filepath.Join(src, name)
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, "main.go"), changed, 0o644); err != nil {
			t.Fatal(err)
		}
		return "./" + filepath.ToSlash(dir)
	}
	args := []string{"build", "-o", bin + string(filepath.Separator)}
	for _, ex := range examples {
		args = append(args, write(filepath.Base(ex.dir), ex.dir, ex.srv.GRPCAddr()))
	}
	args = append(args, write("simple_consumer", "consumer/simple_consumer", examples[0].srv.GRPCAddr()))
	if out, err := exec.Command("go", args...).CombinedOutput(); err != nil {
		t.Fatalf("go %v: %v\n%s", args, err, out)
	}

	run := func(ctx context.Context, name string) (string, error) {
		cmd := exec.CommandContext(ctx, filepath.Join(bin, name))
		cmd.Env = append(os.Environ(), "rocketmq.client.logLevel=error")
		out, err := cmd.CombinedOutput()
		return string(out), err
	}
	var wg sync.WaitGroup
	for _, ex := range examples {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
			defer cancel()
			if out, err := run(ctx, filepath.Base(ex.dir)); err != nil {
				t.Errorf("%s: %v\n%s", ex.dir, err, out)
			}
		}()
	}
	wg.Wait()
	stored := func(srv *mq.Server) int64 {
		var n int64
		for _, s := range srv.ConsumeStats("nobody", "xxxxxx") {
			n += s.BrokerOffset
		}
		return n
	}
	deadline := time.Now().Add(20 * time.Second) // the delay example's messages are due 10 s after sending
	for _, ex := range examples {
		for stored(ex.srv) < 10 && time.Now().Before(deadline) {
			time.Sleep(100 * time.Millisecond)
		}
		if n := stored(ex.srv); n != 10 {
			t.Errorf("%s: %d messages in the topic, want 10", ex.dir, n)
		}
	}
	// The simple consumer example receives and acks for a minute; after a few seconds group xxxxxx has consumed
	// the normal example's ten messages.
	srv := examples[0].srv
	consumed := func() int64 {
		var n int64
		for _, s := range srv.ConsumeStats("xxxxxx", "xxxxxx") {
			n += s.ConsumerOffset
		}
		return n
	}
	ctx, stop := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		_, _ = run(ctx, "simple_consumer")
	}()
	for end := time.Now().Add(20 * time.Second); consumed() < 10 && time.Now().Before(end); {
		time.Sleep(100 * time.Millisecond)
	}
	stop()
	<-done
	if n := consumed(); n != 10 {
		t.Errorf("simple consumer example: group xxxxxx consumed %d messages, want 10", n)
	}
}
