package server

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

type fakeSub struct {
	name  string
	log   *[]string
	mu    *sync.Mutex
	ready error
	start error
	l     net.Listener
}

func (f *fakeSub) Name() string { return f.name }
func (f *fakeSub) Start(context.Context) error {
	f.mu.Lock()
	*f.log = append(*f.log, "start "+f.name)
	f.mu.Unlock()
	if f.start != nil {
		return f.start
	}
	l, err := Listen("127.0.0.1", 0, "--"+f.name+"-port")
	f.l = l
	return err
}
func (f *fakeSub) Ready() error { return f.ready }
func (f *fakeSub) Shutdown(context.Context) error {
	f.mu.Lock()
	*f.log = append(*f.log, "stop "+f.name)
	f.mu.Unlock()
	return f.l.Close()
}
func (f *fakeSub) Endpoints() []Endpoint { return []Endpoint{{Name: f.name, URL: f.l.Addr().String()}} }

func quiet() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

func TestSubsystemsOrderReadinessAndEndpoints(t *testing.T) {
	s, err := New(Options{APIPort: 0, DataDir: t.TempDir(), Logger: quiet()})
	if err != nil {
		t.Fatal(err)
	}
	var log []string
	var mu sync.Mutex
	a := &fakeSub{name: "namesrv", log: &log, mu: &mu}
	b := &fakeSub{name: "gateway", log: &log, mu: &mu, ready: errors.New("warming up")}
	s.AddSubsystem(a)
	s.AddSubsystem(b)
	if err := s.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	resp, err := http.Get(s.APIURL() + "/readyz")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 503 || !strings.Contains(string(body), "[-]gateway failed: warming up") || s.Ready() {
		t.Fatalf("readyz while a subsystem is not ready: %d %s", resp.StatusCode, body)
	}
	b.ready = nil
	deadline := time.Now().Add(10 * time.Second)
	for !s.Ready() {
		if time.Now().After(deadline) {
			t.Fatal("not ready once every subsystem is")
		}
		time.Sleep(5 * time.Millisecond)
	}
	eps := s.Endpoints()
	// api first, then the built-in subsystems (serving gateway, rocketmq), then these two in order.
	if n := len(eps); n < 5 || eps[0].Name != "api" || eps[1].Name != "gateway" || eps[n-2].Name != "namesrv" || eps[n-1].Name != "gateway" {
		t.Fatalf("endpoints %v", eps)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := s.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	want := "start namesrv,start gateway,stop gateway,stop namesrv"
	if got := strings.Join(log, ","); got != want {
		t.Fatalf("order %s, want %s", got, want)
	}
}

func TestStartFailureNamesFlagAndCleansUp(t *testing.T) {
	held, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer held.Close()
	port := held.Addr().(*net.TCPAddr).Port
	dir := t.TempDir()
	s, err := New(Options{APIPort: 0, DataDir: dir, Logger: quiet()})
	if err != nil {
		t.Fatal(err)
	}
	var log []string
	var mu sync.Mutex
	ok := &fakeSub{name: "namesrv", log: &log, mu: &mu}
	_, bindErr := Listen("127.0.0.1", port, "--gateway-port")
	bad := &fakeSub{name: "gateway", log: &log, mu: &mu, start: bindErr}
	s.AddSubsystem(ok)
	s.AddSubsystem(bad)
	err = s.Start(context.Background())
	var pe *PortError
	if !errors.As(err, &pe) || !errors.Is(err, syscall.EADDRINUSE) || !strings.HasSuffix(err.Error(), "--gateway-port "+itoa(port)+": address already in use") {
		t.Fatalf("start error %v", err)
	}
	if got := strings.Join(log, ","); got != "start namesrv,start gateway,stop namesrv" {
		t.Fatalf("cleanup order %s", got)
	}
	// The store was closed: the data dir can be opened again.
	s2, err := New(Options{APIPort: 0, DataDir: dir, Logger: quiet()})
	if err != nil {
		t.Fatal(err)
	}
	_ = s2.Shutdown(context.Background())
}

func itoa(n int) string { return strconv.Itoa(n) }

func TestDefaultOptions(t *testing.T) {
	t.Setenv(DataDirEnv, "/tmp/tide-x")
	o := DefaultOptions()
	if o.Host != "127.0.0.1" || o.APIPort != 8090 || o.GatewayPort != 8080 || o.NameServerPort != 9876 || o.BrokerPort != 10911 || o.DataDir != "/tmp/tide-x" {
		t.Fatalf("%+v", o)
	}
}
