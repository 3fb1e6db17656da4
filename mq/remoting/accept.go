package remoting

import (
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"
)

// ErrNotAccepting is wrapped by AcceptHealth while the listener's accepts fail.
var ErrNotAccepting = errors.New("not accepting connections")

// Accept back-off, as net/http's Server.Serve: 5 ms doubling to 1 s.
const (
	minAcceptDelay = 5 * time.Millisecond
	maxAcceptDelay = time.Second
	// acceptHealthWindow: the listener counts as not accepting until this long after its last failed accept. Once
	// the cause clears and no connection is waiting, Accept blocks without failing again, so the state must end
	// by itself; failures come at most maxAcceptDelay apart while the cause lasts.
	acceptHealthWindow = 2 * maxAcceptDelay
	// acceptStillFailingEvery spaces the "still failing" lines of a long burst.
	acceptStillFailingEvery = time.Minute
)

// acceptState records a burst of failed accepts. mu guards every field.
type acceptState struct {
	mu         sync.Mutex
	burst      bool      // a burst is in progress (no successful accept since it began)
	since      time.Time // first failure of the burst
	last       time.Time // latest failure
	lastLogged time.Time
	failures   int
	err        error
}

// serverStats are the listener's counters (read with Stats).
type serverStats struct {
	accepted, refused, acceptErrors, idleClosed, frameTimeouts, badFrames atomic.Uint64
}

// ServerStats are a listener's counters since it started.
type ServerStats struct {
	Accepted      uint64 // connections accepted and served
	Refused       uint64 // connections closed at once because MaxConns were open
	AcceptErrors  uint64 // failed accepts (EMFILE, ENFILE, ...), each retried after a back-off
	IdleClosed    uint64 // connections closed after IdleTimeout of silence
	FrameTimeouts uint64 // connections closed because a frame did not arrive whole within FrameTimeout
	BadFrames     uint64 // connections closed for a frame that cannot be read (bad length, bad header)
	Open          int    // connections open now
}

// Stats returns the listener's counters.
func (s *Server) Stats() ServerStats {
	return ServerStats{Accepted: s.stats.accepted.Load(), Refused: s.stats.refused.Load(),
		AcceptErrors: s.stats.acceptErrors.Load(), IdleClosed: s.stats.idleClosed.Load(),
		FrameTimeouts: s.stats.frameTimeouts.Load(), BadFrames: s.stats.badFrames.Load(), Open: s.ConnCount()}
}

// MaxConns is the connection limit in force (0: none).
func (s *Server) MaxConns() int { return s.maxConns }

// AcceptHealth is nil while the listener accepts connections, and an error wrapping ErrNotAccepting (with the
// cause, since when and how many accepts failed) while its accepts fail. Feed it to readiness.
func (s *Server) AcceptHealth() error {
	a := &s.accept
	a.mu.Lock()
	defer a.mu.Unlock()
	if !a.burst || time.Since(a.last) > acceptHealthWindow {
		return nil
	}
	return fmt.Errorf("%s %w since %s (%d failed accepts, retrying): %w", s.ln.Addr(), ErrNotAccepting,
		a.since.UTC().Format(time.RFC3339), a.failures, a.err)
}

// acceptFailed records a failed accept and returns the delay before the next try. The first failure of a burst
// is logged at once; a long burst adds a line a minute; the end of the burst is logged by acceptRecovered.
func (s *Server) acceptFailed(err error, delay time.Duration) time.Duration {
	s.stats.acceptErrors.Add(1)
	if delay == 0 {
		delay = minAcceptDelay
	} else {
		delay = min(2*delay, maxAcceptDelay)
	}
	now := time.Now()
	a := &s.accept
	a.mu.Lock()
	if a.burst && now.Sub(a.last) > acceptHealthWindow {
		a.burst = false // the previous burst ended without a successful accept (nothing was waiting)
	}
	a.last, a.err = now, err
	var first, still bool
	var failures int
	var since time.Time
	if !a.burst {
		a.burst, a.since, a.failures, a.lastLogged = true, now, 0, now
		first = true
	}
	a.failures++
	if !first && now.Sub(a.lastLogged) >= acceptStillFailingEvery {
		a.lastLogged, still = now, true
	}
	failures, since = a.failures, a.since
	a.mu.Unlock()
	switch {
	case first:
		s.log.Error("accept failed: not accepting connections, retrying with back-off (raise the open-file limit, ulimit -n, or lower the connection limit)",
			"addr", s.ln.Addr().String(), "err", err)
	case still:
		s.log.Error("accept still failing", "addr", s.ln.Addr().String(), "err", err, "failures", failures,
			"since", since.UTC().Format(time.RFC3339))
	}
	return delay
}

// acceptRecovered ends a burst (an accept succeeded after failures) with one line counting it.
func (s *Server) acceptRecovered() {
	a := &s.accept
	a.mu.Lock()
	if !a.burst {
		a.mu.Unlock()
		return
	}
	a.burst = false
	failures, since := a.failures, a.since
	a.mu.Unlock()
	s.log.Warn("accepting connections again", "addr", s.ln.Addr().String(), "failedAccepts", failures,
		"for", time.Since(since).Round(time.Millisecond).String())
}
