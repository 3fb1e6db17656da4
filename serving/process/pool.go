package process

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"syscall"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/utils/clock"
)

// Options configures a Pool. Zero values take the documented defaults.
type Options struct {
	// Spec is the revision to run. Required.
	Spec Spec
	// DataDir, when set, receives one log file per instance under logs/<namespace>/<revision>/<instance>.log.
	DataDir string
	// Builder builds ko:// images; without one, ko:// images fail to start with reason BuildFailed.
	Builder *Builder
	// Resolver backs env valueFrom secretKeyRef / configMapKeyRef.
	Resolver Resolver
	// Clock is injected for tests. Default the real clock.
	Clock clock.WithTicker
	// Logger; the Pool adds component=serving/process. Default slog.Default().
	Logger *slog.Logger
	// StartupProbeInterval caps how often readiness is probed until it first passes. Default 10ms: cold start
	// cost is dominated by this, so it is aggressive, as Knative's queue-proxy is (probing starts at 1 ms and
	// backs off to this cap).
	StartupProbeInterval time.Duration
	// BackoffInitial and BackoffMax bound the restart back-off, which doubles per consecutive failure. Defaults
	// 100ms and 30s. A process that ran for BackoffReset (default 60s) resets it.
	BackoffInitial, BackoffMax, BackoffReset time.Duration
	// ProgressDeadline is how long an instance may stay unready before the Pool reports ProgressDeadlineExceeded
	// (it keeps probing). Default 60s.
	ProgressDeadline time.Duration
	// CgroupRoot is where cgroup v2 is mounted. Default /sys/fs/cgroup.
	CgroupRoot string
	// LogLines is how many recent lines (all instances together) are kept in memory. Default 1000.
	LogLines int
	// RunAs, when set, is the user every instance runs as (tide must be root to switch users). nil: instances run
	// as tide's own user.
	RunAs *RunAs
	// InstanceDir holds each instance's private directory (<InstanceDir>/<namespace>/<revision>/<instance>: its
	// HOME, TMPDIR and the default working directory of a ko:// image) and, with RunAs, the copies of built
	// binaries that user executes. Default InstanceRoot(DataDir, RunAs); without either, instances get no private
	// directory (HOME and TMPDIR are tide's).
	InstanceDir string
}

// EventType says what happened to an instance.
type EventType int

const (
	// InstanceReady: the readiness probe passed; the instance may receive requests.
	InstanceReady EventType = iota
	// InstanceNotReady: the readiness probe failed after having passed; stop routing to it.
	InstanceNotReady
	// InstanceDraining: the instance is being removed; it admits no new requests and is stopped once in-flight
	// requests finish.
	InstanceDraining
	// InstanceGone: the process has exited.
	InstanceGone
	// StatusChanged: Status() changed its Failed/Reason or EverReady (Instance is nil), so the control plane can
	// update the Revision's conditions without polling.
	StatusChanged
)

func (t EventType) String() string {
	return [...]string{"Ready", "NotReady", "Draining", "Gone", "StatusChanged"}[t]
}

// Event is delivered to subscribers in order per instance.
type Event struct {
	Type     EventType
	Instance *Instance
}

// Status is the Pool's observed state, what the control plane turns into Revision conditions.
type Status struct {
	Desired int `json:"desired"` // last SetScale
	Actual  int `json:"actual"`  // processes running or starting (not counting ones being drained)
	Ready   int `json:"ready"`   // instances passing readiness and accepting requests
	// EverReady is true once any instance has passed readiness.
	EverReady bool `json:"everReady"`
	// Failed is true when the container cannot be built or configured, exited, or did not become ready within the
	// progress deadline. Reason is Kubernetes/Knative-shaped (ExitCode3, CreateContainerConfigError, BuildFailed,
	// StartError, ProgressDeadlineExceeded, LivenessProbeFailed) and Message ends with the last log lines. It clears
	// when an instance becomes ready.
	Failed   bool   `json:"failed"`
	Reason   string `json:"reason,omitempty"`
	Message  string `json:"message,omitempty"`
	Restarts int    `json:"restarts"`
	// LastExitCode is the last unexpected exit code, -1 if none.
	LastExitCode int      `json:"lastExitCode"`
	LastLogLines []string `json:"lastLogLines,omitempty"`
	// Limits says whether cpu/memory limits are enforced ("" when the container sets none).
	Limits string `json:"limits,omitempty"`
}

