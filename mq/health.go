package mq

import (
	"errors"
	"fmt"

	"github.com/tide-run/tide/mq/remoting"
)

// ErrNotRunning is what every readiness check reports before Start and after Shutdown.
var ErrNotRunning = errors.New("mq: not running")

// ReadyCheck is one named readiness condition of the embedded broker.
type ReadyCheck struct {
	Name  string
	Check func() error // nil: ready
}

// ReadyChecks are the conditions readiness reports apart, so a failing one is named:
//   - rocketmq-namesrv-accepting, rocketmq-broker-accepting: the listener accepts connections (fails while accepts
//     fail, e.g. EMFILE, and for up to 2 s after the last failure);
//   - rocketmq-store-writable: the store takes writes (fails while the disk is full or the commit log is broken,
//     i.e. while the broker refuses sends).
func (s *Server) ReadyChecks() []ReadyCheck {
	return []ReadyCheck{
		{"rocketmq-namesrv-accepting", func() error { return s.listenerHealth(s.nsSrv) }},
		{"rocketmq-broker-accepting", func() error { return s.listenerHealth(s.brSrv) }},
		{"rocketmq-store-writable", func() error {
			if !s.ready.Load() {
				return ErrNotRunning
			}
			return s.st.Health()
		}},
	}
}

func (s *Server) listenerHealth(l *remoting.Server) error {
	if !s.ready.Load() {
		return ErrNotRunning
	}
	return l.AcceptHealth()
}

// Health is nil when the server runs and every ReadyCheck passes; otherwise the failures, each prefixed with its
// check's name.
func (s *Server) Health() error {
	if !s.ready.Load() {
		return ErrNotRunning
	}
	var errs []error
	for _, c := range s.ReadyChecks() {
		if err := c.Check(); err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", c.Name, err))
		}
	}
	return errors.Join(errs...)
}

// NameServerStats and BrokerStats are the listeners' connection counters (accepted, refused at the limit, accept
// errors, idle and frame timeouts, bad frames, open now).
func (s *Server) NameServerStats() remoting.ServerStats { return s.nsSrv.Stats() }

// BrokerStats: see NameServerStats.
func (s *Server) BrokerStats() remoting.ServerStats { return s.brSrv.Stats() }
