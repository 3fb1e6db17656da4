package bench

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/apache/rocketmq-client-go/v2/rlog"

	"github.com/tide-run/tide/internal/apachetest"
)

// TestRunSmall checks the harness end to end with a tiny fixed count (it measures nothing worth reading; the
// benchmark itself is `tide bench mq`).
func TestRunSmall(t *testing.T) {
	if testing.Short() {
		t.Skip("starts two servers and a push consumer")
	}
	rlog.SetLogLevel("error")
	rep, err := Run(context.Background(), Options{Messages: 200, Senders: 4, BodySize: 64, DataDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Peers) != 2 {
		t.Fatalf("peers %+v", rep.Peers)
	}
	for _, p := range rep.Peers {
		if p.PeakSend.N != 200 || p.PeakErrors != 0 || p.PeakRate <= 0 || p.SendOnlySend.N != 100 || p.SendOnlyErrors != 0 ||
			p.HalfSend.N != 100 || p.E2E.N != 100 || p.Missing != 0 {
			t.Fatalf("%s: %+v", p.Name, p)
		}
	}
	var out bytes.Buffer
	if err := rep.WriteText(&out); err != nil || !strings.Contains(out.String(), "throughput ratio rocketmq/jetstream") {
		t.Fatalf("report %q %v", out.String(), err)
	}
}

func TestBadOptions(t *testing.T) {
	for _, o := range []Options{{}, {DataDir: "x", BodySize: 3}, {DataDir: "x", Peers: []string{"kafka"}}, {DataDir: "x", Senders: -1},
		{DataDir: "x", HalfRate: -5}, {DataDir: "x", Senders: 4, Connections: 5}} {
		if _, err := Run(context.Background(), o); !errors.Is(err, ErrBadOptions) {
			t.Errorf("%+v: %v", o, err)
		}
	}
}

// TestNullPeer: the official client's ceiling peer answers every send and skips the consumer phase; the report
// reads the other peers against it.
func TestNullPeer(t *testing.T) {
	if testing.Short() {
		t.Skip("starts servers and RocketMQ producers")
	}
	rlog.SetLogLevel("error")
	rep, err := Run(context.Background(), Options{Messages: 200, Senders: 4, Connections: 2, BodySize: 64, DataDir: t.TempDir(),
		Peers: []string{PeerNull, PeerRocketMQ}})
	if err != nil {
		t.Fatal(err)
	}
	null := rep.peer(PeerNull)
	if null == nil || null.PeakSend.N != 200 || null.PeakErrors != 0 || null.PeakRate <= 0 || null.SendOnlySend.N != 100 || null.HalfSend.N != 0 {
		t.Fatalf("null peer %+v", null)
	}
	var out bytes.Buffer
	if err := rep.WriteText(&out); err != nil || !strings.Contains(out.String(), "of the official client's ceiling") {
		t.Fatalf("report %q %v", out.String(), err)
	}
	_, half, _ := strings.Cut(out.String(), "HALF LOAD + CONSUMER")
	half, _, _ = strings.Cut(half, "\n\n")
	if strings.Contains(half, PeerNull) || !strings.Contains(half, PeerRocketMQ) {
		t.Fatalf("half-load table should list rocketmq and not the null peer:\n%s", out.String())
	}
}

// TestJavaPeer runs the Java load program (Apache's official Java client) against tide's broker: every phase's
// messages are acknowledged and consumed, and the report compares nothing it lacks.
func TestJavaPeer(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a JVM")
	}
	apachetest.Require(t)
	rlog.SetLogLevel("error")
	rep, err := Run(context.Background(), Options{Messages: 200, Senders: 4, BodySize: 64, DataDir: t.TempDir(),
		JavaWarmUp: 500 * time.Millisecond, Peers: []string{PeerRocketMQJava}})
	if err != nil {
		t.Fatal(err)
	}
	p := rep.peer(PeerRocketMQJava)
	if p == nil || p.PeakSend.N != 200 || p.PeakErrors != 0 || p.PeakRate <= 0 || p.SendOnlySend.N != 100 || p.SendOnlyErrors != 0 ||
		p.HalfSend.N != 100 || p.E2E.N != 100 || p.Missing != 0 || p.E2E.P50 <= 0 {
		t.Fatalf("java peer %+v", p)
	}
	var out bytes.Buffer
	if err := rep.WriteText(&out); err != nil || !strings.Contains(out.String(), "official Java client") {
		t.Fatalf("report %q %v", out.String(), err)
	}
}