// InstanceInfo describes one instance for listings (`tide get rev -o wide`).
type InstanceInfo struct {
	ID       string    `json:"id"`
	Addr     string    `json:"addr"`
	Port     int       `json:"port"`
	PID      int       `json:"pid"`
	Ready    bool      `json:"ready"`
	Draining bool      `json:"draining"`
	InFlight int       `json:"inFlight"`
	Started  time.Time `json:"started"`
	Restarts int       `json:"restarts"`
}

// Pool runs the instances of one revision and keeps as many as SetScale asks for.
type Pool struct {
	opts      Options
	spec      Spec
	container *corev1.Container
	clock     clock.WithTicker
	log       *slog.Logger
	ring      *logRing
	limits    limits
	cgParent  string // "" when limits are not enforced; guarded by mu (cleared if the kernel refuses)
	logDir    string // "" without a DataDir
	ctx       context.Context
	cancel    context.CancelFunc

	mu       sync.Mutex // guards the fields below
	desired  int
	slots    []*slot        // live slots, len == desired
	stopping map[*slot]bool // slots draining and stopping
	nextSlot int
	closed   bool
	bin      string // built ko:// binary, once resolved
	status   Status // Failed/Reason/Message/Restarts/LastExitCode/LastLogLines/Limits/EverReady

	evMu   sync.Mutex // serializes event delivery, so subscribers see one instance's events in order
	subs   map[int]func(Event)
	nextSb int
}

// slot is one unit of desired scale: it keeps a process running (restarting it) until asked to stop.
type slot struct {
	id       string
	stop     chan struct{} // closed to drain and end the slot
	done     chan struct{} // closed when the slot's goroutine returned
	current  *Instance     // guarded by Pool.mu
	restarts int           // guarded by Pool.mu
}

