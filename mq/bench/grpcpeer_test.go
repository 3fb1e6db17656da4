package bench

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	rmq "github.com/apache/rocketmq-clients/golang/v5"
)

// The 5.x client logs to ~/logs/rocketmq at info level from its init: send it to a temporary directory at error
// level before any test runs.
func init() {
	os.Setenv("rocketmq.client.logRoot", filepath.Join(os.TempDir(), "tide-rocketmq5-client-logs"))
	os.Setenv("rocketmq.client.logLevel", "error")
	rmq.ResetLogger()
}

// TestRocketMQ5Peer runs the phases with the official Go 5.x client against tide's gRPC endpoint: every phase's
// messages are acknowledged and, in the half-load phase, consumed by the 5.x push consumer.
func TestRocketMQ5Peer(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a server and 5.x clients")
	}
	rep, err := Run(context.Background(), Options{Messages: 200, Senders: 4, Connections: 2, BodySize: 64, DataDir: t.TempDir(),
		Peers: []string{PeerRocketMQ5}})
	if err != nil {
		t.Fatal(err)
	}
	p := rep.peer(PeerRocketMQ5)
	if p == nil || p.PeakSend.N != 200 || p.PeakErrors != 0 || p.PeakRate <= 0 || p.SendOnlySend.N != 100 || p.SendOnlyErrors != 0 ||
		p.HalfSend.N != 100 || p.E2E.N != 100 || p.Missing != 0 || p.E2E.P50 <= 0 {
		t.Fatalf("rocketmq5 peer %+v", p)
	}
	var out bytes.Buffer
	if err := rep.WriteText(&out); err != nil || !strings.Contains(out.String(), "official Go 5.x client rocketmq-clients/golang v5.1.4") {
		t.Fatalf("report %q %v", out.String(), err)
	}
}

// The report compares the 5.x peers with each other and with the 4.x client on tide.
func TestReport5Ratios(t *testing.T) {
	res := func(name string, rate float64, p99 time.Duration) PeerResult {
		l := Latencies{N: 1, P50: p99 / 2, P99: p99}
		return PeerResult{Name: name, PeakRate: rate, PeakSend: l, SendOnlySend: l, HalfSend: l, E2E: l}
	}
	rep := &Report{Options: Options{Peers: []string{PeerRocketMQ, PeerRocketMQ5, PeerApache5}}, Peers: []PeerResult{
		res(PeerRocketMQ, 1000, 4*time.Millisecond), res(PeerRocketMQ5, 2000, 2*time.Millisecond), res(PeerApache5, 500, 8*time.Millisecond)}}
	var out bytes.Buffer
	if err := rep.WriteText(&out); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		"tide/apache with the official Go 5.x client (gRPC): throughput 4.00x; send p99 at peak 0.25x, at half load 0.25x producers only; produce-to-consume p99 0.25x",
		"tide, Go 5.x client (gRPC) / Go 4.x client (remoting): throughput 2.00x; send p99 at peak 0.50x; produce-to-consume p99 0.50x",
	} {
		if !strings.Contains(out.String(), want) {
			t.Fatalf("report lacks %q:\n%s", want, out.String())
		}
	}
}
