//go:build unix

package delivery

import (
	"net"
	"syscall"
)

// prober tells whether the server closed a kept-alive connection while it sat idle (or sent bytes nobody asked
// for): one non-blocking MSG_PEEK, in place of the read goroutine http.Transport keeps on every idle connection.
type prober struct {
	rc     syscall.RawConn
	fn     func(fd uintptr) bool // built once per connection, so a probe does not allocate
	closed bool
}

func newProber(c net.Conn) prober {
	sc, ok := c.(syscall.Conn)
	if !ok {
		return prober{}
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return prober{}
	}
	p := prober{rc: rc}
	return p
}

// peerClosed reports a connection that must not be reused.
func (p *prober) peerClosed() bool {
	if p.rc == nil {
		return false
	}
	if p.fn == nil {
		p.fn = func(fd uintptr) bool {
			var b [1]byte
			n, _, err := syscall.Recvfrom(int(fd), b[:], syscall.MSG_PEEK|syscall.MSG_DONTWAIT)
			// EAGAIN: open and quiet. 0 bytes: the server's FIN. Bytes: unsolicited (http.Transport closes such a
			// connection too). Any other error (ECONNRESET): gone.
			p.closed = !(err == syscall.EAGAIN || err == syscall.EWOULDBLOCK) || n > 0
			return true // never wait for readiness
		}
	}
	if err := p.rc.Read(p.fn); err != nil {
		return true
	}
	return p.closed
}
