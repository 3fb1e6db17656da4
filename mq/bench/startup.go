package bench

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// measureStartup execs `tide broker` on free ports with a fresh data dir StartupRuns times. Ready time is from
// exec to the moment its name server accepts a TCP connection (the process prints its addresses once both ports
// listen; the connection confirms it). Idle RSS is VmRSS from /proc after the last run idled IdleWait.
func measureStartup(ctx context.Context, opts Options) (*Startup, error) {
	st := &Startup{}
	for i := 0; i < opts.StartupRuns; i++ {
		dir := filepath.Join(opts.DataDir, fmt.Sprintf("startup-%d", i))
		last := i == opts.StartupRuns-1
		ready, mem, load, err := startOnce(ctx, opts, dir, last)
		if err != nil {
			return nil, err
		}
		st.Ready = append(st.Ready, ready)
		if last {
			st.IdleRSS, st.IdleAnon, st.IdleFile = mem.total, mem.anon, mem.file
			st.Load = load
		}
	}
	sorted := slices.Clone(st.Ready)
	slices.Sort(sorted)
	st.ReadyMed, st.ReadyMax = sorted[len(sorted)/2], sorted[len(sorted)-1]
	return st, nil
}

// startOnce starts the broker once and returns its ready time; with measureRSS also its idle RSS and, when
// opts.StartupLoad is positive, its RSS after a workload.
func startOnce(ctx context.Context, opts Options, dir string, measureRSS bool) (time.Duration, rss, *StartupLoad, error) {
	bin := opts.TideBinary
	cmd := exec.CommandContext(ctx, bin, "broker", "--namesrv-port", "0", "--broker-port", "0", "--grpc-port", "0", "--data-dir", dir)
	out, err := cmd.StdoutPipe()
	if err != nil {
		return 0, rss{}, nil, err
	}
	cmd.Stderr = nil
	t0 := time.Now()
	if err := cmd.Start(); err != nil {
		return 0, rss{}, nil, err
	}
	defer func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		done := make(chan struct{})
		go func() { _ = cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			_ = cmd.Process.Kill()
			<-done
		}
	}()
	lines := make(chan string)
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			lines <- sc.Text()
		}
		close(lines)
	}()
	var nsAddr string
	timeout := time.After(30 * time.Second)
	for nsAddr == "" {
		select {
		case l, ok := <-lines:
			if !ok {
				return 0, rss{}, nil, fmt.Errorf("%s broker exited before printing its addresses", bin)
			}
			if a, found := strings.CutPrefix(l, "name server "); found {
				nsAddr = a
			}
		case <-timeout:
			return 0, rss{}, nil, fmt.Errorf("%s broker printed no address within 30s", bin)
		}
	}
	for {
		c, err := net.DialTimeout("tcp", nsAddr, time.Second)
		if err == nil {
			c.Close()
			break
		}
		if time.Since(t0) > 30*time.Second {
			return 0, rss{}, nil, fmt.Errorf("name server %s not accepting connections: %w", nsAddr, err)
		}
	}
	ready := time.Since(t0)
	go func() {
		for range lines { // drain so the child never blocks on stdout
		}
	}()
	if !measureRSS {
		return ready, rss{}, nil, nil
	}
	select {
	case <-ctx.Done():
		return 0, rss{}, nil, ctx.Err()
	case <-time.After(opts.IdleWait):
	}
	r, err := vmRSS(cmd.Process.Pid)
	if err != nil || opts.StartupLoad <= 0 {
		return ready, r, nil, err
	}
	load, err := loadOnce(ctx, opts, nsAddr)
	if err != nil {
		return ready, r, nil, fmt.Errorf("workload: %w", err)
	}
	lr, err := vmRSS(cmd.Process.Pid)
	load.RSS, load.Anon, load.File = lr.total, lr.anon, lr.file
	return ready, r, load, err
}

// loadOnce sends opts.StartupLoad messages with opts.Senders senders to the broker behind nsAddr, and has a push
// consumer read them all.
func loadOnce(ctx context.Context, opts Options, nsAddr string) (*StartupLoad, error) {
	p, err := newRemoteRocketPeer(nsAddr, opts.Connections)
	if err != nil {
		return nil, err
	}
	defer p.close()
	const topic = "bench-startup-load"
	if err := p.prepare(topic); err != nil {
		return nil, fmt.Errorf("creating %s: %w", topic, err)
	}
	rc := newReceiver()
	stop, err := p.subscribe(topic, rc.receive)
	if err != nil {
		return nil, fmt.Errorf("subscribing: %w", err)
	}
	defer stop()
	ph := runSenders(ctx, p, topic, opts, opts.StartupLoad, 0, 0)
	if len(ph.acked) == 0 {
		return nil, fmt.Errorf("every send failed: %w", ph.firstErr)
	}
	missing := rc.waitAll(ctx, ph.acked, 60*time.Second)
	return &StartupLoad{Messages: len(ph.acked), Rate: ph.rate, Errors: ph.errors, Missing: missing}, nil
}

// rss is a process's resident memory from /proc/PID/status, in bytes: total, anonymous (heap, stacks) and
// file-backed (the executable's pages it touched, shared and reclaimable).
type rss struct{ total, anon, file int64 }

func vmRSS(pid int) (rss, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return rss{}, err
	}
	var r rss
	for _, l := range strings.Split(string(b), "\n") {
		k, v, ok := strings.Cut(l, ":")
		if !ok {
			continue
		}
		kb, err := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
		if err != nil {
			continue
		}
		switch k {
		case "VmRSS":
			r.total = kb << 10
		case "RssAnon":
			r.anon = kb << 10
		case "RssFile":
			r.file = kb << 10
		}
	}
	if r.total == 0 {
		return r, fmt.Errorf("no VmRSS in /proc/%d/status", pid)
	}
	return r, nil
}
