package bench

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// ErrBadOptions reports invalid Options.
var ErrBadOptions = errors.New("bench: bad options")

// Peer names accepted in Options.Peers.
const (
	PeerRocketMQ  = "rocketmq"
	PeerJetStream = "jetstream"
	// PeerRemoting is tide's broker with sends from tide's own remoting client (not run by default): it shows how
	// much of the difference is the official client's.
	PeerRemoting = "rocketmq-remoting"
	// PeerNull is the official client against a broker that answers every send at once and stores nothing (not run
	// by default): the client's own ceiling on this machine, against which any broker's figure has to be read.
	// It has no consumer phase.
	PeerNull = "rocketmq-null"
)

// allPeers lists every peer name Options.Peers accepts.
var allPeers = []string{PeerRocketMQ, PeerJetStream, PeerRemoting, PeerNull, PeerApache, PeerRocketMQJava, PeerApacheJava,
	PeerRocketMQ5, PeerApache5}

// Options configure a run. The zero value plus a DataDir is the documented default run.
type Options struct {
	// Duration of the peak phase when Messages is 0. Default 10s. Each of the two half-load phases runs as long.
	Duration time.Duration
	// Messages fixes the peak phase's message count instead of its duration (each half-load phase sends half).
	Messages int
	// Senders is the number of concurrent synchronous senders. Default 32.
	Senders int
	// HalfRate, when > 0, paces every peer's second phase at this many messages/s instead of half of its own peak,
	// so peers' latencies can be compared at one rate.
	HalfRate float64
	// Connections is how many client connections each peer opens; sender w uses connection w mod Connections.
	// Default 1: every sender shares one connection (one RocketMQ producer instance, one NATS connection).
	Connections int
	// BodySize in bytes. Default 1024 (at least 17: the body carries a send timestamp and a sequence number).
	BodySize int
	// Sync selects sync flushing (fsync before the answer) for both peers; default async (fsync every 500 ms).
	Sync bool
	// Rounds: how many times each peer runs, interleaved; the report shows medians. Default 1.
	Rounds int
	// Peers to run, in order. Default rocketmq then jetstream.
	Peers []string
	// DataDir is where the peers store their data (a fresh subdirectory per peer). Required.
	DataDir string
	// TideBinary, when set, is exec'ed as `TideBinary broker --namesrv-port 0 --broker-port 0` StartupRuns times to
	// measure ready time and idle RSS.
	TideBinary string
	// StartupRuns for the ready-time measurement. Default 5.
	StartupRuns int
	// IdleWait is how long the started broker idles before its RSS is read. Default 2s.
	IdleWait time.Duration
	// StartupLoad is how many messages the senders send to the last started broker after its idle RSS reading, a
	// push consumer then reads them all, and its RSS is read again: how much of what the idle broker does not hold
	// a workload brings back. 0 means 20,000; negative skips it.
	StartupLoad int
	// JavaWarmUp is how long the Java peers' client sends before it is measured, so the JVM has compiled its send
	// path. Default 10s.
	JavaWarmUp time.Duration
	// Progress receives one line per phase (nil: none).
	Progress io.Writer
}

func (o *Options) defaults() error {
	if o.Duration == 0 {
		o.Duration = 10 * time.Second
	}
	if o.Senders == 0 {
		o.Senders = 32
	}
	if o.BodySize == 0 {
		o.BodySize = 1024
	}
	if o.Connections == 0 {
		o.Connections = 1
	}
	if len(o.Peers) == 0 {
		o.Peers = []string{PeerRocketMQ, PeerJetStream}
	}
	if o.Rounds == 0 {
		o.Rounds = 1
	}
	if o.StartupRuns == 0 {
		o.StartupRuns = 5
	}
	if o.IdleWait == 0 {
		o.IdleWait = 2 * time.Second
	}
	if o.JavaWarmUp == 0 {
		o.JavaWarmUp = 10 * time.Second
	}
	if o.StartupLoad == 0 {
		o.StartupLoad = 20000
	}
	if o.Progress == nil {
		o.Progress = io.Discard
	}
	switch {
	case o.DataDir == "":
		return fmt.Errorf("%w: DataDir: required", ErrBadOptions)
	case o.Duration < 0 || o.Messages < 0:
		return fmt.Errorf("%w: Duration and Messages must not be negative", ErrBadOptions)
	case o.Rounds < 0:
		return fmt.Errorf("%w: Rounds %d: want at least 1", ErrBadOptions, o.Rounds)
	case o.Senders < 1:
		return fmt.Errorf("%w: Senders %d: want at least 1", ErrBadOptions, o.Senders)
	case o.HalfRate < 0:
		return fmt.Errorf("%w: HalfRate %g: want 0 (half of each peer's peak) or a positive rate", ErrBadOptions, o.HalfRate)
	case o.Connections < 1 || o.Connections > o.Senders:
		return fmt.Errorf("%w: Connections %d: want 1 to Senders (%d)", ErrBadOptions, o.Connections, o.Senders)
	case o.BodySize < 17:
		return fmt.Errorf("%w: BodySize %d: want at least 17", ErrBadOptions, o.BodySize)
	}
	for _, p := range o.Peers {
		if !slices.Contains(allPeers, p) {
			return fmt.Errorf("%w: Peers: %q, want one of %s", ErrBadOptions, p, strings.Join(allPeers, ", "))
		}
	}
	return nil
}

