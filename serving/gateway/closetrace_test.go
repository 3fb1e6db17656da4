package gateway

import (
	"bytes"
	"context"
	"log/slog"
	"net"
	"strings"
	"testing"
)

// TestTracedConnNamesItsCloser: with Debug logging, an upstream connection closed under a read logs who closed it
// (once); without Debug nothing is wrapped.
func TestTracedConnNamesItsCloser(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			defer c.Close()
		}
	}()
	var (
		d   net.Dialer
		buf bytes.Buffer
	)
	quiet := slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: slog.LevelInfo}))
	c, err := traceDial(quiet, d.DialContext)(context.Background(), "tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	if _, wrapped := c.(*tracedConn); wrapped {
		t.Error("wrapped without Debug logging")
	}
	c.Close()

	debug := slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug}))
	c, err = traceDial(debug, d.DialContext)(context.Background(), "tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	read := make(chan error, 1)
	go func() { _, err := c.Read(make([]byte, 1)); read <- err }()
	closeIt(c)
	<-read
	_, _ = c.Read(make([]byte, 1)) // reported once
	out := buf.String()
	if strings.Count(out, "upstream connection closed under a read") != 1 || !strings.Contains(out, "gateway.closeIt") ||
		!strings.Contains(out, "local="+c.LocalAddr().String()) {
		t.Errorf("log:\n%s", out)
	}
}

func closeIt(c net.Conn) { c.Close() }
