package mq

import (
	"bytes"
	"log/slog"
	"net/netip"
	"strings"
	"testing"
	"time"

	clocktesting "k8s.io/utils/clock/testing"
)

// TestDenyLogIsRateLimited: a flood of refused requests writes one line per interval, the next one counting the
// refusals it stood for.
func TestDenyLogIsRateLimited(t *testing.T) {
	var buf bytes.Buffer
	clk := clocktesting.NewFakePassiveClock(time.Unix(1000, 0))
	d := &denyLog{log: slog.New(slog.NewTextHandler(&buf, nil)), clock: clk}
	ip := netip.MustParseAddr("192.0.2.1")
	for range 1000 {
		d.denied(ip, 10, "No accessKey is configured")
	}
	if n := strings.Count(buf.String(), "request refused by ACL"); n != 1 {
		t.Fatalf("%d lines for a burst:\n%s", n, buf.String())
	}
	clk.SetTime(clk.Now().Add(denyLogInterval))
	d.denied(ip, 10, "No accessKey is configured")
	lines := strings.Split(strings.TrimSpace(buf.String()), "\n")
	if len(lines) != 2 || !strings.Contains(lines[1], "refusedSinceLastLine=999") {
		t.Fatalf("after the interval:\n%s", buf.String())
	}
}
