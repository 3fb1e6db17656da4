package apachetest

import (
	"net"
	"strconv"
	"strings"
	"testing"
	"time"
)

// TestPortTakenFailsAtOnce: a taken port is one clear error naming it, before any JVM starts, not a hang.
func TestPortTakenFailsAtOnce(t *testing.T) {
	Require(t)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	ports, err := freePorts()
	if err != nil {
		t.Fatal(err)
	}
	ports.namesrv = l.Addr().(*net.TCPAddr).Port
	start := time.Now()
	c, err := startOn(t.TempDir(), time.Minute, Options{}, ports)
	if err == nil {
		_ = c.Stop()
		t.Fatal("started with the name server's port taken")
	}
	if want := "port " + itoa(ports.namesrv) + " is in use"; !strings.Contains(err.Error(), want) {
		t.Fatalf("error %q does not say %q", err, want)
	}
	// Resolving the jars the first time may take a while; the failure itself is immediate.
	if d := time.Since(start); d > 3*time.Minute {
		t.Fatalf("took %v to report a taken port", d)
	}
}

func itoa(n int) string { return strconv.Itoa(n) }