// Latencies are percentiles of a latency sample.
type Latencies struct {
	N              int
	P50, P99, P999 time.Duration
	Max            time.Duration
}

func percentiles(d []time.Duration) Latencies {
	if len(d) == 0 {
		return Latencies{}
	}
	slices.Sort(d)
	at := func(q float64) time.Duration { return d[int(q*float64(len(d)-1))] }
	return Latencies{N: len(d), P50: at(0.50), P99: at(0.99), P999: at(0.999), Max: d[len(d)-1]}
}

// PeerResult is one peer's numbers.
type PeerResult struct {
	Name string
	// PeakRates lists every round's peak rate (the other fields are medians over the rounds).
	PeakRates []float64
	// Peak phase: as fast as Senders synchronous senders go.
	PeakRate   float64 // messages/s
	PeakSend   Latencies
	PeakErrors int
	// HalfTarget is the rate of both half-load phases: half of PeakRate, or Options.HalfRate.
	HalfTarget float64
	// Producers-only half-load phase: paced at HalfTarget, nothing consuming. The send p99 target is read here.
	SendOnlyRate   float64
	SendOnlySend   Latencies
	SendOnlyErrors int
	// Half-load phase with a consumer attached: paced at HalfTarget while a push consumer reads the topic.
	HalfRate float64
	HalfSend Latencies
	// E2E is produce-to-consume latency (send start to the consumer's callback) in the half-load phase.
	E2E        Latencies
	HalfErrors int
	// Missing counts half-load messages acknowledged but not consumed within 30 s.
	Missing int
	// Ready, IdleRSS and LoadRSS are measured for the peers that start a server in another process (Apache's JVMs):
	// exec to serving, resident memory Options.IdleWait after that, and resident memory after the phases. Zero
	// otherwise (tide's broker is measured as a `tide broker` process by Report.Startup).
	Ready            time.Duration
	IdleRSS, LoadRSS int64
}

// Startup is the `tide broker` ready time and idle RSS.
type Startup struct {
	Ready   []time.Duration
	IdleRSS int64 // bytes, VmRSS after IdleWait
	// IdleAnon and IdleFile split IdleRSS into anonymous memory and file-backed pages of the executable.
	IdleAnon, IdleFile int64
	ReadyMed           time.Duration
	ReadyMax           time.Duration
	// Load is the last broker's RSS after Options.StartupLoad messages were sent to it and consumed (nil when
	// skipped).
	Load *StartupLoad
}

// StartupLoad is the RSS of a started `tide broker` after a send-and-consume workload.
type StartupLoad struct {
	Messages        int     // acknowledged sends
	Rate            float64 // their messages/s (32 synchronous senders by default, unpaced)
	Errors, Missing int     // failed sends; acknowledged but not consumed within 60 s
	RSS, Anon, File int64
}

// Report is a run's outcome.
type Report struct {
	Options Options
	Machine Machine
	Started time.Time
	LoadEnd string
	Peers   []PeerResult
	Startup *Startup
}

