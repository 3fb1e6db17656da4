package gateway

import (
	"bufio"
	"context"
	"errors"
	"net"
	"net/http"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/tide-run/tide/internal/h1"
)

// Server serves a Gateway on a listener with a lean HTTP/1.1 path for plain requests and net/http for everything
// else (docs/BENCHMARKS.md, "Gateway at nginx's throughput", has the profile that motivated it).
//
// Each accepted connection starts on the lean path: one goroutine reads a request head, and when the request is a
// plain one (HTTP/1.1, GET or HEAD, origin-form target, no body, no Expect, no Upgrade, a Host that routes to a
// revision with a free slot on an HTTP/1.1 instance, no response-start or idle timeout) it proxies it itself over
// the instance's keep-alive pool and writes the response, without net/http's per-request goroutine hand-off
// (background read), contexts, header maps and response writer. Anything else — and anything the lean parser does
// not accept exactly — is handed to the net/http server with every byte read so far, before a byte of the answer
// is written, and the connection stays with net/http from then on. So upgrades (WebSocket), h2c, bodies, 100-continue,
// oversized heads (net/http's 431), malformed requests (its 400), queueing at the activator and the fallback are
// net/http's and the gateway handler's, exactly as before.
//
// Invariants: a lean connection is owned by its goroutine; mu guards conns and closing. The lean path never
// consumes a request's bytes before it commits to answering it, which is what makes the hand-off transparent.
type Server struct {
	g    *Gateway
	http *http.Server
	// headerTimeout bounds the time from a request's first byte to the end of its head (slowloris), as
	// http.Server.ReadHeaderTimeout does; default 10 s.
	headerTimeout time.Duration

	hand     *handoffListener
	serving  sync.Once
	serveErr chan error

	mu      sync.Mutex
	closing bool
	lns     map[net.Listener]struct{}
	conns   map[*leanConn]struct{}
	active  sync.WaitGroup // lean connection goroutines

	dates dateCache

	// What the lean path did, for tests and the benchmark's notes: requests it answered, connections it handed
	// to net/http.
	leanAnswered, handedOff atomic.Uint64
}

func (s *Server) date() []byte { return s.dates.get() }

// NewServer returns a Server for g. srv is the net/http server that takes the connections the lean path hands
// off; its Handler should be g (nil: g). Its ReadHeaderTimeout, when set, also bounds the lean path's heads.
func NewServer(g *Gateway, srv *http.Server) *Server {
	if srv == nil {
		srv = &http.Server{ReadHeaderTimeout: 10 * time.Second}
	}
	if srv.Handler == nil {
		srv.Handler = g
	}
	ht := srv.ReadHeaderTimeout
	if ht <= 0 {
		ht = 10 * time.Second
	}
	return &Server{g: g, http: srv, headerTimeout: ht, hand: newHandoffListener(), serveErr: make(chan error, 1),
		lns: map[net.Listener]struct{}{}, conns: map[*leanConn]struct{}{}}
}

// Serve accepts connections on l until it is closed (Shutdown, Close); it returns http.ErrServerClosed then.
func (s *Server) Serve(l net.Listener) error {
	s.hand.setAddr(l.Addr())
	s.serving.Do(func() {
		go func() { s.serveErr <- s.http.Serve(s.hand) }()
	})
	s.mu.Lock()
	if s.closing {
		s.mu.Unlock()
		l.Close()
		return http.ErrServerClosed
	}
	s.lns[l] = struct{}{}
	s.mu.Unlock()
	var delay time.Duration
	for {
		c, err := l.Accept()
		if err != nil {
			s.mu.Lock()
			closing := s.closing
			s.mu.Unlock()
			if closing {
				return http.ErrServerClosed
			}
			if te, ok := err.(interface{ Temporary() bool }); ok && te.Temporary() { // EMFILE and the like
				delay = min(max(2*delay, 5*time.Millisecond), time.Second)
				time.Sleep(delay) // accept back-off, as net/http's
				continue
			}
			return err
		}
		delay = 0
		lc := s.newConn(c)
		if lc == nil {
			c.Close()
			continue
		}
		go lc.serve()
	}
}

