package process

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	corev1 "k8s.io/api/core/v1"
)

// drainBit marks an Instance as draining inside its state word; the low bits count requests in flight. Keeping
// both in one atomic word makes TryAcquire and drain race-free: once the bit is set no request can be admitted,
// so "in flight reached zero" really is the end.
const drainBit = int64(1) << 62

// Instance is one running process of a revision. The data plane admits a request to it with TryAcquire and ends it
// with Release; the Pool drains an instance before stopping it by refusing new acquisitions and waiting for the
// in-flight count to reach zero.
type Instance struct {
	// ID names the instance's slot ("<revision>-<n>"); a restarted process keeps its slot's ID and log file.
	ID string
	// Addr is the loopback address the data plane proxies to, "127.0.0.1:<port>".
	Addr string
	// Port is the instance's $PORT.
	Port int
	// PID is the process id (also its process group id).
	PID int
	// Started is when the process was started.
	Started time.Time

	state     atomic.Int64 // in-flight count | drainBit
	drained   chan struct{}
	drainOnce sync.Once
	ready     atomic.Bool

	cmd      *exec.Cmd
	exited   chan struct{} // closed once the process has exited and its output is flushed
	exitCode int           // valid after exited is closed; 128+signal for a signal, as Kubernetes reports it
	cgroup   string        // cgroup directory to remove after exit, if any
}

// TryAcquire admits one request unless the instance is draining.
func (i *Instance) TryAcquire() bool {
	for {
		v := i.state.Load()
		if v&drainBit != 0 {
			return false
		}
		if i.state.CompareAndSwap(v, v+1) {
			return true
		}
	}
}

// Release ends a request admitted by TryAcquire.
func (i *Instance) Release() {
	if i.state.Add(-1) == drainBit {
		i.drainOnce.Do(func() { close(i.drained) })
	}
}

// HostPort is the address requests go to (the same as Addr); it lets *Instance serve as an activator.Backend.
func (i *Instance) HostPort() string { return i.Addr }

// InFlight is the number of admitted requests not yet released.
func (i *Instance) InFlight() int { return int(i.state.Load() &^ drainBit) }

// Draining reports whether the instance refuses new requests.
func (i *Instance) Draining() bool { return i.state.Load()&drainBit != 0 }

// Ready reports whether the readiness probe last passed.
func (i *Instance) Ready() bool { return i.ready.Load() }

// startDrain stops admissions; drained is closed once in-flight requests are done.
func (i *Instance) startDrain() {
	if old := i.state.Or(drainBit); old&^drainBit == 0 {
		i.drainOnce.Do(func() { close(i.drained) })
	}
}

// signal sends sig to the instance's whole process group, so a shell wrapper's children stop too.
func (i *Instance) signal(sig syscall.Signal) {
	_ = signalGroup(i.PID, sig)
}

// freePort asks the kernel for a free loopback port. The port is released before the program binds it; a clash
// with another program in that window shows up as a failed start and a restart on a new port.
func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// prober runs one probe definition against an instance.
type prober struct {
	tcp     bool
	url     string
	headers http.Header
	timeout time.Duration
	client  *http.Client
}

func newProber(p *corev1.Probe, port int) *prober {
	timeout := time.Second
	if p != nil && p.TimeoutSeconds > 0 {
		timeout = time.Duration(p.TimeoutSeconds) * time.Second
	}
	pr := &prober{tcp: true, timeout: timeout}
	if p == nil || p.HTTPGet == nil {
		pr.url = net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
		return pr
	}
	// The probe always targets the instance's own port: Knative requires probe ports to be the serving port.
	path := p.HTTPGet.Path
	if path == "" || path[0] != '/' {
		path = "/" + path
	}
	pr.tcp = false
	pr.url = fmt.Sprintf("http://127.0.0.1:%d%s", port, path)
	pr.headers = http.Header{"User-Agent": {"kube-probe/tide"}}
	for _, h := range p.HTTPGet.HTTPHeaders {
		pr.headers.Set(h.Name, h.Value)
	}
	pr.client = &http.Client{
		Timeout:   timeout,
		Transport: &http.Transport{DisableKeepAlives: true, Proxy: nil},
		// Kubernetes follows redirects only to the same host; not following is the safe subset.
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
	return pr
}

// probe returns nil when the instance passes: a TCP connect, or an HTTP status in [200, 400).
func (p *prober) probe(ctx context.Context) error {
	if p.tcp {
		d := net.Dialer{Timeout: p.timeout}
		c, err := d.DialContext(ctx, "tcp", p.url)
		if err != nil {
			return err
		}
		return c.Close()
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, p.url, nil)
	if err != nil {
		return err
	}
	req.Header = p.headers.Clone()
	resp, err := p.client.Do(req)
	if err != nil {
		return err
	}
	resp.Body.Close()
	if resp.StatusCode < 200 || resp.StatusCode >= 400 {
		return fmt.Errorf("HTTP probe failed with statuscode: %d", resp.StatusCode)
	}
	return nil
}

// exitCodeOf reports a finished process's exit code the way Kubernetes does (128+signal when killed).
func exitCodeOf(ps *os.ProcessState) int {
	if ps == nil {
		return -1
	}
	if ws, ok := ps.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
		return 128 + int(ws.Signal())
	}
	return ps.ExitCode()
}