// New validates the spec and returns a Pool at scale zero.
func New(opts Options) (*Pool, error) {
	c, err := opts.Spec.container()
	if err != nil {
		return nil, err
	}
	if opts.Spec.Revision == "" {
		return nil, fmt.Errorf("%w: metadata.name: the revision name is required", ErrInvalidSpec)
	}
	// The namespace and revision become path elements (logs, instance directories): refuse any that could leave
	// their directory, whatever the caller validated.
	if err := checkName(opts.Spec.Revision); err != nil {
		return nil, fmt.Errorf("%w: metadata.name: %w", ErrInvalidSpec, err)
	}
	if err := checkName(opts.Spec.Namespace); err != nil {
		return nil, fmt.Errorf("%w: metadata.namespace: %w", ErrInvalidSpec, err)
	}
	var logDir string
	if opts.DataDir != "" {
		abs, err := filepath.Abs(opts.DataDir)
		if err != nil {
			return nil, err
		}
		opts.DataDir = abs
		if logDir, err = joinName(filepath.Join(abs, "logs"), opts.Spec.Namespace, opts.Spec.Revision); err != nil {
			return nil, fmt.Errorf("%w: %w", ErrInvalidSpec, err)
		}
		if opts.InstanceDir == "" {
			if opts.InstanceDir, err = InstanceRoot(abs, opts.RunAs); err != nil {
				return nil, err
			}
		}
	}
	if opts.RunAs != nil && opts.InstanceDir == "" {
		return nil, fmt.Errorf("%w: RunAs needs a DataDir or an InstanceDir", ErrRunAs)
	}
	if opts.Clock == nil {
		opts.Clock = clock.RealClock{}
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	if opts.StartupProbeInterval <= 0 {
		opts.StartupProbeInterval = 10 * time.Millisecond
	}
	if opts.BackoffInitial <= 0 {
		opts.BackoffInitial = 100 * time.Millisecond
	}
	if opts.BackoffMax <= 0 {
		opts.BackoffMax = 30 * time.Second
	}
	if opts.BackoffReset <= 0 {
		opts.BackoffReset = 60 * time.Second
	}
	if opts.ProgressDeadline <= 0 {
		opts.ProgressDeadline = 60 * time.Second
	}
	if opts.CgroupRoot == "" {
		opts.CgroupRoot = "/sys/fs/cgroup"
	}
	if opts.LogLines <= 0 {
		opts.LogLines = 1000
	}
	ctx, cancel := context.WithCancel(context.Background())
	p := &Pool{
		opts:      opts,
		spec:      opts.Spec,
		container: c,
		clock:     opts.Clock,
		log: opts.Logger.With("component", "serving/process",
			"namespace", opts.Spec.Namespace, "revision", opts.Spec.Revision),
		ring:     newLogRing(opts.LogLines),
		logDir:   logDir,
		limits:   containerLimits(c),
		ctx:      ctx,
		cancel:   cancel,
		stopping: map[*slot]bool{},
		subs:     map[int]func(Event){},
	}
	p.status.LastExitCode = -1
	if !p.limits.empty() && !cgroupsSupported {
		p.status.Limits = fmt.Sprintf("%v: %s has no cgroups (limits are enforced on Linux only)", ErrLimitsUnsupported, goos)
	} else if !p.limits.empty() {
		parent, err := cgroupParent(opts.CgroupRoot)
		if err != nil {
			p.status.Limits = err.Error()
			p.log.Warn("container limits will not be enforced", "error", err)
		} else {
			p.cgParent = parent
			p.status.Limits = "enforced with cgroup v2 under " + parent
		}
	}
	return p, nil
}

// Spec returns the revision spec the Pool runs.
func (p *Pool) Spec() Spec { return p.spec }

// SetScale asks for n instances. Growing starts processes at once; shrinking drains the instances least useful
// to keep (not ready first, then fewest requests in flight) and stops them once their requests are done.
func (p *Pool) SetScale(n int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return
	}
	p.setScaleLocked(n)
}

func (p *Pool) setScaleLocked(n int) {
	if n < 0 {
		n = 0
	}
	p.desired = n
	for len(p.slots) < n {
		p.nextSlot++
		s := &slot{
			id:   fmt.Sprintf("%s-%d", p.spec.Revision, p.nextSlot),
			stop: make(chan struct{}),
			done: make(chan struct{}),
		}
		p.slots = append(p.slots, s)
		go p.runSlot(s)
	}
	if len(p.slots) > n {
		sort.SliceStable(p.slots, func(a, b int) bool { return keepBefore(p.slots[a], p.slots[b]) })
		for _, s := range p.slots[n:] {
			p.stopping[s] = true
			close(s.stop)
		}
		p.slots = append([]*slot(nil), p.slots[:n]...)
	}
}

// keepBefore orders slots by how much we want to keep them: ready ones, then busier ones, then older ones.
func keepBefore(a, b *slot) bool {
	ra := a.current != nil && a.current.Ready()
	rb := b.current != nil && b.current.Ready()
	if ra != rb {
		return ra
	}
	if ra {
		if fa, fb := a.current.InFlight(), b.current.InFlight(); fa != fb {
			return fa > fb
		}
	}
	return false // stable sort keeps older slots first
}

// Scale returns the desired scale.
func (p *Pool) Scale() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.desired
}

// ReadyCount is the number of instances that pass readiness and accept requests.
func (p *Pool) ReadyCount() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.readyLocked()
}

