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
// right after. The drain wait is long here, so the assertion rests on the event (the leaving client's read loop
// reaches its EOF, which ends Shutdown) and not on this machine reading 50 frames within 100 ms.
func TestShutdownServesFramesThatArrived(t *testing.T) {
	srv, addr, served := shutdownServer(t, time.Minute)
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Second)
	defer cancel()
	leaving, err := Dial(ctx, addr)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := leaving.Invoke(ctx, NewRequest(1, nil, nil)); err != nil { // accepted and served once
		t.Fatal(err)
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
	if err := srv.Shutdown(ctx); err != nil {
		t.Fatalf("Shutdown did not end when the only client's frames were served: %v", err)
	}
	if n := served.Load(); n != last {
		t.Errorf("served %d of the %d requests that arrived before Shutdown", n, last)
	}
}

// TestShutdownDoesNotWaitForIdleClients: a connected client that sends nothing holds Shutdown only for the drain
// wait, not until the caller's deadline.
func TestShutdownDoesNotWaitForIdleClients(t *testing.T) {
	srv, addr, _ := shutdownServer(t, 50*time.Millisecond)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	idle, err := Dial(ctx, addr)
	if err != nil {
		t.Fatal(err)
	}
	defer idle.Close()
	if _, err := idle.Invoke(ctx, NewRequest(1, nil, nil)); err != nil {
		t.Fatal(err)
	}
	if err := srv.Shutdown(ctx); err != nil {
		t.Fatalf("Shutdown waited for an idle client until the caller's deadline: %v", err)
	}
}

// shutdownServer serves code 1 with a response and counts one-way code 2 requests.
func shutdownServer(t *testing.T, drain time.Duration) (*Server, string, *atomic.Int64) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	served := &atomic.Int64{}
	srv := NewServer(ln, func(c *Conn, req *Command) *Command {
		if req.Code == 2 {
			served.Add(1)
			return nil
		}
		return NewResponse(req, Success, "")
	}, ServerOptions{Logger: slog.New(slog.NewTextHandler(io.Discard, nil)), DrainWait: drain})
	go srv.Serve()
	return srv, ln.Addr().String(), served
}
