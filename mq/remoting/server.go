package remoting

import (
	"bufio"
	"context"
	"encoding/binary"
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
	drainWait time.Duration

	mu       sync.Mutex // guards conns and closed
	conns    map[*Conn]struct{}
	closed   bool
	draining atomic.Bool // Shutdown has begun: read loops end quietly at the drain deadline
	wg       sync.WaitGroup
	onClose  func(*Conn)
	onIdle   func(*Conn)
}

// ServerOptions configure a Server.
type ServerOptions struct {
	// Logger receives one line per misbehaving connection. Default: slog.Default().
	Logger *slog.Logger
	// WriteTimeout bounds one response write, so a stuck client cannot hold a responder. Default 10s.
	WriteTimeout time.Duration
	// OnClose is called once when a connection ends (the broker forgets its clients).
	OnClose func(*Conn)
	// OnIdle is called on a connection's read loop whenever no complete request is buffered, before the loop
	// reads the socket again, and once when the loop ends. A Handler that deferred work (Conn.Deferred) finishes
	// it here, so requests that arrived together are served together (the broker stores them with one write)
	// while nothing waits behind a read that may block.
	OnIdle func(*Conn)
	// DrainWait bounds how long Shutdown serves frames that already arrived (see defaultDrainWait). Default 100ms.
	DrainWait time.Duration
}

// NewServer wraps ln. Call Serve to start accepting.
func NewServer(ln net.Listener, h Handler, opts ServerOptions) *Server {
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	if opts.WriteTimeout == 0 {
		opts.WriteTimeout = 10 * time.Second
	}
	if opts.DrainWait <= 0 {
		opts.DrainWait = defaultDrainWait
	}
	return &Server{handler: h, log: opts.Logger, ln: ln, writeWait: opts.WriteTimeout, drainWait: opts.DrainWait,
		conns: map[*Conn]struct{}{}, onClose: opts.OnClose, onIdle: opts.OnIdle}
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
	c := &Conn{nc: nc, srv: &Server{log: log, writeWait: 10 * time.Second}, out: make(chan []byte, writeQueue), done: make(chan struct{})}
	go c.writeLoop()
	return c
}

// Addr is the listening address.
func (s *Server) Addr() net.Addr { return s.ln.Addr() }

// Serve accepts until the listener is closed.
func (s *Server) Serve() {
	for {
		nc, err := s.ln.Accept()
		if err != nil {
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				continue
			}
			return
		}
		if tc, ok := nc.(*net.TCPConn); ok {
			_ = tc.SetNoDelay(true)
		}
		c := &Conn{nc: nc, srv: s, out: make(chan []byte, writeQueue), done: make(chan struct{})}
		s.mu.Lock()
		if s.closed {
			s.mu.Unlock()
			nc.Close()
			return
		}
		s.conns[c] = struct{}{}
		s.wg.Add(1)
		s.mu.Unlock()
		go c.readLoop()
		go c.writeLoop()
	}
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
	s.closed = true
	conns := make([]*Conn, 0, len(s.conns))
	for c := range s.conns {
		conns = append(conns, c)
	}
	s.mu.Unlock()
	s.draining.Store(true)
	s.ln.Close()
	deadline := time.Now().Add(s.drainWait)
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

// Conn is one client connection. Every frame goes through out to a single writer goroutine, so responders never
// block on a slow peer and frames never interleave.
type Conn struct {
	nc     net.Conn
	srv    *Server
	out    chan []byte
	done   chan struct{}
	queued atomic.Int64 // bytes in out
	closed atomic.Bool
	opaque atomic.Int32
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
	buf := make([]byte, 0, 64<<10)
	for {
		select {
		case <-c.done:
			return
		case f := <-c.out:
			c.queued.Add(-int64(len(f)))
			buf = append(buf[:0], f...)
			// Coalesce whatever else is queued into one write: fewer syscalls under load.
		more:
			for len(buf) < 1<<20 {
				select {
				case f := <-c.out:
					c.queued.Add(-int64(len(f)))
					buf = append(buf, f...)
				default:
					break more
				}
			}
			_ = c.nc.SetWriteDeadline(time.Now().Add(c.srv.writeWait))
			if _, err := c.nc.Write(buf); err != nil {
				if !c.closed.Load() {
					c.srv.log.Warn("closing connection: write failed", "remote", c.nc.RemoteAddr().String(), "err", err)
				}
				c.Close()
				return
			}
			if cap(buf) > 4<<20 {
				buf = make([]byte, 0, 64<<10)
			}
		}
	}
}

func (c *Conn) readLoop() {
	r := bufio.NewReaderSize(c.nc, 64<<10)
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
		if c.srv.onIdle != nil && !frameBuffered(r) {
			c.srv.safeIdle(c)
		}
		frame, err := ReadFrame(r)
		if err != nil {
			if !c.closed.Load() && !c.srv.draining.Load() && !errors.Is(err, io.EOF) && !errors.Is(err, net.ErrClosed) {
				c.srv.log.Warn("closing connection: unreadable frame", "remote", c.nc.RemoteAddr().String(), "err", err)
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
			c.srv.log.Warn("closing connection: bad frame", "remote", c.nc.RemoteAddr().String(), "err", err)
			return
		}
		if req.IsResponse() {
			continue // answers to our notifications; nothing waits for them
		}
		resp := c.srv.safeHandle(c, req)
		if resp != nil {
			if err := c.Reply(req, resp); err != nil {
				return
			}
		}
	}
}

// frameBuffered reports whether r holds a whole frame, so reading it needs no system call and cannot block.
func frameBuffered(r *bufio.Reader) bool {
	if r.Buffered() < 4 {
		return false
	}
	b, err := r.Peek(4)
	if err != nil {
		return false
	}
	n := int64(binary.BigEndian.Uint32(b))
	return int64(r.Buffered()) >= 4+n
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
	return c.Write(resp)
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

// queue hands whole frames to the writer.
func (c *Conn) queue(frame []byte) error {
	if c.queued.Add(int64(len(frame))) > maxQueuedBytes {
		c.srv.log.Warn("closing connection: client not reading its responses", "remote", c.nc.RemoteAddr().String(), "queuedBytes", c.queued.Load())
		c.Close()
		return fmt.Errorf("remoting: %s: %w (write queue full)", c.nc.RemoteAddr(), ErrClosed)
	}
	select {
	case c.out <- frame:
		return nil
	case <-c.done:
		return ErrClosed
	default:
		c.srv.log.Warn("closing connection: client not reading its responses", "remote", c.nc.RemoteAddr().String(), "queued", len(c.out))
		c.Close()
		return fmt.Errorf("remoting: %s: %w (write queue full)", c.nc.RemoteAddr(), ErrClosed)
	}
}