func (p *Pool) readyLocked() int {
	n := 0
	for _, s := range p.slots {
		if s.current != nil && s.current.Ready() && !s.current.Draining() {
			n++
		}
	}
	return n
}

// Instances lists live and draining instances.
func (p *Pool) Instances() []InstanceInfo {
	p.mu.Lock()
	defer p.mu.Unlock()
	var out []InstanceInfo
	add := func(s *slot) {
		if i := s.current; i != nil {
			out = append(out, InstanceInfo{ID: i.ID, Addr: i.Addr, Port: i.Port, PID: i.PID, Ready: i.Ready(), Draining: i.Draining(),
				InFlight: i.InFlight(), Started: i.Started, Restarts: s.restarts})
		}
	}
	for _, s := range p.slots {
		add(s)
	}
	for s := range p.stopping {
		add(s)
	}
	sort.Slice(out, func(a, b int) bool { return out[a].ID < out[b].ID })
	return out
}

// Status returns the observed state.
func (p *Pool) Status() Status {
	p.mu.Lock()
	defer p.mu.Unlock()
	st := p.status
	st.LastLogLines = append([]string(nil), st.LastLogLines...)
	st.Desired = p.desired
	st.Ready = p.readyLocked()
	for _, s := range p.slots {
		if s.current != nil {
			st.Actual++
		}
	}
	return st
}

// Logs returns up to n of the newest lines, oldest first; instance filters by instance ID when not empty.
func (p *Pool) Logs(n int, instance string) []LogLine { return p.ring.tail(n, instance) }

// FollowLogs calls f for every new line until cancel is called. f must not block.
func (p *Pool) FollowLogs(f func(LogLine)) (cancel func()) { return p.ring.follow(f) }

// LogDir is where instance log files are written ("" without a DataDir).
func (p *Pool) LogDir() string { return p.logDir }

// Subscribe calls f for every instance event, in order per instance; instances already ready are replayed as
// InstanceReady first, so subscribing late misses nothing. f runs on the Pool's goroutines and must not block;
// it may call the Pool's read methods. Subscribers must treat events idempotently (a replay can repeat a Ready).
func (p *Pool) Subscribe(f func(Event)) (cancel func()) {
	p.evMu.Lock()
	id := p.nextSb
	p.nextSb++
	p.subs[id] = f
	p.mu.Lock()
	var ready []*Instance
	for _, s := range p.slots {
		if s.current != nil && s.current.Ready() && !s.current.Draining() {
			ready = append(ready, s.current)
		}
	}
	p.mu.Unlock()
	for _, i := range ready {
		f(Event{Type: InstanceReady, Instance: i})
	}
	p.evMu.Unlock()
	return func() {
		p.evMu.Lock()
		delete(p.subs, id)
		p.evMu.Unlock()
	}
}

func (p *Pool) emit(t EventType, i *Instance) {
	p.evMu.Lock()
	defer p.evMu.Unlock()
	for _, f := range p.subs {
		f(Event{Type: t, Instance: i})
	}
}

// Close drains and stops every instance and waits for them (or for ctx).
func (p *Pool) Close(ctx context.Context) error {
	p.mu.Lock()
	if !p.closed {
		p.setScaleLocked(0)
		p.closed = true
	}
	var wait []*slot
	for s := range p.stopping {
		wait = append(wait, s)
	}
	p.mu.Unlock()
	defer p.cancel()
	for _, s := range wait {
		select {
		case <-s.done:
		case <-ctx.Done():
			// Do not leave processes behind: kill what is still running.
			p.mu.Lock()
			for s := range p.stopping {
				if s.current != nil {
					s.current.signal(syscall.SIGKILL)
				}
			}
			p.mu.Unlock()
			return ctx.Err()
		}
	}
	return nil
}

