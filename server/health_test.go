package server_test

import (
	"context"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/apache/rocketmq-client-go/v2"
	"github.com/apache/rocketmq-client-go/v2/primitive"
	"github.com/apache/rocketmq-client-go/v2/producer"

	"github.com/tide-run/tide/mq"
	"github.com/tide-run/tide/server"
)

func get(t *testing.T, url string) (int, string) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// TestReadyzNamesAFullDisk reproduces finding 5's readiness half: while the embedded broker's disk is full (sends
// fail with ENOSPC, simulated by the commit log's fault-injecting file layer), /readyz answers 503 naming the
// rocketmq-store-writable check and the cause; /livez stays 200; once space is back /readyz recovers by itself
// and sends work again.
func TestReadyzNamesAFullDisk(t *testing.T) {
	ffs := mq.NewFaultFS(mq.OSFS())
	p := newPlatform(t, server.Options{DataDir: t.TempDir(), Eventing: server.EventingOptions{MQFS: ffs}})
	api := p.srv.APIURL()
	eventually(t, 15*time.Second, func() error {
		if code, body := get(t, api+"/readyz"); code != 200 {
			return &readyzErr{body}
		}
		return nil
	})
	_, body := get(t, api+"/readyz")
	for _, check := range []string{"[+]rocketmq-namesrv-accepting ok", "[+]rocketmq-broker-accepting ok", "[+]rocketmq-store-writable ok"} {
		if !strings.Contains(body, check) {
			t.Fatalf("/readyz lacks %q:\n%s", check, body)
		}
	}
	var ns string
	for _, e := range p.srv.Endpoints() {
		if e.Name == "rocketmq name server" {
			ns = e.URL
		}
	}
	prod, err := rocketmq.NewProducer(producer.WithNameServer([]string{ns}), producer.WithRetry(0), producer.WithGroupName("readyz-pg"))
	if err != nil {
		t.Fatal(err)
	}
	if err := prod.Start(); err != nil {
		t.Fatal(err)
	}
	defer prod.Shutdown()
	if _, err := prod.SendSync(context.Background(), primitive.NewMessage("readyz", []byte("fits"))); err != nil {
		t.Fatal(err)
	}

	ffs.SetSpaceLeft(0)
	if _, err := prod.SendSync(context.Background(), primitive.NewMessage("readyz", []byte("no room"))); err == nil {
		t.Fatal("send on a full disk succeeded")
	}
	code, body := get(t, api+"/readyz")
	if code != 503 || !strings.Contains(body, "[-]rocketmq-store-writable failed: ") || !strings.Contains(body, "disk full") {
		t.Fatalf("/readyz on a full disk: %d\n%s", code, body)
	}
	if code, _ := get(t, api+"/livez"); code != 200 {
		t.Fatalf("/livez on a full disk: %d, want 200", code)
	}

	ffs.SetSpaceLeft(-1)
	eventually(t, 10*time.Second, func() error {
		if code, body := get(t, api+"/readyz"); code != 200 {
			return &readyzErr{body}
		}
		return nil
	})
	if _, err := prod.SendSync(context.Background(), primitive.NewMessage("readyz", []byte("fits again"))); err != nil {
		t.Fatalf("send once space is back: %v", err)
	}
}

type readyzErr struct{ body string }

func (e *readyzErr) Error() string { return "not ready:\n" + e.body }

// TestRocketMQConnectionOptionsReachTheBroker: tide up's --rocketmq-frame-timeout (EventingOptions.MQFrameTimeout)
// is the embedded broker's: a peer that sends a length word and stalls is closed after it.
func TestRocketMQConnectionOptionsReachTheBroker(t *testing.T) {
	p := newPlatform(t, server.Options{DataDir: t.TempDir(), Eventing: server.EventingOptions{MQFrameTimeout: 200 * time.Millisecond}})
	var broker string
	for _, e := range p.srv.Endpoints() {
		if e.Name == "rocketmq broker" {
			broker = e.URL
		}
	}
	c, err := net.Dial("tcp", broker)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := c.Write([]byte{0, 0, 1, 0}); err != nil {
		t.Fatal(err)
	}
	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	start := time.Now()
	var b [1]byte
	if _, err := c.Read(b[:]); err == nil || time.Since(start) > 5*time.Second {
		t.Fatalf("stalled frame: read %v after %v, want the broker to close it after the 200ms frame timeout", err, time.Since(start))
	}
}
