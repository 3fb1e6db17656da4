package remoting

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"sync"
	"sync/atomic"
	"time"
)

// Handler serves one request. It returns the response, or nil when it answers later through Conn.Reply (long
// polling, waiting for a flush, work deferred to ServerOptions.OnIdle) or when the request needs no answer. It must
// not block for long: it runs on the connection's read loop, which is what keeps per-connection request order.
type Handler func(c *Conn, req *Command) *Command

// Server accepts connections and dispatches their requests to a Handler.
type Server struct {
	handler   Handler
	log       *slog.Logger
	ln        net.Listener
	writeWait time.Duration
	idle      time.Duration // 0: off
	frameWait time.Duration // 0: off
	maxConns  int           // 0: no limit
	drainWait time.Duration
	http2Hint string

	mu       sync.Mutex // guards conns and closed
	conns    map[*Conn]struct{}
	closed   bool
	quit     chan struct{} // closed by Shutdown: ends an accept back-off
	draining atomic.Bool   // Shutdown has begun: read loops end quietly at the drain deadline
	drainBy  atomic.Int64  // the drain deadline (Unix ns), set before draining
	wg       sync.WaitGroup
	onClose  func(*Conn)
	onIdle   func(*Conn)
	onReply  func(req, resp *Command, elapsed time.Duration)

	accept acceptState // the accept loop's failures (accept.go)
	stats  serverStats
}

// ServerOptions configure a Server.
type ServerOptions struct {
	// Logger receives one line per misbehaving connection; wrap it with internal/ratelog so a flood of bad peers
	// is a line per interval. Default: slog.Default().
	Logger *slog.Logger
	// WriteTimeout bounds one response write, so a stuck client cannot hold a responder. Default 10s.
	WriteTimeout time.Duration
	// IdleTimeout closes a connection that has neither sent nor been sent anything for this long (RocketMQ's
	// channel idle time; the official clients heartbeat every 30 s and long polls are answered within 30 s, so
	// live clients never reach it). It fires between 1 and 1.125 times the value. Default 120s; negative: off.
	IdleTimeout time.Duration
	// FrameTimeout bounds how long a frame may take to arrive whole once its first byte has: a peer that sends
	// part of a frame (a length, half a header) and stalls is closed. Default 30s; negative: off.
	FrameTimeout time.Duration
	// MaxConns caps the open connections on this listener; one more is accepted and closed at once, counted
	// (Stats().Refused) and logged. Default DefaultMaxConns() (10,000, less when the open-file limit is low);
	// negative: no limit.
	MaxConns int
	// OnClose is called once when a connection ends (the broker forgets its clients).
	OnClose func(*Conn)
	// OnIdle is called on a connection's read loop whenever no complete request is buffered, before the loop
	// reads the socket again, and once when the loop ends. A Handler that deferred work (Conn.Deferred) finishes
	// it here, so requests that arrived together are served together (the broker stores them with one write)
	// while nothing waits behind a read that may block.
	OnIdle func(*Conn)
	// OnReply, if set, is called with each request and its response as the response is queued for writing, with
	// the time since the request was decoded (handlers that answer later — long polls, group commit — included;
	// oneway requests get no response and no call). It runs on the responder's goroutine and must be quick: the
	// broker's metrics observe rocketmq_rpc_latency here.
	OnReply func(req, resp *Command, elapsed time.Duration)
	// HTTP2Hint is logged when an HTTP/2 (gRPC) client connects to this remoting port, e.g. where RocketMQ 5
	// clients should go instead. Such a connection is closed either way.
	HTTP2Hint string
	// DrainWait bounds how long Shutdown serves frames that already arrived (see defaultDrainWait). Default 100ms.
	DrainWait time.Duration
}

// Defaults of ServerOptions.
const (
	DefaultIdleTimeout  = 120 * time.Second
	DefaultFrameTimeout = 30 * time.Second
)

