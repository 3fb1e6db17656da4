package main

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/cloudevents/sdk-go/v2/binding"
	"github.com/cloudevents/sdk-go/v2/event"
	cehttp "github.com/cloudevents/sdk-go/v2/protocol/http"

	"github.com/tide-run/tide/demo/fooddelivery"
)

// orderServiceBin is the program under test, built once in TestMain.
var orderServiceBin string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "order-service-test")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	orderServiceBin = filepath.Join(dir, "order-service")
	cmd := exec.Command("go", "build", "-o", orderServiceBin, ".")
	cmd.Stderr = os.Stderr
	if err := cmd.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "go build:", err)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

func buildOrderService(t *testing.T) string {
	t.Helper()
	return orderServiceBin
}

type instance struct {
	cmd  *exec.Cmd
	url  string
	logs *strings.Builder
}

// startInstance runs the program with PORT=0 and waits for its "listening on" line.
func startInstance(t *testing.T, bin string, env ...string) *instance {
	t.Helper()
	cmd := exec.Command(bin)
	cmd.Env = append(os.Environ(), append([]string{"PORT=0", "K_SERVICE=order-service",
		"K_REVISION=order-service-00001", "ORDER_LOG=warn"}, env...)...)
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	logs := &strings.Builder{}
	cmd.Stderr = &lockedWriter{w: logs}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	lines := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			if addr, ok := strings.CutPrefix(sc.Text(), "listening on "); ok {
				lines <- addr
			}
		}
		io.Copy(io.Discard, stdout)
	}()
	select {
	case addr := <-lines:
		_, port, err := net.SplitHostPort(addr)
		if err != nil {
			t.Fatalf("bad listening line %q: %v", addr, err)
		}
		return &instance{cmd: cmd, url: "http://127.0.0.1:" + port, logs: logs}
	case <-time.After(30 * time.Second):
		t.Fatalf("instance did not start listening; logs:\n%s", logs)
		return nil
	}
}

type lockedWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

func orderEvent(id string, body string) event.Event {
	e := event.New()
	e.SetID(id)
	e.SetSource("/apis/v1/namespaces/default/rocketmqsources/orders#orders")
	e.SetType("dev.knative.rocketmq.event")
	e.SetTime(time.Now())
	e.SetData("application/json", []byte(body))
	return e
}

func orderJSON(id, money string) string {
	return fmt.Sprintf(`{"orderId":%q,"orderStatus":"completed","userPhoneNo":"152122131323","prodId":"2141412","prodName":"test","chargeMoney":%q,"chargeTime":"1584932320","finishTime":"1584932320"}`, id, money)
}

func send(client *http.Client, url string, e event.Event) (int, error) {
	ctx := binding.WithForceBinary(context.Background())
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, nil)
	if err != nil {
		return 0, err
	}
	if err := cehttp.WriteRequest(ctx, binding.ToMessage(&e), req); err != nil {
		return 0, err
	}
	resp, err := client.Do(req)
	if err != nil {
		return 0, err
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode, nil
}

// Three order-service processes share one SQLite file. Every order is sent twice, to two different processes, at the
// same time as every other order: each must be stored exactly once, with the second arrival counted as a duplicate.
func TestThreeProcessesWriteConcurrentlyWithoutLossOrDuplicates(t *testing.T) {
	bin := buildOrderService(t)
	db := filepath.Join(t.TempDir(), "data", "orders.db")
	var insts []*instance
	for i := 0; i < 3; i++ {
		insts = append(insts, startInstance(t, bin, "ORDER_DB="+db, "ORDER_WORK_MS=2"))
	}
	const orders = 300
	client := &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: 64}}
	type result struct {
		id   string
		code int
		err  error
	}
	results := make(chan result, 2*orders)
	sem := make(chan struct{}, 24) // 24 requests in flight across the three processes
	var wg sync.WaitGroup
	for i := 0; i < orders; i++ {
		for copyN := 0; copyN < 2; copyN++ {
			wg.Add(1)
			go func(i, copyN int) {
				defer wg.Done()
				sem <- struct{}{}
				defer func() { <-sem }()
				id := fmt.Sprintf("mp-%04d", i)
				inst := insts[(i+copyN)%len(insts)]
				code, err := send(client, inst.url, orderEvent(id, orderJSON(id, "18.5")))
				results <- result{id, code, err}
			}(i, copyN)
		}
	}
	wg.Wait()
	close(results)
	for r := range results {
		if r.err != nil || r.code != http.StatusAccepted {
			t.Fatalf("order %s: code %d err %v", r.id, r.code, r.err)
		}
	}

	// Stop the processes the Knative way (SIGTERM) and check they exit cleanly.
	for _, in := range insts {
		in.cmd.Process.Signal(syscall.SIGTERM)
	}
	for _, in := range insts {
		if err := in.cmd.Wait(); err != nil {
			t.Fatalf("instance exit: %v; logs:\n%s", err, in.logs)
		}
	}

	store, err := fooddelivery.OpenStore(context.Background(), fooddelivery.StoreOptions{Path: db})
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	stored, err := store.Orders(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	instancesUsed := map[string]bool{}
	dups := 0
	for _, o := range stored {
		if seen[o.OrderID] {
			t.Fatalf("order %s stored twice", o.OrderID)
		}
		seen[o.OrderID] = true
		instancesUsed[o.Instance] = true
		dups += o.Duplicates
	}
	for i := 0; i < orders; i++ {
		if id := fmt.Sprintf("mp-%04d", i); !seen[id] {
			t.Errorf("order %s lost", id)
		}
	}
	if len(stored) != orders || dups != orders {
		t.Fatalf("stored %d orders with %d duplicates, want %d and %d", len(stored), dups, orders, orders)
	}
	if len(instancesUsed) != 3 {
		t.Fatalf("orders stored by %d instances, want 3: %v", len(instancesUsed), instancesUsed)
	}
}

func TestMalformedOrderGets4xxFromTheProgram(t *testing.T) {
	bin := buildOrderService(t)
	in := startInstance(t, bin, "ORDER_DB="+filepath.Join(t.TempDir(), "orders.db"), "ORDER_WORK_MS=0")
	client := &http.Client{Timeout: 10 * time.Second}
	code, err := send(client, in.url, orderEvent("bad", orderJSON("bad-1", "thirty")))
	if err != nil || code != http.StatusBadRequest {
		t.Fatalf("malformed order: code %d err %v, want 400", code, err)
	}
	code, err = send(client, in.url, orderEvent("good", orderJSON("good-1", "30.0")))
	if err != nil || code != http.StatusAccepted {
		t.Fatalf("good order after a bad one: code %d err %v, want 202", code, err)
	}
	resp, err := client.Get(in.url + "/healthz")
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("healthz: %v %v", resp, err)
	}
	resp.Body.Close()
}

func TestBadEnvironmentExits2(t *testing.T) {
	for _, env := range [][]string{{"PORT=http"}, {"ORDER_WORK_MS=-5"}, {"ORDER_LOG=loud"}} {
		get := func(k string) string {
			for _, kv := range env {
				if key, v, _ := strings.Cut(kv, "="); key == k {
					return v
				}
			}
			return ""
		}
		if code := run(get); code != 2 {
			t.Errorf("env %v: exit %d, want 2", env, code)
		}
	}
}
