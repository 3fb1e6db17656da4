package gateway

import (
	"bufio"
	"context"
	"errors"
	"net"
	"net/http"
	"sync"
	"time"
)

// connPool is one instance's keep-alive HTTP/1.1 connections for the fast path: plain GET/HEAD requests without a
// body. The handler's goroutine writes the request and reads the response on the connection itself, so a request
// costs no hand-off to http.Transport's per-connection read and write goroutines. Everything else (bodies, Expect,
// h2c, upgrades, response-start/idle timeouts) still goes through http.Transport.
//
// Invariant: mu guards idle and closed; a connection is either in idle or owned by exactly one request.
type connPool struct {
	addr    string
	maxIdle int
	dialer  net.Dialer
	// dial is dialer.DialContext, wrapped by traceDial when the gateway logs at Debug level (closetrace.go).
	dial func(ctx context.Context, network, addr string) (net.Conn, error)

	mu     sync.Mutex
	idle   []*poolConn
	closed bool
}

type poolConn struct {
	c      net.Conn
	br     *bufio.Reader
	bw     *bufio.Writer
	reused bool
	stop   func() bool // unregisters the context's cancel hook
}

func newConnPool(addr string, maxIdle int) *connPool {
	p := &connPool{addr: addr, maxIdle: maxIdle, dialer: net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second}}
	p.dial = p.dialer.DialContext
	return p
}

// fastEligible reports a request the fast path handles exactly as http.Transport would: replayable (so a stale
// keep-alive connection may be retried), no body, no 100-continue, no trailers.
func fastEligible(out *http.Request) bool {
	if out.Method != http.MethodGet && out.Method != http.MethodHead {
		return false
	}
	if out.Body != nil || len(out.TransferEncoding) > 0 || out.Trailer != nil {
		return false
	}
	_, expect := out.Header["Expect"]
	return !expect
}

func (p *connPool) get(ctx context.Context) (*poolConn, error) {
	p.mu.Lock()
	if n := len(p.idle); n > 0 {
		pc := p.idle[n-1]
		p.idle[n-1] = nil
		p.idle = p.idle[:n-1]
		p.mu.Unlock()
		pc.reused = true
		return pc, nil
	}
	p.mu.Unlock()
	c, err := p.dial(ctx, "tcp", p.addr)
	if err != nil {
		return nil, err
	}
	return &poolConn{c: c, br: bufio.NewReaderSize(c, 4<<10), bw: bufio.NewWriterSize(c, 4<<10)}, nil
}

// release ends a request's use of pc: back to the pool when reusable (response read to the end, no Connection:
// close, context hook not fired), closed otherwise.
func (p *connPool) release(pc *poolConn, reusable bool) {
	if pc.stop != nil && !pc.stop() { // the context ended: its hook has cut (or is cutting) the connection
		reusable = false
	}
	pc.stop = nil
	p.put(pc, reusable)
}

// put returns pc to the pool when reusable and closes it otherwise. The lean server (leanproxy.go) calls it
// directly: it bounds a request with the connection's deadline instead of a context hook, and clears the deadline
// before putting the connection back.
func (p *connPool) put(pc *poolConn, reusable bool) {
	if reusable {
		p.mu.Lock()
		if !p.closed && len(p.idle) < p.maxIdle {
			p.idle = append(p.idle, pc)
			p.mu.Unlock()
			return
		}
		p.mu.Unlock()
	}
	pc.c.Close()
}

// close closes the idle connections and makes later releases close theirs (the instance left the rotation).
func (p *connPool) close() {
	p.mu.Lock()
	idle := p.idle
	p.idle, p.closed = nil, true
	p.mu.Unlock()
	for _, pc := range idle {
		pc.c.Close()
	}
}

// max1xxResponses bounds the informational responses skipped before the final one.
const max1xxResponses = 5

var errTooMany1xx = errors.New("too many 1xx informational responses")

// aLongTimeAgo is a deadline in the past: setting it makes blocked reads and writes on a connection fail at once.
var aLongTimeAgo = time.Unix(1, 0)

// roundTrip sends out and reads the response head; the caller reads the body and then calls release. A reused
// connection that fails before any response byte arrives was closed by the instance while idle: the request is
// sent again on another connection, as http.Transport does for replayable requests.
func (p *connPool) roundTrip(out *http.Request) (*http.Response, *poolConn, error) {
	ctx := out.Context()
	for {
		pc, err := p.get(ctx)
		if err != nil {
			return nil, nil, err
		}
		c := pc.c
		pc.stop = context.AfterFunc(ctx, func() { _ = c.SetDeadline(aLongTimeAgo) })
		err = out.Write(pc.bw)
		if err == nil {
			err = pc.bw.Flush()
		}
		received := false
		if err == nil {
			if _, err = pc.br.Peek(1); err == nil {
				received = true
				var resp *http.Response
				for n := 0; ; n++ {
					resp, err = http.ReadResponse(pc.br, out)
					// 1xx informational responses are dropped, as http.Transport does (101 only answers upgrades,
					// which do not take this path), and a flood of them is an error, as there.
					if err != nil || resp.StatusCode < 100 || resp.StatusCode > 199 || resp.StatusCode == http.StatusSwitchingProtocols {
						break
					}
					if n == max1xxResponses {
						err = errTooMany1xx
						break
					}
				}
				if err == nil {
					return resp, pc, nil
				}
			}
		}
		pc.stop()
		c.Close()
		if pc.reused && !received && ctx.Err() == nil {
			continue
		}
		return nil, nil, err
	}
}