// Shutdown stops accepting, closes idle connections, lets requests in progress finish (lean and net/http ones),
// then returns; when ctx ends first it returns ctx's error and the caller may Close.
func (s *Server) Shutdown(ctx context.Context) error {
	s.closeListeners()
	errc := make(chan error, 1)
	go func() { errc <- s.http.Shutdown(ctx) }()
	leanDone := make(chan struct{})
	go func() { s.active.Wait(); close(leanDone) }()
	var err error
	select {
	case <-leanDone:
	case <-ctx.Done():
		err = ctx.Err()
	}
	return errors.Join(err, <-errc)
}

// Close closes the listeners and every connection at once.
func (s *Server) Close() error {
	s.closeListeners()
	s.mu.Lock()
	for lc := range s.conns {
		lc.c.Close()
	}
	s.mu.Unlock()
	return s.http.Close()
}

func (s *Server) closeListeners() {
	s.mu.Lock()
	s.closing = true
	for l := range s.lns {
		l.Close()
	}
	// Idle connections wait in a read; a deadline in the past ends it and their goroutine closes them.
	for lc := range s.conns {
		if !lc.busy {
			_ = lc.c.SetReadDeadline(aLongTimeAgo)
		}
	}
	s.mu.Unlock()
	s.hand.Close()
}

func (s *Server) newConn(c net.Conn) *leanConn {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closing {
		return nil
	}
	lc := &leanConn{s: s, c: c}
	s.conns[lc] = struct{}{}
	s.active.Add(1)
	return lc
}

// setBusy marks lc as working on a request (true) or waiting for one (false); false while the server is closing
// reports that lc must stop.
func (s *Server) setBusy(lc *leanConn, busy bool) (ok bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	lc.busy = busy
	return !s.closing
}

func (s *Server) forget(lc *leanConn) {
	s.mu.Lock()
	delete(s.conns, lc)
	s.mu.Unlock()
	s.active.Done()
}

// leanHeadMax is the largest request head the lean path reads (its read buffer); a larger one is handed to
// net/http, whose limit (http.DefaultMaxHeaderBytes) and 431 apply.
const leanHeadMax = 8 << 10

// leanConn is one client connection on the lean path.
type leanConn struct {
	s    *Server
	c    net.Conn
	src  connReader // what br reads c through
	br   *bufio.Reader
	bw   *bufio.Writer
	busy bool // guarded by s.mu

	// The peer, computed once: the client IP for the forwarding headers and whether it is a loopback caller.
	remote   string
	client   string
	loopback bool

	req   leanReq  // reused for every request
	resp  leanResp // the instance's response head, reused
	rhead []byte   // its bytes
	// inject: with tracing on, the traceparent/tracestate the instance gets for the request in progress.
	inject http.Header

	// The slow-request watcher (watchClient): armed while the goroutine waits for an instance's answer.
	slow       *time.Timer
	watchDone  chan struct{}
	watchPC    *poolConn // the instance connection the watcher cuts when the client goes
	clientGone bool      // written by the watcher, read after watchDone
}

// connReader is what a lean connection's buffered reader reads the client through: first the byte the watcher read
// (a pipelined request arriving while an instance was working), then the connection.
type connReader struct {
	c       net.Conn
	pending [1]byte
	has     bool
}

func (r *connReader) Read(p []byte) (int, error) {
	if r.has && len(p) > 0 {
		p[0], r.has = r.pending[0], false
		return 1, nil
	}
	return r.c.Read(p)
}

// slowAnswer is how long an instance may take to start answering before the lean path starts watching the client
// connection for a close (net/http's path watches every request, with a goroutine hand-off each time).
const slowAnswer = 100 * time.Millisecond