// Run runs the phases for each peer, then the startup measurement.
func Run(ctx context.Context, opts Options) (*Report, error) {
	if err := opts.defaults(); err != nil {
		return nil, err
	}
	rep := &Report{Options: opts, Machine: machine(), Started: time.Now().UTC()}
	// Rounds interleave the peers (A B A B ...) so a change in the machine's load hits both; each metric is then the
	// median over the rounds.
	all := map[string][]PeerResult{}
	for round := 0; round < opts.Rounds; round++ {
		for i, name := range opts.Peers {
			dir := filepath.Join(opts.DataDir, fmt.Sprintf("r%d-%d-%s", round, i, name))
			if err := os.MkdirAll(dir, 0o755); err != nil {
				return nil, err
			}
			fmt.Fprintf(opts.Progress, "round %d/%d\n", round+1, opts.Rounds)
			res, err := runPeer(ctx, name, dir, opts)
			if err != nil {
				return nil, fmt.Errorf("%s: %w", name, err)
			}
			all[name] = append(all[name], res)
			_ = os.RemoveAll(dir)
		}
	}
	for _, name := range opts.Peers {
		rep.Peers = append(rep.Peers, medianResult(all[name]))
	}
	if opts.TideBinary != "" {
		st, err := measureStartup(ctx, opts)
		if err != nil {
			return nil, fmt.Errorf("tide broker startup: %w", err)
		}
		rep.Startup = st
	}
	rep.LoadEnd = loadAvg()
	return rep, nil
}

func runPeer(ctx context.Context, name, dir string, opts Options) (PeerResult, error) {
	var p peer
	var jp *javaPeer // the Java peers run their phases inside the JVM
	var err error
	switch name {
	case PeerRocketMQ:
		p, err = newRocketPeer(dir, opts.Sync, opts.Connections)
	case PeerRemoting:
		p, err = newRemotingPeer(dir, opts.Sync, opts.Connections)
	case PeerNull:
		p, err = newNullPeer(opts.Connections)
	case PeerApache:
		p, err = newApachePeer(dir, opts.Sync, opts.Connections, opts.IdleWait)
	case PeerRocketMQJava, PeerApacheJava:
		jp, err = newJavaPeer(name, dir, opts)
		p = jp
	case PeerRocketMQ5:
		p, err = newTide5Peer(dir, opts.Sync, opts.Connections)
	case PeerApache5:
		p, err = newApache5Peer(dir, opts.Sync, opts.Connections, opts.IdleWait)
	default:
		p, err = newJetPeer(dir, opts.Sync, opts.Connections)
	}
	if err != nil {
		return PeerResult{}, err
	}
	defer p.close()
	run := func(topic string, count int, d time.Duration, rate float64) phase {
		if jp != nil {
			return jp.phase(topic, count, d, rate)
		}
		return runSenders(ctx, p, topic, opts, count, d, rate)
	}
	res := PeerResult{Name: name}
	sp, measured := p.(interface {
		startup() (time.Duration, rss, rss)
	})
	if measured {
		var idle rss
		res.Ready, idle, _ = sp.startup()
		res.IdleRSS = idle.total
	}
	for _, t := range benchTopics {
		if err := p.prepare(t); err != nil {
			return res, fmt.Errorf("creating %s: %w", t, err)
		}
	}
	// Warm up connections and routes so the first timed send does not pay for them.
	body := make([]byte, opts.BodySize)
	for i := 0; i < 100; i++ {
		if err := p.send(ctx, i, "bench-peak", body); err != nil {
			return res, fmt.Errorf("warm-up send: %w", err)
		}
	}
	fmt.Fprintf(opts.Progress, "%s: peak phase (%d senders)\n", name, opts.Senders)
	pk := run("bench-peak", opts.Messages, opts.Duration, 0)
	res.PeakRate, res.PeakSend, res.PeakErrors = pk.rate, percentiles(pk.lat), pk.errors
	if pk.errors > 0 && len(pk.lat) == 0 {
		return res, fmt.Errorf("every send failed: %w", pk.firstErr)
	}

	res.HalfTarget = res.PeakRate / 2
	if opts.HalfRate > 0 {
		res.HalfTarget = opts.HalfRate
	}
	// Half load, producers only: the send latency a producer sees at that rate.
	fmt.Fprintf(opts.Progress, "%s: half-load phase, producers only (%.0f msgs/s)\n", name, res.HalfTarget)
	so := run("bench-send-only", opts.Messages/2, opts.Duration, res.HalfTarget)
	res.SendOnlyRate, res.SendOnlySend, res.SendOnlyErrors = so.rate, percentiles(so.lat), so.errors
	if name == PeerNull {
		return res, nil // nothing is stored, so there is nothing to consume
	}

	// Half load with a consumer attached: produce-to-consume latency, and the send latency while a consumer
	// competes for the machine.
	rc := newReceiver()
	stop, err := p.subscribe("bench-half", rc.receive)
	if err != nil {
		return res, fmt.Errorf("subscribing: %w", err)
	}
	defer stop()
	if jp != nil {
		err = jp.warm("bench-half")
	} else {
		err = rc.waitReady(ctx, p, opts.BodySize)
	}
	if err != nil {
		return res, err
	}
	fmt.Fprintf(opts.Progress, "%s: half-load phase with a consumer (%.0f msgs/s)\n", name, res.HalfTarget)
	hf := run("bench-half", opts.Messages/2, opts.Duration, res.HalfTarget)
	res.HalfRate, res.HalfSend, res.HalfErrors = hf.rate, percentiles(hf.lat), hf.errors
	if jp != nil {
		var e2e []time.Duration
		if res.Missing, e2e, err = jp.collect(30 * time.Second); err != nil {
			return res, err
		}
		res.E2E = percentiles(e2e)
	} else {
		res.Missing = rc.waitAll(ctx, hf.acked, 30*time.Second)
		res.E2E = percentiles(rc.latencies())
	}
	if measured {
		_, _, now := sp.startup() // after the phases, before close stops the server
		res.LoadRSS = now.total
	}
	return res, nil
}