// fail records why the container is not healthy. With an instance, the message ends with the last lines that
// process printed (not its predecessors').
func (p *Pool) fail(reason, message string, exitCode *int, inst *Instance) {
	var texts []string
	if inst != nil {
		for _, l := range p.ring.tail(lastLines, inst.ID) {
			if !l.Time.Before(inst.Started) {
				texts = append(texts, l.Text)
			}
		}
	}
	if len(texts) > 0 {
		message += "\nlast log lines:\n" + strings.Join(texts, "\n")
	}
	p.mu.Lock()
	changed := !p.status.Failed || p.status.Reason != reason || p.status.Message != message
	p.status.Failed = true
	p.status.Reason = reason
	p.status.Message = message
	p.status.LastLogLines = texts
	if exitCode != nil {
		p.status.LastExitCode = *exitCode
	}
	p.mu.Unlock()
	p.log.Warn("instance failed", "reason", reason, "message", message)
	if changed {
		p.emit(StatusChanged, nil)
	}
}

// lastLines is how many of a failed instance's last log lines its status carries.
const lastLines = 10

// sleep waits d unless the slot is stopped; it reports whether the slot should continue.
func (p *Pool) sleep(s *slot, d time.Duration) bool {
	t := p.clock.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C():
		return true
	case <-s.stop:
		return false
	}
}

// runSlot keeps one process running until the slot is stopped: start, supervise, and on an unexpected exit
// restart after an exponentially growing back-off (reset by a long enough run).
func (p *Pool) runSlot(s *slot) {
	defer func() {
		p.mu.Lock()
		delete(p.stopping, s)
		s.current = nil
		p.mu.Unlock()
		close(s.done)
	}()
	logFile := p.openLog(s.id)
	if logFile != nil {
		defer logFile.Close()
	}
	// The slot's private directory lives as long as the slot (restarts keep it, as an emptyDir survives a
	// container restart); it is removed when the slot ends.
	defer func() {
		if dir := p.slotDir(s.id); dir != "" {
			_ = os.RemoveAll(dir)
		}
	}()
	backoff := p.opts.BackoffInitial
	for {
		select {
		case <-s.stop:
			return
		default:
		}
		inst, err := p.start(s, logFile)
		if err == nil {
			started := p.clock.Now()
			if stopped := p.supervise(s, inst); stopped {
				return
			}
			if p.clock.Since(started) >= p.opts.BackoffReset {
				backoff = p.opts.BackoffInitial
			}
			p.mu.Lock()
			s.restarts++
			p.status.Restarts++
			p.mu.Unlock()
		}
		if !p.sleep(s, backoff) {
			return
		}
		backoff = min(2*backoff, p.opts.BackoffMax)
	}
}

// slotDir is the private directory of slot id ("" when instances have none).
func (p *Pool) slotDir(id string) string {
	if p.opts.InstanceDir == "" {
		return ""
	}
	d, err := joinName(p.opts.InstanceDir, p.spec.Namespace, p.spec.Revision, id)
	if err != nil {
		return ""
	}
	return d
}

func (p *Pool) openLog(id string) *os.File {
	dir := p.LogDir()
	if dir == "" {
		return nil
	}
	// Logs are written by tide (instances only hold pipes), so they stay private to tide's user.
	if err := os.MkdirAll(dir, 0o700); err != nil {
		p.log.Warn("cannot create log directory", "dir", dir, "error", err)
		return nil
	}
	name, err := joinName(dir, id+".log")
	if err != nil {
		p.log.Warn("cannot name log file", "error", err)
		return nil
	}
	f, err := os.OpenFile(name, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		p.log.Warn("cannot open log file", "error", err)
		return nil
	}
	return f
}

