package remoting

import (
	"context"
	"io"
	"log/slog"
	"net"
	"sync/atomic"
	"testing"
	"time"
)

// TestClientThatNeverReadsIsDisconnected: answers pile up for a client that does not read; once more than
// maxQueuedBytes wait, the server drops it instead of holding the memory (and keeps serving others).
func TestClientThatNeverReadsIsDisconnected(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	big := make([]byte, 4<<20)
	srv := NewServer(ln, func(c *Conn, req *Command) *Command {
		resp := NewResponse(req, Success, "")
		resp.Body = big
		return resp
	}, ServerOptions{Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	go srv.Serve()
	defer srv.Shutdown(context.Background())

	stuck, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer stuck.Close()
	stuck.(*net.TCPConn).SetReadBuffer(4096)
	for i := 0; i < 100; i++ {
		stuck.SetWriteDeadline(time.Now().Add(time.Second))
		if _, err := stuck.Write(NewRequest(1, nil, nil).Encode()); err != nil {
			break
		}
	}
	deadline := time.Now().Add(10 * time.Second)
	for srv.ConnCount() != 0 {
		if time.Now().After(deadline) {
			t.Fatalf("stuck client still connected (%d conns)", srv.ConnCount())
		}
		time.Sleep(10 * time.Millisecond)
	}
	good, err := Dial(context.Background(), ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer good.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if resp, err := good.Invoke(ctx, NewRequest(1, nil, nil)); err != nil || len(resp.Body) != len(big) {
		t.Fatalf("other client: %v", err)
	}
}

// TestShutdownServesFramesThatArrived: a client that sends its last requests and closes at once (the official Go
// client's consumer shutdown sends its offsets one-way, then closes) has them served even when the server shuts down
// right after; an idle connection does not hold Shutdown up for longer than the drain wait.
func TestShutdownServesFramesThatArrived(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var served atomic.Int64
	srv := NewServer(ln, func(c *Conn, req *Command) *Command {
		if req.Code == 2 {
			served.Add(1)
			return nil
		}
		return NewResponse(req, Success, "")
	}, ServerOptions{Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	go srv.Serve()

	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	idle, err := Dial(ctx, ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer idle.Close()
	leaving, err := Dial(ctx, ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []*Client{idle, leaving} { // both accepted and served once
		if _, err := c.Invoke(ctx, NewRequest(1, nil, nil)); err != nil {
			t.Fatal(err)
		}
	}
	const last = 50
	var frames []byte
	for range last {
		frames = append(frames, NewRequest(2, map[string]string{"consumerGroup": "g"}, nil).Encode()...)
	}
	if err := leaving.WriteRaw(frames); err != nil {
		t.Fatal(err)
	}
	leaving.Close()

	start := time.Now()
	if err := srv.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	if n := served.Load(); n != last {
		t.Errorf("served %d of the %d requests that arrived before Shutdown", n, last)
	}
	if d := time.Since(start); d > drainWait+time.Second {
		t.Errorf("Shutdown took %v with an idle client connected, want about the drain wait %v", d, drainWait)
	}
}