type phase struct {
	rate     float64
	lat      []time.Duration
	acked    []uint64 // sequence numbers acknowledged
	errors   int
	firstErr error
}

// runSenders runs opts.Senders synchronous senders until count messages (if > 0) or d elapsed. rate > 0 paces the
// senders to that many messages per second in total (an open-loop schedule: a late send does not shift the next).
// Each body carries the send start time (ns) and a sequence number, for the consumer's latency.
func runSenders(ctx context.Context, p peer, topic string, opts Options, count int, d time.Duration, rate float64) phase {
	var (
		seq      atomic.Uint64
		mu       sync.Mutex
		out      phase
		wg       sync.WaitGroup
		deadline = time.Now().Add(d)
	)
	start := time.Now()
	for w := 0; w < opts.Senders; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			body := make([]byte, opts.BodySize)
			var lat []time.Duration
			var acked []uint64
			errs := 0
			var firstErr error
			for i := 0; ; i++ {
				n := seq.Add(1)
				if count > 0 && n > uint64(count) || count == 0 && time.Now().After(deadline) || ctx.Err() != nil {
					break
				}
				if rate > 0 {
					due := start.Add(time.Duration(float64(n-1) / rate * float64(time.Second)))
					if wait := time.Until(due); wait > 0 {
						time.Sleep(wait)
					}
				}
				t0 := time.Now()
				binary.BigEndian.PutUint64(body[0:8], uint64(t0.UnixNano()))
				body[8] = 1
				binary.BigEndian.PutUint64(body[9:17], n)
				sctx, cancel := context.WithTimeout(ctx, 10*time.Second)
				err := p.send(sctx, w, topic, body)
				cancel()
				if err != nil {
					errs++
					if firstErr == nil {
						firstErr = err
					}
					continue
				}
				lat = append(lat, time.Since(t0))
				acked = append(acked, n)
			}
			mu.Lock()
			out.lat = append(out.lat, lat...)
			out.acked = append(out.acked, acked...)
			out.errors += errs
			if out.firstErr == nil {
				out.firstErr = firstErr
			}
			mu.Unlock()
		}(w)
	}
	wg.Wait()
	out.rate = float64(len(out.lat)) / time.Since(start).Seconds()
	return out
}

// receiver collects produce-to-consume latencies of measured messages (body[8] == 1), once per sequence number.
type receiver struct {
	mu     sync.Mutex
	seen   map[uint64]bool
	lat    []time.Duration
	warmed atomic.Bool
}

func newReceiver() *receiver { return &receiver{seen: map[uint64]bool{}} }

func (r *receiver) receive(body []byte) {
	now := time.Now()
	if len(body) < 17 {
		return
	}
	if body[8] != 1 {
		r.warmed.Store(true)
		return
	}
	n := binary.BigEndian.Uint64(body[9:17])
	sent := time.Unix(0, int64(binary.BigEndian.Uint64(body[0:8])))
	r.mu.Lock()
	if !r.seen[n] {
		r.seen[n] = true
		r.lat = append(r.lat, now.Sub(sent))
	}
	r.mu.Unlock()
}