// armWatch starts the slow-request timer before waiting for pc's answer.
func (lc *leanConn) armWatch(pc *poolConn) {
	lc.watchPC, lc.clientGone = pc, false
	if lc.slow == nil {
		lc.watchDone = make(chan struct{}, 1)
		lc.slow = time.AfterFunc(slowAnswer, lc.watchClient)
		return
	}
	lc.slow.Reset(slowAnswer)
}

// disarmWatch stops the timer, or the watcher it started (waiting for it), once the answer started or failed.
func (lc *leanConn) disarmWatch() {
	if lc.slow.Stop() {
		return
	}
	_ = lc.c.SetReadDeadline(aLongTimeAgo)
	<-lc.watchDone
	_ = lc.c.SetReadDeadline(time.Time{})
}

// watchClient runs when an instance is slow to answer: it reads the client connection (the connection's goroutine
// is blocked on the instance, and touches neither the reader nor this connection until disarmWatch returned). A
// byte is kept for the reader (pipelining: the client is there); an error other than disarmWatch's deadline means
// the client went away, and the instance's request is cut as net/http's path cancels it.
func (lc *leanConn) watchClient() {
	defer func() { lc.watchDone <- struct{}{} }()
	if lc.src.has {
		return
	}
	n, err := lc.c.Read(lc.src.pending[:1])
	if n == 1 {
		lc.src.has = true
		return
	}
	if errors.Is(err, os.ErrDeadlineExceeded) {
		return
	}
	lc.clientGone = true
	_ = lc.watchPC.c.SetDeadline(aLongTimeAgo)
}

func (lc *leanConn) serve() {
	handedOff := false
	defer func() {
		if !handedOff {
			lc.c.Close()
		}
		lc.s.forget(lc)
	}()
	lc.remote = lc.c.RemoteAddr().String()
	lc.client = clientAddrOf(lc.remote)
	lc.loopback = LoopbackCaller(lc.remote)
	lc.src.c = lc.c
	lc.br = bufio.NewReaderSize(&lc.src, leanHeadMax)
	lc.bw = bufio.NewWriterSize(lc.c, 4<<10)
	for {
		// Waiting for the next request: no deadline, as net/http's server without IdleTimeout.
		if _, err := lc.br.Peek(1); err != nil {
			return
		}
		if !lc.s.setBusy(lc, true) {
			return // shutting down: the request is not started; the client retries it elsewhere
		}
		head, st := lc.readHead()
		var res leanResult
		switch st {
		case headOK:
			res = lc.s.g.leanServe(lc, head)
		case headHandOff:
			res = leanHandOff
		default:
			return // the client went away or was too slow; nothing to answer, as net/http
		}
		// The answer's last bytes go out only now, after the instance's slot and connection were released and the
		// request counted, as net/http flushes after the handler returned: a client that got its answer finds the
		// slot free.
		if res != leanHandOff && lc.bw.Buffered() > 0 && lc.bw.Flush() != nil {
			res = leanClose
		}
		switch res {
		case leanHandOff:
			lc.s.handedOff.Add(1)
			handedOff = lc.handOff()
			return
		case leanClose:
			return
		}
		if cap(lc.rhead) > 64<<10 {
			lc.rhead = nil // an instance's outsized response head is not kept for the connection's lifetime
		}
		if !lc.s.setBusy(lc, false) {
			return
		}
	}
}

type headState int

const (
	headOK headState = iota
	headHandOff
	headGone
	headNeedMore
)

// readHead returns the request head (request line through the empty line) from the read buffer, without
// consuming it. A head that does not end in CRLF lines, or does not fit the buffer, goes to net/http. The first
// read that does not complete the head arms the header timeout (slowloris), so a request that arrives in one
// segment, the usual case, costs no timer.
func (lc *leanConn) readHead() ([]byte, headState) {
	armed := false
	defer func() {
		if armed {
			_ = lc.c.SetReadDeadline(time.Time{})
		}
	}()
	scanned := 0
	for {
		buf, _ := lc.br.Peek(lc.br.Buffered())
		n, st := scanHead(buf, &scanned)
		if st != headNeedMore {
			return buf[:n], st
		}
		if len(buf) >= lc.br.Size() {
			return nil, headHandOff // larger than the lean path reads
		}
		if !armed {
			armed = true
			_ = lc.c.SetReadDeadline(time.Now().Add(lc.s.headerTimeout))
		}
		if _, err := lc.br.Peek(len(buf) + 1); err != nil {
			return nil, headGone
		}
	}
}