// NewServer wraps ln. Call Serve to start accepting.
func NewServer(ln net.Listener, h Handler, opts ServerOptions) *Server {
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	if opts.WriteTimeout == 0 {
		opts.WriteTimeout = 10 * time.Second
	}
	if opts.IdleTimeout == 0 {
		opts.IdleTimeout = DefaultIdleTimeout
	}
	if opts.FrameTimeout == 0 {
		opts.FrameTimeout = DefaultFrameTimeout
	}
	if opts.MaxConns == 0 {
		opts.MaxConns = DefaultMaxConns()
	}
	if opts.DrainWait <= 0 {
		opts.DrainWait = defaultDrainWait
	}
	return &Server{handler: h, log: opts.Logger, ln: ln, writeWait: opts.WriteTimeout,
		idle: max(opts.IdleTimeout, 0), frameWait: max(opts.FrameTimeout, 0), maxConns: max(opts.MaxConns, 0), drainWait: opts.DrainWait,
		http2Hint: opts.HTTP2Hint, conns: map[*Conn]struct{}{}, quit: make(chan struct{}), onClose: opts.OnClose, onIdle: opts.OnIdle,
		onReply: opts.OnReply}
}

// ConnCount is the number of open connections.
func (s *Server) ConnCount() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.conns)
}

// NewConn wraps nc as a server-side connection outside any Server (fuzzing handlers, in-process tools): frames
// written to it go to nc through the usual writer queue.
func NewConn(nc net.Conn, log *slog.Logger) *Conn {
	if log == nil {
		log = slog.Default()
	}
	return newConn(nc, &Server{log: log, writeWait: 10 * time.Second})
}

func newConn(nc net.Conn, s *Server) *Conn {
	return &Conn{nc: nc, srv: s, wake: make(chan struct{}, 1), done: make(chan struct{})}
}

// Addr is the listening address.
func (s *Server) Addr() net.Addr { return s.ln.Addr() }

// Serve accepts until the listener is closed. An accept that fails (EMFILE, ENFILE, ENOBUFS...) is retried after
// a back-off of 5 ms doubling to 1 s, as net/http does; meanwhile AcceptHealth reports the listener as not
// accepting, and the failures are logged once per burst (see accept.go). A connection beyond MaxConns is closed
// as soon as it is accepted.
func (s *Server) Serve() {
	var delay time.Duration
	for {
		nc, err := s.ln.Accept()
		if err != nil {
			if s.isClosed() || errors.Is(err, net.ErrClosed) {
				return
			}
			delay = s.acceptFailed(err, delay)
			t := time.NewTimer(delay)
			select {
			case <-t.C:
			case <-s.quit:
				t.Stop()
				return
			}
			continue
		}
		if delay != 0 {
			delay = 0
			s.acceptRecovered()
		}
		if tc, ok := nc.(*net.TCPConn); ok {
			_ = tc.SetNoDelay(true)
		}
		c := newConn(nc, s)
		s.mu.Lock()
		if s.closed {
			s.mu.Unlock()
			nc.Close()
			return
		}
		if s.maxConns > 0 && len(s.conns) >= s.maxConns {
			s.mu.Unlock()
			s.refuse(nc)
			continue
		}
		s.conns[c] = struct{}{}
		s.wg.Add(1)
		s.mu.Unlock()
		s.stats.accepted.Add(1)
		go c.readLoop()
	}
}

func (s *Server) isClosed() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.closed
}

// refuse closes a connection over the limit: the peer sees the connection closed before any answer (RocketMQ has
// no frame for "too many connections"), the operator sees a line per interval (the logger is rate-limited) and
// the count in Stats().Refused.
func (s *Server) refuse(nc net.Conn) {
	n := s.stats.refused.Add(1)
	if tc, ok := nc.(*net.TCPConn); ok {
		_ = tc.SetLinger(0) // a reset, not a FIN: the refused socket costs nothing while it lingers
	}
	nc.Close()
	s.log.Warn("refusing connection: listener at its connection limit", "addr", s.ln.Addr().String(),
		"remote", nc.RemoteAddr().String(), "limit", s.maxConns, "refusedTotal", n)
}

// defaultDrainWait bounds how long Shutdown lets each connection's read loop serve the frames that already arrived before
// it closes the connection. A client that shuts down sends its consumer offsets one-way and closes at once (the
// official Go client does exactly this); when the broker stops right after (tide up shutting down eventing, then
// the broker), those frames are in the socket buffer but not yet read, and closing first would lose them, so the
// next start would redeliver everything since the last periodic offset commit.
const defaultDrainWait = 100 * time.Millisecond