// binary resolves the ko:// image once per Pool: a revision is immutable, so its binary is too.
func (p *Pool) binary() (string, error) {
	if len(p.container.Command) > 0 {
		return "", nil
	}
	p.mu.Lock()
	bin := p.bin
	p.mu.Unlock()
	if bin != "" {
		return bin, nil
	}
	if p.opts.Builder == nil {
		return "", fmt.Errorf("%w: no builder configured for %s", ErrBuild, p.container.Image)
	}
	bin, err := p.opts.Builder.Build(p.ctx, p.spec.Dir, p.container.Image)
	if err != nil {
		return "", err
	}
	if p.opts.RunAs != nil {
		// The build cache stays private to tide; the instance user executes a shared copy.
		if bin, err = exposeBinary(p.opts.RunAs, p.opts.InstanceDir, bin); err != nil {
			return "", fmt.Errorf("%w: %w", ErrBuild, err)
		}
	}
	p.mu.Lock()
	p.bin = bin
	p.mu.Unlock()
	return bin, nil
}

// start launches one process for slot s. On failure it records the reason in the status.
func (p *Pool) start(s *slot, logFile *os.File) (*Instance, error) {
	bin, err := p.binary()
	if err != nil {
		p.fail("BuildFailed", err.Error(), nil, nil)
		return nil, err
	}
	port, err := freePort()
	if err != nil {
		p.fail("StartError", err.Error(), nil, nil)
		return nil, err
	}
	home := ""
	if p.opts.InstanceDir != "" {
		if home, err = instanceDir(p.opts.RunAs, p.opts.InstanceDir, p.spec.Namespace, p.spec.Revision, s.id); err != nil {
			p.fail("StartError", fmt.Sprintf("spec.containers[0]: preparing the instance directory: %v", err), nil, nil)
			return nil, err
		}
	}
	env, vals, err := p.spec.buildEnv(p.ctx, p.container, p.opts.Resolver, port, p.baseEnv(home), podFields{name: s.id})
	if err != nil {
		p.fail("CreateContainerConfigError", err.Error(), nil, nil)
		return nil, err
	}
	argv, err := p.spec.argv(p.container, bin, vals, home)
	if err != nil {
		p.fail("CreateContainerConfigError", err.Error(), nil, nil)
		return nil, err
	}
	inst := &Instance{
		ID:      s.id,
		Addr:    fmt.Sprintf("127.0.0.1:%d", port),
		Port:    port,
		drained: make(chan struct{}),
		exited:  make(chan struct{}),
	}
	workDir := p.spec.workDir(p.container, home)
	stdout := &lineWriter{ring: p.ring, file: logFile, instance: s.id, stream: Stdout, now: p.clock.Now}
	stderr := &lineWriter{ring: p.ring, file: logFile, instance: s.id, stream: Stderr, now: p.clock.Now}
	newCmd := func(cgroupFD int) *exec.Cmd {
		cmd := exec.Command(argv[0], argv[1:]...)
		cmd.Env, cmd.Dir, cmd.Stdout, cmd.Stderr = env, workDir, stdout, stderr
		// A grandchild holding the pipes open must not keep Wait from returning.
		cmd.WaitDelay = time.Second
		// Own process group so signals reach the whole tree; where the OS has one, a parent-death signal so
		// instances never outlive tide; the instance user's credentials when set.
		cmd.SysProcAttr = sysProcAttr(credential(p.opts.RunAs), cgroupFD)
		return cmd
	}
	p.mu.Lock()
	cgParent := p.cgParent
	p.mu.Unlock()
	cgroupFD := -1
	if cgParent != "" {
		dir, fd, err := createCgroup(cgParent, s.id, p.limits)
		if err != nil {
			p.mu.Lock()
			p.status.Limits = err.Error()
			p.mu.Unlock()
		} else {
			defer fd.Close()
			inst.cgroup = dir
			cgroupFD = int(fd.Fd())
		}
	}
	cmd := newCmd(cgroupFD)
	err = cmd.Start()
	if err != nil && cgroupFD >= 0 {
		// The kernel refused to start the process inside the cgroup (no clone3 cgroup support, or not a cgroup
		// v2 directory): run it without limits rather than not at all, and say so.
		p.mu.Lock()
		p.status.Limits = fmt.Sprintf("%v: starting inside %s: %v", ErrLimitsUnsupported, inst.cgroup, err)
		p.cgParent = ""
		p.mu.Unlock()
		_ = os.Remove(inst.cgroup)
		inst.cgroup = ""
		cmd = newCmd(-1)
		err = cmd.Start()
	}
	if err != nil {
		p.fail("StartError", fmt.Sprintf("spec.containers[0]: starting %s as %s: %v", argv[0], p.opts.RunAs, err), nil, nil)
		return nil, err
	}
	inst.cmd = cmd
	inst.PID = cmd.Process.Pid
	inst.Started = p.clock.Now()
	go func() {
		_ = cmd.Wait()
		stdout.flush()
		stderr.flush()
		inst.exitCode = exitCodeOf(cmd.ProcessState)
		// Orphans of the program die with it, as in a container.
		_ = signalGroup(inst.PID, syscall.SIGKILL)
		if inst.cgroup != "" {
			_ = os.Remove(inst.cgroup)
		}
		close(inst.exited)
	}()
	p.mu.Lock()
	s.current = inst
	p.mu.Unlock()
	p.log.Debug("instance started", "instance", s.id, "pid", inst.PID, "port", port)
	return inst, nil
}