// waitReady sends unmeasured messages until the consumer receives one (a push consumer needs a rebalance first).
func (r *receiver) waitReady(ctx context.Context, p peer, size int) error {
	body := make([]byte, size)
	deadline := time.Now().Add(60 * time.Second)
	for !r.warmed.Load() {
		if time.Now().After(deadline) {
			return errors.New("the consumer received nothing within 60s")
		}
		if err := p.send(ctx, 0, "bench-half", body); err != nil {
			return fmt.Errorf("warm-up send: %w", err)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
	return nil
}

// waitAll waits until every acknowledged sequence number was consumed, and returns how many were not.
func (r *receiver) waitAll(ctx context.Context, acked []uint64, limit time.Duration) int {
	deadline := time.Now().Add(limit)
	for {
		missing := 0
		r.mu.Lock()
		for _, n := range acked {
			if !r.seen[n] {
				missing++
			}
		}
		r.mu.Unlock()
		if missing == 0 || time.Now().After(deadline) || ctx.Err() != nil {
			return missing
		}
		select {
		case <-ctx.Done():
		case <-time.After(50 * time.Millisecond):
		}
	}
}

func (r *receiver) latencies() []time.Duration {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.lat)
}

// Machine describes where a run happened.
type Machine struct {
	CPUs      int
	CPUModel  string
	MemTotal  string
	GoVersion string
	LoadStart string
}

func machine() Machine {
	m := Machine{CPUs: runtime.NumCPU(), GoVersion: runtime.Version(), LoadStart: loadAvg()}
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for _, l := range strings.Split(string(b), "\n") {
			if k, v, ok := strings.Cut(l, ":"); ok && strings.TrimSpace(k) == "model name" {
				m.CPUModel = strings.TrimSpace(v)
				break
			}
		}
	}
	if b, err := os.ReadFile("/proc/meminfo"); err == nil {
		for _, l := range strings.Split(string(b), "\n") {
			if v, ok := strings.CutPrefix(l, "MemTotal:"); ok {
				var kb int64
				fmt.Sscan(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), &kb)
				m.MemTotal = fmt.Sprintf("%.1f GiB", float64(kb)/(1<<20))
			}
		}
	}
	return m
}

func loadAvg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "?"
	}
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return "?"
	}
	return strings.Join(f[:3], " ")
}

// medianResult combines rounds: each field is the median of that field over the rounds.
func medianResult(rs []PeerResult) PeerResult {
	out := PeerResult{Name: rs[0].Name}
	mf := func(f func(PeerResult) float64) float64 {
		v := make([]float64, len(rs))
		for i, r := range rs {
			v[i] = f(r)
		}
		slices.Sort(v)
		return v[len(v)/2]
	}
	md := func(f func(PeerResult) time.Duration) time.Duration {
		return time.Duration(mf(func(r PeerResult) float64 { return float64(f(r)) }))
	}
	ml := func(f func(PeerResult) Latencies) Latencies {
		return Latencies{N: int(mf(func(r PeerResult) float64 { return float64(f(r).N) })),
			P50: md(func(r PeerResult) time.Duration { return f(r).P50 }), P99: md(func(r PeerResult) time.Duration { return f(r).P99 }),
			P999: md(func(r PeerResult) time.Duration { return f(r).P999 }), Max: md(func(r PeerResult) time.Duration { return f(r).Max })}
	}
	for _, r := range rs {
		out.PeakRates = append(out.PeakRates, r.PeakRate)
		out.PeakErrors += r.PeakErrors
		out.HalfErrors += r.HalfErrors
		out.SendOnlyErrors += r.SendOnlyErrors
		out.Missing += r.Missing
	}
	out.PeakRate = mf(func(r PeerResult) float64 { return r.PeakRate })
	out.Ready = md(func(r PeerResult) time.Duration { return r.Ready })
	out.IdleRSS = int64(mf(func(r PeerResult) float64 { return float64(r.IdleRSS) }))
	out.LoadRSS = int64(mf(func(r PeerResult) float64 { return float64(r.LoadRSS) }))
	out.HalfTarget = mf(func(r PeerResult) float64 { return r.HalfTarget })
	out.HalfRate = mf(func(r PeerResult) float64 { return r.HalfRate })
	out.SendOnlyRate = mf(func(r PeerResult) float64 { return r.SendOnlyRate })
	out.SendOnlySend = ml(func(r PeerResult) Latencies { return r.SendOnlySend })
	out.PeakSend = ml(func(r PeerResult) Latencies { return r.PeakSend })
	out.HalfSend = ml(func(r PeerResult) Latencies { return r.HalfSend })
	out.E2E = ml(func(r PeerResult) Latencies { return r.E2E })
	return out
}
