package remoting

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
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

// logLines counts what a server logs.
type logLines struct {
	mu    sync.Mutex
	lines []string
}

func (l *logLines) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.lines = append(l.lines, strings.TrimSpace(string(p)))
	return len(p), nil
}

func (l *logLines) matching(sub string) []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []string
	for _, line := range l.lines {
		if strings.Contains(line, sub) {
			out = append(out, line)
		}
	}
	return out
}

func echoServer(t *testing.T, ln net.Listener, opts ServerOptions) (*Server, *logLines) {
	t.Helper()
	logs := &logLines{}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	srv := NewServer(ln, func(c *Conn, req *Command) *Command { return NewResponse(req, Success, "") }, opts)
	go srv.Serve()
	t.Cleanup(func() { srv.Shutdown(context.Background()) })
	return srv, logs
}

func listen(t *testing.T) net.Listener {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	return ln
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// waitClosed waits until the server closes nc (a read returns EOF or a reset).
func waitClosed(t *testing.T, nc net.Conn, within time.Duration) time.Duration {
	t.Helper()
	start := time.Now()
	nc.SetReadDeadline(start.Add(within))
	var b [1]byte
	_, err := nc.Read(b[:])
	if ne, ok := err.(net.Error); ok && ne.Timeout() {
		t.Fatalf("connection still open after %v", within)
	}
	return time.Since(start)
}

// TestHalfSentFrameIsClosed: a peer that sends a length (or part of a header) and stalls is closed after the frame
// timeout, counted, and logged; a silent connection is closed after the idle timeout; a client that keeps
// talking (or is being answered) is never cut.
func TestHalfSentFrameIsClosed(t *testing.T) {
	srv, logs := echoServer(t, listen(t), ServerOptions{IdleTimeout: 400 * time.Millisecond, FrameTimeout: 200 * time.Millisecond})
	addr := srv.Addr().String()
	half, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer half.Close()
	half.Write([]byte{0, 0xff, 0, 0}) // announces ~16 MiB, sends nothing more
	start := time.Now()
	silent, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer silent.Close()
	live, err := Dial(context.Background(), addr)
	if err != nil {
		t.Fatal(err)
	}
	defer live.Close()
	// The live client sends every 100 ms for 1.2 s: longer than both timeouts, never idle that long.
	liveErr := make(chan error, 1)
	go func() {
		for i := range 12 {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			_, err := live.Invoke(ctx, NewRequest(1, nil, nil))
			cancel()
			if err != nil {
				liveErr <- fmt.Errorf("live client, request %d: %w", i, err)
				return
			}
			time.Sleep(100 * time.Millisecond)
		}
		liveErr <- nil
	}()

	waitClosed(t, half, 5*time.Second)
	if d := time.Since(start); d < 200*time.Millisecond {
		t.Errorf("half-sent frame closed after %v, before the 200ms frame timeout", d)
	}
	waitClosed(t, silent, 5*time.Second)
	if d := time.Since(start); d < 400*time.Millisecond {
		t.Errorf("silent connection closed after %v, before the 400ms idle timeout", d)
	}
	if err := <-liveErr; err != nil {
		t.Fatal(err)
	}
	st := srv.Stats()
	if st.FrameTimeouts != 1 || st.IdleClosed != 1 {
		t.Fatalf("stats %+v, want one frame timeout and one idle close", st)
	}
	if n := len(logs.matching("frame not completed in time")); n != 1 {
		t.Errorf("%d frame-timeout lines, want 1", n)
	}
}

// TestAnsweredConnectionIsNotIdle: a client that sends nothing but is written to (a long poll answered later, a
// notification) is not idle, as with RocketMQ's all-idle check.
func TestAnsweredConnectionIsNotIdle(t *testing.T) {
	ln := listen(t)
	var conn atomic.Pointer[Conn]
	srv := NewServer(ln, func(c *Conn, req *Command) *Command {
		conn.Store(c)
		return NewResponse(req, Success, "")
	}, ServerOptions{IdleTimeout: 300 * time.Millisecond, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	go srv.Serve()
	defer srv.Shutdown(context.Background())
	c, err := Dial(context.Background(), ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if _, err := c.Invoke(ctx, NewRequest(1, nil, nil)); err != nil {
		t.Fatal(err)
	}
	for range 10 { // 1 s of server-initiated notifications, nothing from the client
		if err := conn.Load().Send(NewRequest(NotifyConsumerIdsChanged, nil, nil)); err != nil {
			t.Fatalf("connection closed while being written to: %v", err)
		}
		time.Sleep(100 * time.Millisecond)
	}
	if st := srv.Stats(); st.IdleClosed != 0 || st.Open != 1 {
		t.Fatalf("stats %+v: the answered connection was cut", st)
	}
}

// TestConnectionLimit: beyond MaxConns a connection is closed at once, counted and logged (rate-limited by the
// caller's logger); the open ones keep being served and a slot freed is usable again.
func TestConnectionLimit(t *testing.T) {
	srv, logs := echoServer(t, listen(t), ServerOptions{MaxConns: 3})
	addr := srv.Addr().String()
	var clients []*Client
	for range 3 {
		c, err := Dial(context.Background(), addr)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		clients = append(clients, c)
	}
	waitFor(t, "three connections", func() bool { return srv.ConnCount() == 3 })
	// The refusal is a reset: it may even reach the client before its connect returns.
	if extra, err := net.Dial("tcp", addr); err == nil {
		defer extra.Close()
		waitClosed(t, extra, 5*time.Second)
	} else if !errors.Is(err, syscall.ECONNRESET) {
		t.Fatalf("connection over the limit: %v, want it accepted and reset", err)
	}
	waitFor(t, "the refusal counted", func() bool { return srv.Stats().Refused == 1 })
	if st := srv.Stats(); st.Refused != 1 || st.Open != 3 {
		t.Fatalf("stats %+v, want 1 refused and 3 open", st)
	}
	waitFor(t, "the refusal logged", func() bool { return len(logs.matching("connection limit")) > 0 })
	if got := logs.matching("connection limit"); len(got) != 1 || !strings.Contains(got[0], "limit=3") {
		t.Fatalf("refusal lines %q", got)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	for i, c := range clients {
		if _, err := c.Invoke(ctx, NewRequest(1, nil, nil)); err != nil {
			t.Fatalf("client %d: %v", i, err)
		}
	}
	clients[0].Close()
	waitFor(t, "a freed slot", func() bool { return srv.ConnCount() == 2 })
	again, err := Dial(ctx, addr)
	if err != nil {
		t.Fatal(err)
	}
	defer again.Close()
	if _, err := again.Invoke(ctx, NewRequest(1, nil, nil)); err != nil {
		t.Fatalf("after a slot was freed: %v", err)
	}
}

// failingListener fails Accept with err while failing is set, as a listener does under EMFILE.
type failingListener struct {
	net.Listener
	failing atomic.Bool
	calls   atomic.Int64
	err     error
}

func (l *failingListener) Accept() (net.Conn, error) {
	l.calls.Add(1)
	if l.failing.Load() {
		return nil, &net.OpError{Op: "accept", Net: "tcp", Err: l.err}
	}
	return l.Listener.Accept()
}

// TestAcceptErrorsBackOff: a failing accept no longer ends the accept loop (finding 2): it is retried with a
// back-off (not a busy loop), AcceptHealth says the listener is not accepting, the burst is logged once when it
// starts and once when it ends, and connections are served again afterwards. The real EMFILE case is
// mq's TestAcceptRecoversFromEMFILE.
func TestAcceptErrorsBackOff(t *testing.T) {
	fl := &failingListener{Listener: listen(t), err: os.NewSyscallError("accept4", syscall.EMFILE)}
	fl.failing.Store(true)
	srv, logs := echoServer(t, fl, ServerOptions{})
	time.Sleep(300 * time.Millisecond)
	err := srv.AcceptHealth()
	if !errors.Is(err, ErrNotAccepting) || !errors.Is(err, syscall.EMFILE) {
		t.Fatalf("AcceptHealth while accepts fail: %v", err)
	}
	// 5, 10, 20, 40, 80, 160 ms: a handful of attempts in 300 ms, not thousands.
	if n := fl.calls.Load(); n < 3 || n > 12 {
		t.Fatalf("%d accept attempts in 300ms, want a back-off", n)
	}
	fl.failing.Store(false)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	c, err := Dial(ctx, srv.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := c.Invoke(ctx, NewRequest(1, nil, nil)); err != nil {
		t.Fatalf("after accepts recovered: %v", err)
	}
	if err := srv.AcceptHealth(); err != nil {
		t.Fatalf("AcceptHealth after recovery: %v", err)
	}
	failed, again := logs.matching("accept failed"), logs.matching("accepting connections again")
	if len(failed) != 1 || len(again) != 1 || !strings.Contains(failed[0], "too many open files") {
		t.Fatalf("burst logged as %q / %q, want one line each", failed, again)
	}
	if st := srv.Stats(); st.AcceptErrors < 3 || !strings.Contains(again[0], "failedAccepts="+strconv.FormatUint(st.AcceptErrors, 10)) {
		t.Fatalf("stats %+v, recovery line %q", st, again[0])
	}
}

// TestShutdownDuringAcceptBackOff: Shutdown ends a Serve that is waiting out a back-off.
func TestShutdownDuringAcceptBackOff(t *testing.T) {
	fl := &failingListener{Listener: listen(t), err: syscall.ENFILE}
	fl.failing.Store(true)
	srv := NewServer(fl, func(c *Conn, req *Command) *Command { return nil }, ServerOptions{Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	done := make(chan struct{})
	go func() { srv.Serve(); close(done) }()
	time.Sleep(1500 * time.Millisecond) // into the 1 s steps
	start := time.Now()
	srv.Shutdown(context.Background())
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("Serve still running after Shutdown")
	}
	if d := time.Since(start); d > 500*time.Millisecond {
		t.Fatalf("Serve ended %v after Shutdown, want at once", d)
	}
}

// TestIdleConnectionsStaySmall: a connection that sent a length word and nothing else holds a small read buffer
// and no write queue.
func TestIdleConnectionsStaySmall(t *testing.T) {
	_, server := pipe(t)
	c := newConn(server, &Server{log: slog.New(slog.NewTextHandler(io.Discard, nil)), writeWait: time.Second})
	if c.writerStarted || c.pending != nil {
		t.Fatal("a new connection has a writer before anything is written")
	}
	fr := NewFrameReader(server)
	done := make(chan struct{})
	go func() { fr.Next(); close(done) }()
	server.Close()
	<-done
	if fr.BufferSize() > minReadBuffer {
		t.Fatalf("read buffer %d", fr.BufferSize())
	}
}