// probeSchedule is a probe's timing (Kubernetes defaults: period 10s, failureThreshold 3, successThreshold 1).
type probeSchedule struct {
	initialDelay time.Duration
	period       time.Duration
	failures     int
	successes    int
}

func scheduleOf(pr *corev1.Probe) probeSchedule {
	s := probeSchedule{period: 10 * time.Second, failures: 3, successes: 1}
	if pr == nil {
		return s
	}
	s.initialDelay = time.Duration(pr.InitialDelaySeconds) * time.Second
	if pr.PeriodSeconds > 0 {
		s.period = time.Duration(pr.PeriodSeconds) * time.Second
	}
	if pr.FailureThreshold > 0 {
		s.failures = int(pr.FailureThreshold)
	}
	if pr.SuccessThreshold > 0 {
		s.successes = int(pr.SuccessThreshold)
	}
	return s
}

// supervise probes the instance and waits for its exit or the slot's stop. It returns true when the slot was
// stopped (the instance has been drained and terminated) and false when the process ended on its own or failed
// its liveness probe (the caller restarts it).
func (p *Pool) supervise(s *slot, inst *Instance) (stopped bool) {
	c := p.container
	readiness := newProber(c.ReadinessProbe, inst.Port)
	rs := scheduleOf(c.ReadinessProbe)
	var liveness *prober
	ls := scheduleOf(c.LivenessProbe)
	if c.LivenessProbe != nil {
		liveness = newProber(c.LivenessProbe, inst.Port)
	}
	deadline := inst.Started.Add(p.opts.ProgressDeadline)
	deadlineReported := false

	readyTimer := p.clock.NewTimer(rs.initialDelay)
	defer readyTimer.Stop()
	var liveC <-chan time.Time
	var liveTimer clock.Timer
	if liveness != nil {
		liveTimer = p.clock.NewTimer(ls.initialDelay + ls.period)
		defer liveTimer.Stop()
		liveC = liveTimer.C()
	}
	everReady, killedByLiveness := false, false
	startupDelay := min(time.Millisecond, p.opts.StartupProbeInterval)
	okStreak, failStreak, liveFails := 0, 0, 0

	for {
		select {
		case <-inst.exited:
			inst.ready.Store(false)
			p.emit(InstanceGone, inst)
			code := inst.exitCode
			if killedByLiveness {
				p.mu.Lock()
				p.status.LastExitCode = code
				p.mu.Unlock()
			} else {
				p.fail(fmt.Sprintf("ExitCode%d", code), fmt.Sprintf("Container failed with: exit code %d", code), &code, inst)
			}
			p.clearCurrent(s, inst)
			return false

		case <-s.stop:
			p.drainAndStop(inst)
			p.clearCurrent(s, inst)
			return true

		case <-readyTimer.C():
			ctx, cancel := context.WithTimeout(p.ctx, readiness.timeout)
			err := readiness.probe(ctx)
			cancel()
			ready := inst.ready.Load()
			if err == nil {
				okStreak, failStreak = okStreak+1, 0
				if !ready && okStreak >= rs.successes {
					everReady = true
					inst.ready.Store(true)
					p.markReady()
					p.emit(InstanceReady, inst)
				}
			} else {
				okStreak, failStreak = 0, failStreak+1
				if ready && failStreak >= rs.failures {
					inst.ready.Store(false)
					p.emit(InstanceNotReady, inst)
				}
				if !everReady && !deadlineReported && p.clock.Now().After(deadline) {
					deadlineReported = true
					p.fail("ProgressDeadlineExceeded", fmt.Sprintf("Instance %s did not become ready within %s: %v",
						inst.ID, p.opts.ProgressDeadline, err), nil, inst)
				}
			}
			// Aggressive until the first pass (cold start is this loop), then the probe's own period. The start-up
			// interval begins at 1 ms and grows by a quarter per failed probe up to StartupProbeInterval, so a fast
			// program is seen within a millisecond or two and a slow one costs few probes.
			if everReady {
				readyTimer.Reset(rs.period)
			} else {
				readyTimer.Reset(startupDelay)
				startupDelay = min(startupDelay+startupDelay/4, p.opts.StartupProbeInterval)
			}

		case <-liveC:
			ctx, cancel := context.WithTimeout(p.ctx, liveness.timeout)
			err := liveness.probe(ctx)
			cancel()
			if err == nil {
				liveFails = 0
			} else if liveFails++; liveFails >= ls.failures {
				killedByLiveness = true
				p.fail("LivenessProbeFailed", fmt.Sprintf("Liveness probe failed: %v", err), nil, inst)
				inst.ready.Store(false)
				p.emit(InstanceNotReady, inst)
				liveC = nil
				// terminate returns after the exit; the exited case then restarts the slot.
				p.terminate(inst)
				continue
			}
			liveTimer.Reset(ls.period)
		}
	}
}

