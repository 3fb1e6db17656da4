package gateway

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"runtime"
	"strconv"
	"strings"
	"sync/atomic"
)

// Close tracing, a diagnostic for a cut seen in CI (docs/STATUS.md, "Open bug"): a streamed response through the
// net/http path ended with "use of closed network connection" on the instance's side while the request's context
// was live, i.e. something in this process closed the upstream connection under the read. With Debug logging on,
// upstream connections are dialled as tracedConns: the first Close records its caller's stack, and a read that
// then fails with net.ErrClosed logs that stack once, with the connection's local address (which the response-cut
// line's error names). With Debug off nothing is wrapped and nothing is recorded.

// tracedConn is an upstream connection that remembers who closed it.
type tracedConn struct {
	net.Conn
	log      *slog.Logger
	closedBy atomic.Pointer[string] // the closer's frames, set once by the first Close
	reported atomic.Bool
}

func (c *tracedConn) Close() error {
	if c.closedBy.Load() == nil {
		s := callers(2)
		c.closedBy.CompareAndSwap(nil, &s)
	}
	return c.Conn.Close()
}

func (c *tracedConn) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	if err != nil && errors.Is(err, net.ErrClosed) {
		if by := c.closedBy.Load(); by != nil && c.reported.CompareAndSwap(false, true) {
			c.log.Debug("upstream connection closed under a read", "local", c.Conn.LocalAddr().String(),
				"remote", c.Conn.RemoteAddr().String(), "closedBy", *by)
		}
	}
	return n, err
}

// callers is the calling goroutine's stack from skip frames up, as "function:line < caller:line < ...", at most 16
// frames.
func callers(skip int) string {
	pcs := make([]uintptr, 16)
	n := runtime.Callers(skip+1, pcs)
	frames := runtime.CallersFrames(pcs[:n])
	var b strings.Builder
	for {
		f, more := frames.Next()
		if b.Len() > 0 {
			b.WriteString(" < ")
		}
		b.WriteString(f.Function)
		b.WriteByte(':')
		b.WriteString(strconv.Itoa(f.Line))
		if !more {
			return b.String()
		}
	}
}

// traceDial wraps dial's connections in tracedConns when log is enabled at Debug level; otherwise it returns dial.
func traceDial(log *slog.Logger, dial func(ctx context.Context, network, addr string) (net.Conn, error)) func(ctx context.Context, network, addr string) (net.Conn, error) {
	if log == nil || !log.Enabled(context.Background(), slog.LevelDebug) {
		return dial
	}
	return func(ctx context.Context, network, addr string) (net.Conn, error) {
		c, err := dial(ctx, network, addr)
		if err != nil {
			return nil, err
		}
		return &tracedConn{Conn: c, log: log}, nil
	}
}
