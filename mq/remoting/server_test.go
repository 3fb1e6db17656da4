package remoting

import (
	"context"
	"io"
	"log/slog"
	"net"
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