// scanHead finds the end of a request head in buf, resuming at *scanned (the lines already seen): the head's
// length and headOK, headHandOff for a line that does not end in CRLF or an empty line first, or headNeedMore.
func scanHead(buf []byte, scanned *int) (int, headState) {
	for {
		i := h1.IndexByte(buf[*scanned:], '\n')
		if i < 0 {
			return 0, headNeedMore
		}
		end := *scanned + i
		if end == 0 || buf[end-1] != '\r' {
			return 0, headHandOff // bare LF: net/http's lenient parser decides
		}
		if end == *scanned+1 { // "\r\n": the empty line
			if *scanned == 0 {
				return 0, headHandOff // empty line before the request line
			}
			return end + 1, headOK
		}
		*scanned = end + 1
	}
}

// handOff gives the connection, with the bytes read but not consumed, to the net/http server. It reports whether
// the server took it (false: shutting down; the caller closes it).
func (lc *leanConn) handOff() bool {
	var c net.Conn = lc.c
	if n := lc.br.Buffered(); n > 0 || lc.src.has {
		b, _ := lc.br.Peek(n)
		pending := append([]byte(nil), b...)
		if lc.src.has {
			pending = append(pending, lc.src.pending[0])
		}
		c = &replayConn{Conn: lc.c, pending: pending}
	}
	if lc.slow != nil {
		lc.slow.Stop() // never running here: it is disarmed after every wait
	}
	return lc.s.hand.give(c)
}

// replayConn is a connection whose first reads return bytes already read from it.
type replayConn struct {
	net.Conn
	pending []byte
}

func (c *replayConn) Read(p []byte) (int, error) {
	if len(c.pending) > 0 {
		n := copy(p, c.pending)
		c.pending = c.pending[n:]
		return n, nil
	}
	return c.Conn.Read(p)
}

// CloseWrite keeps net/http's graceful close (it half-closes TCP connections after an error answer).
func (c *replayConn) CloseWrite() error {
	if cw, ok := c.Conn.(interface{ CloseWrite() error }); ok {
		return cw.CloseWrite()
	}
	return nil
}

// handoffListener is the net.Listener the net/http server accepts handed-off connections from.
type handoffListener struct {
	ch     chan net.Conn
	done   chan struct{}
	once   sync.Once
	addr   atomic.Pointer[net.Addr]
	closed atomic.Bool
}

func newHandoffListener() *handoffListener {
	return &handoffListener{ch: make(chan net.Conn), done: make(chan struct{})}
}

func (h *handoffListener) setAddr(a net.Addr) { h.addr.CompareAndSwap(nil, &a) }

func (h *handoffListener) give(c net.Conn) bool {
	select {
	case h.ch <- c:
		return true
	case <-h.done:
		return false
	}
}

func (h *handoffListener) Accept() (net.Conn, error) {
	select {
	case c := <-h.ch:
		return c, nil
	case <-h.done:
		return nil, net.ErrClosed
	}
}

func (h *handoffListener) Close() error {
	h.once.Do(func() { h.closed.Store(true); close(h.done) })
	return nil
}

func (h *handoffListener) Addr() net.Addr {
	if a := h.addr.Load(); a != nil {
		return *a
	}
	return &net.TCPAddr{}
}

// clientAddrOf is clientAddr for a RemoteAddr string.
func clientAddrOf(remote string) string {
	host, _, err := net.SplitHostPort(remote)
	if err != nil {
		return remote
	}
	return host
}
