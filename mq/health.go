package mq

import (
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"

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
//     i.e. while the broker refuses sends);
//   - rocketmq-grpc-serving (with the gRPC endpoint): the RocketMQ 5 endpoint serves.
func (s *Server) ReadyChecks() []ReadyCheck {
	checks := []ReadyCheck{
		{"rocketmq-namesrv-accepting", func() error { return s.listenerHealth(s.nsSrv) }},
		{"rocketmq-broker-accepting", func() error { return s.listenerHealth(s.brSrv) }},
		{"rocketmq-store-writable", func() error {
			if !s.ready.Load() {
				return ErrNotRunning
			}
			return s.st.Health()
		}},
	}
	if s.grpc != nil {
		checks = append(checks, ReadyCheck{"rocketmq-grpc-serving", func() error {
			if !s.ready.Load() {
				return ErrNotRunning
			}
			return s.grpc.Health()
		}})
	}
	return checks
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

// HealthHandler serves GET /readyz (200 when Health is nil, 503 otherwise, one "[+]name ok" or "[-]name failed:
// reason" line per check, as tide up's API does) and GET /livez (200 while the process serves), for `tide broker
// --health-addr`.
func (s *Server) HealthHandler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /livez", func(w http.ResponseWriter, _ *http.Request) { _, _ = io.WriteString(w, "ok\n") })
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, _ *http.Request) {
		var b strings.Builder
		ok := s.ready.Load()
		if ok {
			b.WriteString("[+]rocketmq ok\n")
		} else {
			fmt.Fprintf(&b, "[-]rocketmq failed: %v\n", ErrNotRunning)
		}
		for _, c := range s.ReadyChecks() {
			if err := c.Check(); err != nil {
				ok = false
				fmt.Fprintf(&b, "[-]%s failed: %v\n", c.Name, err)
			} else {
				fmt.Fprintf(&b, "[+]%s ok\n", c.Name)
			}
		}
		if ok {
			b.WriteString("readyz check passed\n")
		} else {
			b.WriteString("readyz check failed\n")
			w.WriteHeader(http.StatusServiceUnavailable)
		}
		_, _ = io.WriteString(w, b.String())
	})
	return mux
}
