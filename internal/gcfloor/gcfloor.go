package gcfloor

import (
	"errors"
	"fmt"
	"math"
	"os"
	"runtime"
	"runtime/debug"
	"runtime/metrics"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Default is the floor tide's commands install unless TIDE_GC_FLOOR says otherwise: 256 MiB of heap before the
// first collection, about what a JVM RocketMQ broker reserves for young generation alone, and small next to the
// machines tide runs on.
const Default = 256 << 20

// EnvVar names the environment variable that overrides the floor: a size such as 128MiB, 1GiB or a byte count; 0
// or "off" turns the floor off.
const EnvVar = "TIDE_GC_FLOOR"

// ErrBadSize is returned by ParseSize for a value that is not a size.
var ErrBadSize = errors.New("gcfloor: not a size")

// Floor is an installed floor. The zero value is not usable; call Install.
type Floor struct {
	floor uint64
	base  int // the GC percentage in effect at Install, the minimum the floor ever sets

	mu        sync.Mutex // guards the fields below against the finalizer goroutine
	stopped   bool
	percent   int              // the percentage last set
	lastCycle time.Time        // when the previous cycle's adjustment ran
	now       func() time.Time // time.Now; tests step it to make a cycle look idle
}

// Install sets a floor of floor bytes and returns it; Stop restores the percentage found at Install. It does
// nothing (and returns a Floor whose Stop does nothing) when floor is 0 or the collector is off (GOGC=off).
func Install(floor uint64) *Floor {
	base := debug.SetGCPercent(100)
	debug.SetGCPercent(base)
	f := &Floor{floor: floor, base: base, percent: base, now: time.Now}
	if floor == 0 || base < 0 {
		f.stopped = true
		return f
	}
	f.adjust()
	f.arm()
	return f
}

// InstallFromEnv installs the floor TIDE_GC_FLOOR names, or Default when it is unset. A GOGC or GOMEMLIMIT in
// the environment means the user tunes the collector themselves, and then no floor is installed. In a container
// with a memory limit (a Kubernetes pod running `tide adapter rocketmq`), the default floor is capped at a quarter
// of the limit, so the floor never pushes a process towards its OOM kill; an explicit TIDE_GC_FLOOR is taken as
// given.
func InstallFromEnv() (*Floor, error) {
	if os.Getenv("GOGC") != "" || os.Getenv("GOMEMLIMIT") != "" {
		return Install(0), nil
	}
	floor := uint64(Default)
	if v, ok := os.LookupEnv(EnvVar); ok {
		n, err := ParseSize(v)
		if err != nil {
			return Install(0), fmt.Errorf("%s=%q: %w", EnvVar, v, err)
		}
		floor = n
	} else if limit, ok := cgroupMemoryLimit(os.ReadFile); ok && floor > limit/4 {
		floor = limit / 4
	}
	return Install(floor), nil
}

// cgroupMemoryLimit reads the memory limit of the process's cgroup: cgroup v2's memory.max, else v1's
// memory.limit_in_bytes (v1 reports "no limit" as a number near 2^63). ok is false without a limit.
func cgroupMemoryLimit(readFile func(string) ([]byte, error)) (limit uint64, ok bool) {
	for _, path := range []string{"/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory/memory.limit_in_bytes"} {
		b, err := readFile(path)
		if err != nil {
			continue
		}
		v := strings.TrimSpace(string(b))
		if v == "max" {
			return 0, false
		}
		n, err := strconv.ParseUint(v, 10, 64)
		if err != nil || n >= 1<<62 {
			return 0, false
		}
		return n, true
	}
	return 0, false
}

// Stop removes the floor: the GC percentage goes back to what it was at Install.
func (f *Floor) Stop() {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.stopped {
		return
	}
	f.stopped = true
	debug.SetGCPercent(f.base)
}

// Percent is the GC percentage the floor set last (the base percentage before the first cycle).
func (f *Floor) Percent() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.percent
}

// sentinel is allocated once per cycle; its finalizer runs after the cycle that found it unreachable. The pointer
// field keeps it out of the tiny allocator, whose shared blocks could keep it alive for many cycles.
type sentinel struct {
	f *Floor
	_ [16]byte
}

func (f *Floor) arm() {
	runtime.SetFinalizer(&sentinel{f: f}, func(s *sentinel) {
		if s.f.adjust() {
			s.f.arm()
		}
	})
}

// idleAfter: a cycle that comes this long after the previous one is the runtime's periodic forced collection (every
// two minutes) of a process that has stopped allocating. For that cycle the floor steps aside: the percentage goes
// back to GOGC's and the free memory is returned to the system at once (debug.FreeOSMemory: one more collection,
// cheap in an idle process; the runtime's own scavenger would only act at the next cycle, two minutes later). The
// first cycle after the process gets busy again puts the floor back.
const idleAfter = 100 * time.Second

