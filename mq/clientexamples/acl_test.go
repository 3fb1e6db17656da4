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

	"github.com/tide-run/tide/mq"
	"github.com/tide-run/tide/mq/mqmeta"
)

// TestACLExamplesRunUnchanged builds the client's producer/acl and consumer/acl examples (keys RocketMQ /
// 12345678, topic "test", group "testGroup", name server 127.0.0.1:9876) from the module cache and runs them
// against a broker with ACL: with the account in the file they send and consume; once the file gives the account
// another secret (reloaded without a restart), every send fails with Apache's signature error.
func TestACLExamplesRunUnchanged(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the client's examples")
	}
	ln, err := net.Listen("tcp", "127.0.0.1:9876")
	if err != nil {
		t.Skipf("the examples hardcode 127.0.0.1:9876, which is in use: %v", err)
	}
	ln.Close()
	bin := t.TempDir()
	for _, kind := range []string{"producer", "consumer"} {
		args := []string{"build", "-o", filepath.Join(bin, kind) + string(filepath.Separator), examples + kind + "/acl"}
		if out, err := exec.Command("go", args...).CombinedOutput(); err != nil {
			t.Fatalf("go %v: %v\n%s", args, err, out)
		}
	}

	aclFile := filepath.Join(t.TempDir(), "plain_acl.yml")
	const doc = "accounts:\n- accessKey: RocketMQ\n  secretKey: \"12345678\"\n  topicPerms: [test=PUB|SUB]\n  groupPerms: [testGroup=SUB]\n"
	write := func(s string) {
		if err := os.WriteFile(aclFile+".tmp", []byte(s), 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.Rename(aclFile+".tmp", aclFile); err != nil {
			t.Fatal(err)
		}
	}
	write(doc)
	// By hand, not mqtest, as in TestClientExamplesRunUnchanged: the examples dial the fixed 127.0.0.1:9876 (see the hint below).
	srv, err := mq.New(mq.Options{DataDir: t.TempDir(), NameServerPort: 9876, ACLFile: aclFile, ACLReloadInterval: 50 * time.Millisecond,
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.Start(context.Background()); err != nil {
		t.Fatalf("%v (the client's examples dial 127.0.0.1:9876)", err)
	}
	defer srv.Shutdown(context.Background())
	if err := srv.CreateTopic(mqmeta.TopicConfig{TopicName: "test", ReadQueueNums: 2, WriteQueueNums: 2}); err != nil {
		t.Fatal(err)
	}

	// run starts prog and waits until want output lines contain marker, then kills it (both examples run for
	// an hour or 100,000 sends).
	run := func(prog, marker string, want int) {
		t.Helper()
		cmd := exec.Command(filepath.Join(bin, prog))
		stdout, err := cmd.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		cmd.Stderr = io.Discard // the client's info logs
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		defer func() { cmd.Process.Kill(); cmd.Wait() }()
		var mu sync.Mutex
		var last []string
		count := 0
		go func() {
			sc := bufio.NewScanner(stdout)
			for sc.Scan() {
				mu.Lock()
				if strings.Contains(sc.Text(), marker) {
					count++
				}
				if len(last) < 5 {
					last = append(last, sc.Text())
				}
				mu.Unlock()
			}
		}()
		deadline := time.Now().Add(30 * time.Second)
		for {
			mu.Lock()
			n, head := count, strings.Join(last, "\n")
			mu.Unlock()
			if n >= want {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s: %d lines with %q, want %d; first lines:\n%s", prog, n, marker, want, head)
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
	run("producer/acl", "send message success", 20)
	run("consumer/acl", "subscribe callback", 20)

	write(strings.Replace(doc, `"12345678"`, `"another-secret"`, 1))
	// Sends made before the reload lands succeed; only the refusals after it are counted.
	run("producer/acl", "Check signature failed for accessKey=RocketMQ", 3)
}
