package mq

import (
	"errors"
	"log/slog"
	"net"
	"net/netip"
	"sync"
	"time"

	"k8s.io/utils/clock"

	"github.com/tide-run/tide/mq/acl"
	"github.com/tide-run/tide/mq/remoting"
)

// ErrInsecure reports a broker that would listen beyond loopback without ACL.
var ErrInsecure = errors.New("mq: refusing to listen beyond loopback without ACL")

// checkExposure refuses a non-loopback Host without an ACL file unless InsecureNoAuth: the broker's remoting port
// lets anyone who reaches it read, write and delete every topic.
func checkExposure(opts Options) error {
	if opts.ACLFile != "" || opts.InsecureNoAuth {
		return nil
	}
	ip, err := netip.ParseAddr(opts.Host)
	if err == nil && ip.Unmap().IsLoopback() {
		return nil
	}
	return &exposureError{host: opts.Host}
}

type exposureError struct{ host string }

func (e *exposureError) Error() string {
	return "mq: the broker would listen on " + e.host + " without ACL, so anyone who can reach it could read, write " +
		"and delete every topic; give an ACL file (tide broker --acl FILE, tide up --acl FILE; see docs/security.md), " +
		"listen on 127.0.0.1, or pass --insecure-no-auth to accept the risk"
}

func (e *exposureError) Unwrap() error { return ErrInsecure }

// aclHandler puts the ACL decision in front of the broker's handler, as Apache's broker runs its ACL RPC hook
// before any processor: a refused request is answered with code 1 (SYSTEM_ERROR) and the AclException text as the
// remark, and never reaches the broker. Only requests pass through a Handler (responses to the broker's own
// requests are consumed by the connection), so only requests are checked.
func aclHandler(w *acl.Watcher, next remoting.Handler, log *slog.Logger, clk clock.PassiveClock) remoting.Handler {
	lim := &denyLog{log: log, clock: clk}
	return func(c *remoting.Conn, req *remoting.Command) *remoting.Command {
		var ip netip.Addr
		if ta, ok := c.RemoteAddr().(*net.TCPAddr); ok {
			ip, _ = netip.AddrFromSlice(ta.IP)
			ip = ip.Unmap()
		}
		err := w.Check(acl.Request{Code: req.Code, Remote: ip, Ext: req.ExtFields, Body: req.Body})
		if err == nil {
			return next(c, req)
		}
		var ae *acl.Error
		if !errors.As(err, &ae) {
			ae = &acl.Error{Msg: err.Error()}
		}
		lim.denied(ip, req.Code, ae.Msg)
		return remoting.NewResponse(req, remoting.SystemError, ae.Remark())
	}
}

// denyLog logs refused requests at most once per interval, with how many were refused since the last line, so a
// misconfigured or hostile client cannot flood the log.
type denyLog struct {
	log   *slog.Logger
	clock clock.PassiveClock

	mu         sync.Mutex // guards last, suppressed
	last       time.Time
	suppressed int
}

const denyLogInterval = 10 * time.Second

func (d *denyLog) denied(ip netip.Addr, code int16, msg string) {
	d.mu.Lock()
	now := d.clock.Now()
	if !d.last.IsZero() && now.Sub(d.last) < denyLogInterval {
		d.suppressed++
		d.mu.Unlock()
		return
	}
	n := d.suppressed
	d.last, d.suppressed = now, 0
	d.mu.Unlock()
	d.log.Warn("request refused by ACL", "remote", ip.String(), "code", code, "reason", msg, "refusedSinceLastLine", n)
}
