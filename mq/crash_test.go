package mq_test

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/apache/rocketmq-client-go/v2"
	"github.com/apache/rocketmq-client-go/v2/primitive"
	"github.com/apache/rocketmq-client-go/v2/producer"

	"github.com/tide-run/tide/mq"
	"github.com/tide-run/tide/mq/message"
	"github.com/tide-run/tide/mq/remoting"
)

// TestKill9DuringSyncFlushStorm runs a sync-flush broker as a child process, sends from 16 goroutines, kills it
// with SIGKILL mid-storm, reopens the data directory and checks that every acknowledged message is there exactly
// as sent and that the store's invariants hold (no torn or corrupt record is served).
func TestKill9DuringSyncFlushStorm(t *testing.T) { kill9Storm(t, "sync") }

// TestKill9DuringAsyncFlushStorm: in async mode an acknowledged message is in the page cache, which survives the
// process being killed (only an OS crash can lose the last flush interval), so nothing acknowledged is lost either.
func TestKill9DuringAsyncFlushStorm(t *testing.T) { kill9Storm(t, "async") }

func kill9Storm(t *testing.T, flush string) {
	dir := t.TempDir()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), "TIDE_MQ_CHILD_DIR="+dir, "TIDE_MQ_CHILD_FLUSH="+flush)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	killed := false
	defer func() {
		if !killed {
			cmd.Process.Kill()
			cmd.Wait()
		}
	}()
	line, err := bufio.NewReader(out).ReadString('\n')
	if err != nil || !strings.HasPrefix(line, "ready ") {
		t.Fatalf("child broker: %q %v", line, err)
	}
	nsAddr := strings.Fields(line)[1]

	p, err := rocketmq.NewProducer(producer.WithNameServer([]string{nsAddr}), producer.WithRetry(0),
		producer.WithInstanceName(uniq("crash")), producer.WithGroupName("crash-pg"), producer.WithSendMsgTimeout(500*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	if err := p.Start(); err != nil {
		t.Fatal(err)
	}
	defer p.Shutdown()

	var (
		mu    sync.Mutex
		acked = map[string]bool{}
		sent  atomic.Int64
		stop  atomic.Bool
		wg    sync.WaitGroup
	)
	for w := 0; w < 16; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			for i := 0; !stop.Load(); i++ {
				body := fmt.Sprintf("w%02d-%06d-%s", w, i, strings.Repeat("x", 200))
				sent.Add(1)
				r, err := p.SendSync(context.Background(), primitive.NewMessage("storm", []byte(body)))
				if err == nil && r.Status == primitive.SendOK {
					mu.Lock()
					acked[body] = true
					mu.Unlock()
				} else if err != nil && stop.Load() {
					return
				}
			}
		}(w)
	}
	stormStart := time.Now()
	waitFor(t, 30*time.Second, "1,000 acknowledged sends", func() bool { mu.Lock(); defer mu.Unlock(); return len(acked) >= 1000 })
	t.Log("storm", time.Since(stormStart))
	if err := cmd.Process.Kill(); err != nil { // SIGKILL: no chance to flush or checkpoint
		t.Fatal(err)
	}
	cmd.Wait()
	killed = true
	stop.Store(true)
	wg.Wait()

	srv := start(t, mq.Options{DataDir: dir, SegmentSize: 1 << 20})
	if err := srv.Check(); err != nil {
		t.Fatalf("after recovery: %v", err)
	}
	found := map[string]int{}
	c := dial(t, srv.BrokerAddr())
	topic, ok := srv.Topic("storm")
	if !ok {
		t.Fatal("topic lost")
	}
	for q := 0; q < topic.WriteQueueNums; q++ {
		for off := int64(0); ; {
			r := invoke(t, c, remoting.NewRequest(remoting.PullMessage, map[string]string{"consumerGroup": "verify", "topic": "storm",
				"queueId": fmt.Sprint(q), "queueOffset": fmt.Sprint(off), "maxMsgNums": "256", "sysFlag": "0"}, nil))
			if r.Code != remoting.Success {
				break
			}
			for b := r.Body; len(b) > 0; {
				m, n, err := message.Decode(b)
				if err != nil {
					t.Fatalf("served a corrupt message: %v", err)
				}
				found[string(m.Body)]++
				b = b[n:]
			}
			off, _ = parseInt(r.ExtFields["nextBeginOffset"])
		}
	}
	mu.Lock()
	defer mu.Unlock()
	lost := 0
	for body := range acked {
		if found[body] == 0 {
			lost++
		}
	}
	t.Logf("sent %d, acknowledged %d, recovered %d", sent.Load(), len(acked), len(found))
	if lost > 0 {
		t.Fatalf("%d acknowledged messages lost", lost)
	}
	for body, n := range found {
		if n > 1 {
			t.Fatalf("message %.10s stored %d times", body, n)
		}
	}
}

func parseInt(s string) (int64, error) {
	var n int64
	_, err := fmt.Sscan(s, &n)
	return n, err
}