// Shutdown stops accepting, lets the read loops serve what already arrived (up to the drain wait: a client that has
// closed ends its loop at once, an idle one at the deadline), closes every connection and waits for the read loops
// to end.
func (s *Server) Shutdown(ctx context.Context) error {
	s.mu.Lock()
	if !s.closed {
		close(s.quit)
	}
	s.closed = true
	conns := make([]*Conn, 0, len(s.conns))
	for c := range s.conns {
		conns = append(conns, c)
	}
	s.mu.Unlock()
	deadline := time.Now().Add(s.drainWait)
	s.drainBy.Store(deadline.UnixNano())
	s.draining.Store(true)
	s.ln.Close()
	for _, c := range conns {
		_ = c.nc.SetReadDeadline(deadline)
	}
	done := make(chan struct{})
	go func() { s.wg.Wait(); close(done) }()
	drained := time.NewTimer(s.drainWait)
	defer drained.Stop()
	select {
	case <-done:
	case <-drained.C:
	case <-ctx.Done():
	}
	for _, c := range conns {
		c.Close()
	}
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// writeQueue bounds the frames waiting for a slow client; a client that falls this far behind is disconnected
// rather than allowed to hold up the goroutines answering it (flusher, long-poll notifier).
const writeQueue = 4096

// maxQueuedBytes bounds the bytes waiting for one client, so a client that requests large pulls and never reads
// cannot make the broker hold unbounded memory.
const maxQueuedBytes = 64 << 20

// Conn is one client connection. Every frame goes through a queue to a single writer goroutine, so responders
// never block on a slow peer and frames never interleave. The queue and the writer exist only once something is
// written, so a connection that never gets an answer costs its read buffer and one goroutine.
type Conn struct {
	nc   net.Conn
	srv  *Server
	wake chan struct{} // capacity 1: the writer has frames to send
	done chan struct{}

	wmu           sync.Mutex // guards pending, pendingBytes, writerStarted
	pending       [][]byte
	pendingBytes  int64
	writerStarted bool

	lastWrite atomic.Int64 // Unix ns of the last successful write (an answered client is not idle)
	closed    atomic.Bool
	opaque    atomic.Int32
	// Value is free for the handler (the broker keeps the client id here).
	Value atomic.Value
	// Deferred is free for the handler's work waiting for OnIdle; only the read loop (Handler, OnIdle) touches it.
	Deferred any
}

// HasOnIdle reports whether the connection's read loop calls ServerOptions.OnIdle, so a Handler may defer work
// to it (connections made by NewConn have no read loop).
func (c *Conn) HasOnIdle() bool { return c.srv.onIdle != nil }

// RemoteAddr is the peer address.
func (c *Conn) RemoteAddr() net.Addr { return c.nc.RemoteAddr() }

// LocalAddr is our address on this connection.
func (c *Conn) LocalAddr() net.Addr { return c.nc.LocalAddr() }

// Closed reports whether the connection is closed.
func (c *Conn) Closed() bool { return c.closed.Load() }

// Close closes the connection.
func (c *Conn) Close() {
	if c.closed.CompareAndSwap(false, true) {
		close(c.done)
		c.nc.Close()
	}
}

func (c *Conn) writeLoop() {
	var (
		buf   []byte
		batch [][]byte
	)
	for {
		select {
		case <-c.done:
			return
		case <-c.wake:
		}
		for {
			c.wmu.Lock()
			batch, c.pending = c.pending, batch[:0]
			c.pendingBytes = 0
			c.wmu.Unlock()
			if len(batch) == 0 {
				break
			}
			for i := 0; i < len(batch); {
				var out []byte
				if i == len(batch)-1 {
					out = batch[i] // a lone frame goes as it is
					i++
				} else {
					// Coalesce what is queued into one write: fewer syscalls under load.
					buf = buf[:0]
					for i < len(batch) && len(buf) < 1<<20 {
						buf = append(buf, batch[i]...)
						i++
					}
					out = buf
				}
				_ = c.nc.SetWriteDeadline(time.Now().Add(c.srv.writeWait))
				if _, err := c.nc.Write(out); err != nil {
					if !c.closed.Load() {
						c.srv.log.Warn("closing connection: write failed", "remote", c.nc.RemoteAddr().String(), "err", err)
					}
					c.Close()
					return
				}
				c.lastWrite.Store(time.Now().UnixNano())
			}
			clear(batch) // the frames may be large: do not keep them alive until the next batch
			if cap(batch) > 256 {
				batch = nil
			}
			if cap(buf) > 4<<20 {
				buf = nil
			}
		}
	}
}

func (c *Conn) readLoop() {
	fr := NewFrameReader(connReader{c})
	fr.SetTimeouts(c.srv.idle, c.srv.frameWait, nil)
	defer func() {
		c.srv.safeIdle(c)
		c.Close()
		c.srv.mu.Lock()
		delete(c.srv.conns, c)
		c.srv.mu.Unlock()
		if c.srv.onClose != nil {
			c.srv.onClose(c)
		}
		c.srv.wg.Done()
	}()
	for {
		if c.srv.onIdle != nil && !fr.Buffered() {
			c.srv.safeIdle(c)
		}
		frame, err := fr.Next()
		if err != nil {
			if c.readFailed(err) {
				continue
			}
			return
		}
		req, err := Decode(frame)
		if err != nil {
			// The frame boundary is intact, so a request whose header we cannot read still gets an error answer
			// when its opaque can be recovered; otherwise the stream is not trustworthy and we close.
			if opaque, flag, ok := PeekOpaque(frame); ok && flag&FlagResponse == 0 {
				c.srv.log.Warn("bad request header", "remote", c.nc.RemoteAddr().String(), "err", err)
				resp := &Command{Code: SystemError, Language: "JAVA", Version: Version, Opaque: opaque,
					Flag: FlagResponse, Remark: err.Error()}
				if c.Write(resp) != nil {
					return
				}
				continue
			}
			c.srv.stats.badFrames.Add(1)
			c.srv.log.Warn("closing connection: bad frame", "remote", c.nc.RemoteAddr().String(), "err", err)
			return
		}
		if req.IsResponse() {
			continue // answers to our notifications; nothing waits for them
		}
		if c.srv.onReply != nil {
			req.arrived = time.Now()
		}
		resp := c.srv.safeHandle(c, req)
		if resp != nil {
			if err := c.Reply(req, resp); err != nil {
				return
			}
		}
	}
}

// readFailed handles an error from the frame reader: it reports whether the read loop goes on (an idle timeout on
// a connection that was written to within the idle time: like RocketMQ's all-idle check, a connection is idle only
// when neither side spoke), and otherwise counts and logs why the connection ends.
func (c *Conn) readFailed(err error) bool {
	s := c.srv
	quiet := c.closed.Load() || s.draining.Load() || errors.Is(err, io.EOF) || errors.Is(err, net.ErrClosed)
	switch {
	case errors.Is(err, ErrIdleTimeout):
		if last := c.lastWrite.Load(); last != 0 && time.Since(time.Unix(0, last)) < s.idle && !s.draining.Load() {
			return true
		}
		if !quiet {
			s.stats.idleClosed.Add(1)
			s.log.Debug("closing idle connection", "remote", c.nc.RemoteAddr().String(), "idleTimeout", s.idle.String())
		}
	case errors.Is(err, ErrFrameTimeout):
		if !quiet {
			s.stats.frameTimeouts.Add(1)
			s.log.Warn("closing connection: frame not completed in time", "remote", c.nc.RemoteAddr().String(), "err", err)
		}
	case !quiet && errors.Is(err, ErrHTTP2Preface):
		s.stats.badFrames.Add(1)
		hint := s.http2Hint
		if hint == "" {
			hint = "RocketMQ 5 (gRPC) clients need a gRPC endpoint (proxy), not this remoting port"
		}
		s.log.Warn("closing connection: an HTTP/2 (gRPC) client reached a RocketMQ remoting port", "remote",
			c.nc.RemoteAddr().String(), "hint", hint)
	case !quiet:
		if errors.Is(err, ErrMalformed) || errors.Is(err, ErrFrameTooLarge) {
			s.stats.badFrames.Add(1)
		}
		s.log.Warn("closing connection: unreadable frame", "remote", c.nc.RemoteAddr().String(), "err", err)
	}
	return false
}

// connReader is what a connection's FrameReader reads: the socket, with read deadlines that never reach past the
// drain deadline once Shutdown has begun.
type connReader struct{ c *Conn }

func (r connReader) Read(p []byte) (int, error) { return r.c.nc.Read(p) }

func (r connReader) SetReadDeadline(t time.Time) error {
	s := r.c.srv
	if s.draining.Load() {
		if by := time.Unix(0, s.drainBy.Load()); t.IsZero() || t.After(by) {
			t = by
		}
	}
	return r.c.nc.SetReadDeadline(t)
}

func (s *Server) safeIdle(c *Conn) {
	if s.onIdle == nil {
		return
	}
	defer func() {
		if r := recover(); r != nil {
			s.log.Error("idle handler panicked", "remote", c.nc.RemoteAddr().String(), "panic", fmt.Sprint(r))
		}
	}()
	s.onIdle(c)
}

func (s *Server) safeHandle(c *Conn, req *Command) (resp *Command) {
	defer func() {
		if r := recover(); r != nil {
			s.log.Error("request handler panicked", "code", req.Code, "remote", c.nc.RemoteAddr().String(), "panic", fmt.Sprint(r))
			resp = Errorf(req, SystemError, "internal error handling request code %d", req.Code)
		}
	}()
	return s.handler(c, req)
}

// Reply writes resp as the answer to req (setting opaque and the response flag).
func (c *Conn) Reply(req, resp *Command) error {
	resp.Opaque = req.Opaque
	resp.Flag |= FlagResponse
	c.observe(req, resp)
	return c.Write(resp)
}

// observe reports an answered request to ServerOptions.OnReply.
func (c *Conn) observe(req, resp *Command) {
	if c.srv.onReply != nil && !req.arrived.IsZero() {
		c.srv.onReply(req, resp, time.Since(req.arrived))
	}
}

// Send writes a broker-initiated request (for example NOTIFY_CONSUMER_IDS_CHANGED); nothing waits for an answer.
func (c *Conn) Send(req *Command) error {
	req.Opaque = c.opaque.Add(1)
	return c.Write(req)
}

// ReplyAll answers each reqs[i] with resps[i] (skipping nil responses and oneway requests) as one chunk for the
// writer, so a group of answers costs one hand-off instead of one per frame. It never blocks.
func (c *Conn) ReplyAll(reqs, resps []*Command) error {
	buf := make([]byte, 0, 256*len(resps)) // a send's answer is about 200 bytes
	for i, resp := range resps {
		if resp == nil || reqs[i].IsOneway() {
			continue
		}
		resp.Opaque = reqs[i].Opaque
		resp.Flag |= FlagResponse
		c.observe(reqs[i], resp)
		buf = resp.AppendFrame(buf, SerializeJSON)
	}
	if len(buf) == 0 {
		return nil
	}
	if c.closed.Load() {
		return ErrClosed
	}
	return c.queue(buf)
}

// Write queues one whole frame with a JSON header; it never blocks. A peer whose queue is full is disconnected.
func (c *Conn) Write(cmd *Command) error {
	if c.closed.Load() {
		return ErrClosed
	}
	return c.queue(cmd.Encode())
}

// queue hands whole frames to the writer, starting it on first use.
func (c *Conn) queue(frame []byte) error {
	c.wmu.Lock()
	if c.closed.Load() {
		c.wmu.Unlock()
		return ErrClosed
	}
	if len(c.pending) >= writeQueue || c.pendingBytes+int64(len(frame)) > maxQueuedBytes {
		frames, bytes := len(c.pending), c.pendingBytes
		c.wmu.Unlock()
		c.srv.log.Warn("closing connection: client not reading its responses", "remote", c.nc.RemoteAddr().String(),
			"queued", frames, "queuedBytes", bytes)
		c.Close()
		return fmt.Errorf("remoting: %s: %w (write queue full)", c.nc.RemoteAddr(), ErrClosed)
	}
	c.pending = append(c.pending, frame)
	c.pendingBytes += int64(len(frame))
	if !c.writerStarted {
		c.writerStarted = true
		go c.writeLoop()
	}
	c.wmu.Unlock()
	select {
	case c.wake <- struct{}{}:
	default: // the writer is already due to look
	}
	return nil
}