// adjust sets the percentage for the next cycle from the last cycle's marked heap and GC roots and reports whether
// the floor is still installed.
func (f *Floor) adjust() bool {
	f.mu.Lock()
	if f.stopped {
		f.mu.Unlock()
		return false
	}
	now := f.now()
	idle := !f.lastCycle.IsZero() && now.Sub(f.lastCycle) >= idleAfter
	f.lastCycle = now
	live, roots := heapAndRoots()
	p := percentFor(f.floor, live, roots, f.base)
	if idle {
		p = f.base
	}
	if p != f.percent {
		debug.SetGCPercent(p)
		f.percent = p
	}
	f.mu.Unlock()
	if idle {
		debug.FreeOSMemory()
	}
	return true
}

// runtimeHeapMinimum is the Go runtime's minimum heap goal at GOGC=100 (defaultHeapMinimum, 4 MiB); the runtime
// scales it with the percentage, so it is part of the goal arithmetic below. TestFloorDefersCollections checks the
// runtime's actual goal, so a runtime that changes this fails a test rather than the floor.
const runtimeHeapMinimum = 4 << 20

// percentFor is the GC percentage that puts the next heap goal at floor, never below base (so a heap already past
// the floor collects as GOGC says). The runtime's goal is max(live + (live + roots) × p/100, 4 MiB × p/100),
// where roots are the stack and global bytes it scans (Go 1.18+ pacer): ignoring roots would overshoot the floor
// by their share, and for a small heap the minimum term (which grows with p) would put the goal far past the floor,
// so p is capped where that term equals the floor. Unknown live heap (0) gives base.
func percentFor(floor, live, roots uint64, base int) int {
	if live == 0 || live >= floor {
		return base
	}
	p := (floor - live) * 100 / (live + roots)
	if most := floor * 100 / runtimeHeapMinimum; p > most {
		p = most
	}
	if p > uint64(math.MaxInt32) {
		p = math.MaxInt32
	}
	if int(p) < base {
		return base
	}
	return int(p)
}

// heapAndRoots reads the live heap the last cycle marked and the stack and global bytes it scanned.
func heapAndRoots() (live, roots uint64) {
	s := []metrics.Sample{{Name: "/gc/heap/live:bytes"}, {Name: "/gc/scan/stack:bytes"}, {Name: "/gc/scan/globals:bytes"}}
	metrics.Read(s)
	var v [3]uint64
	for i := range s {
		if s[i].Value.Kind() == metrics.KindUint64 {
			v[i] = s[i].Value.Uint64()
		}
	}
	return v[0], v[1] + v[2]
}

// ParseSize reads a byte size: a plain count, or a number with a unit B, KiB, MiB, GiB (also KB, MB, GB and
// K, M, G, taken as powers of 1024 as GOMEMLIMIT does for the -iB forms). "off" is 0.
func ParseSize(s string) (uint64, error) {
	t := strings.TrimSpace(s)
	if strings.EqualFold(t, "off") {
		return 0, nil
	}
	i := 0
	for i < len(t) && t[i] >= '0' && t[i] <= '9' {
		i++
	}
	if i == 0 {
		return 0, fmt.Errorf("%w: %q (want a byte count like 268435456 or 256MiB, or off)", ErrBadSize, s)
	}
	n, err := strconv.ParseUint(t[:i], 10, 64)
	if err != nil {
		return 0, fmt.Errorf("%w: %q: %w", ErrBadSize, s, err)
	}
	var shift uint
	switch strings.ToLower(strings.TrimSpace(t[i:])) {
	case "", "b":
	case "k", "kb", "kib":
		shift = 10
	case "m", "mb", "mib":
		shift = 20
	case "g", "gb", "gib":
		shift = 30
	default:
		return 0, fmt.Errorf("%w: %q: unknown unit %q (want B, KiB, MiB or GiB)", ErrBadSize, s, t[i:])
	}
	if n > (^uint64(0))>>shift {
		return 0, fmt.Errorf("%w: %q overflows", ErrBadSize, s)
	}
	return n << shift, nil
}

// TB is the part of testing.TB that InstallForBenchmark needs (this package does not import testing).
type TB interface {
	Helper()
	Fatal(args ...any)
	Cleanup(func())
}

// InstallForBenchmark installs the floor the tide binary would install (InstallFromEnv) for the rest of a
// benchmark, so benchmarks that model the binary measure the process tide runs; a bad TIDE_GC_FLOOR fails it.
func InstallForBenchmark(tb TB) {
	tb.Helper()
	f, err := InstallFromEnv()
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(f.Stop)
}