func (p *Pool) markReady() {
	p.mu.Lock()
	changed := !p.status.EverReady || p.status.Failed
	p.status.EverReady = true
	p.status.Failed = false
	p.status.Reason = ""
	p.status.Message = ""
	p.mu.Unlock()
	if changed {
		p.emit(StatusChanged, nil)
	}
}

func (p *Pool) clearCurrent(s *slot, inst *Instance) {
	p.mu.Lock()
	if s.current == inst {
		s.current = nil
	}
	p.mu.Unlock()
}

// drainAndStop removes the instance from rotation, lets in-flight requests finish (they cannot outlive the request
// timeout), then terminates it.
func (p *Pool) drainAndStop(inst *Instance) {
	inst.startDrain()
	inst.ready.Store(false)
	p.emit(InstanceDraining, inst)
	t := p.clock.NewTimer(p.spec.Timeout())
	select {
	case <-inst.drained:
	case <-inst.exited:
	case <-t.C():
		p.log.Warn("drain timed out; stopping with requests in flight", "instance", inst.ID, "inFlight", inst.InFlight())
	}
	t.Stop()
	p.terminate(inst)
	<-inst.exited
	p.emit(InstanceGone, inst)
}

// terminate sends SIGTERM and, after the grace period, SIGKILL. It returns once the process has exited.
func (p *Pool) terminate(inst *Instance) {
	select {
	case <-inst.exited:
		return
	default:
	}
	inst.signal(syscall.SIGTERM)
	t := p.clock.NewTimer(p.spec.gracePeriod())
	defer t.Stop()
	select {
	case <-inst.exited:
	case <-t.C():
		p.log.Warn("grace period over; killing", "instance", inst.ID)
		inst.signal(syscall.SIGKILL)
		<-inst.exited
	}
}
