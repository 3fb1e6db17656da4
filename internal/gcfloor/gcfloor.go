package gcfloor

import (
	"errors"
	"fmt"
	"os"
	"runtime"
	"runtime/debug"
	"runtime/metrics"
	"strconv"
	"strings"
	"sync"
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

	mu      sync.Mutex // guards stopped and percent against the finalizer goroutine
	stopped bool
	percent int // the percentage last set
}

// Install sets a floor of floor bytes and returns it; Stop restores the percentage found at Install. It does
// nothing (and returns a Floor whose Stop does nothing) when floor is 0 or the collector is off (GOGC=off).
func Install(floor uint64) *Floor {
	base := debug.SetGCPercent(100)
	debug.SetGCPercent(base)
	f := &Floor{floor: floor, base: base, percent: base}
	if floor == 0 || base < 0 {
		f.stopped = true
		return f
	}
	f.adjust()
	f.arm()
	return f
}

// InstallFromEnv installs the floor TIDE_GC_FLOOR names, or Default when it is unset. A GOGC or GOMEMLIMIT in
// the environment means the user tunes the collector themselves, and then no floor is installed.
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
	}
	return Install(floor), nil
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

// adjust sets the percentage for the next cycle from the live heap of the last one and reports whether the floor
// is still installed.
func (f *Floor) adjust() bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.stopped {
		return false
	}
	p := percentFor(f.floor, liveHeap(), f.base)
	if p != f.percent {
		debug.SetGCPercent(p)
		f.percent = p
	}
	return true
}

// percentFor is the GC percentage that puts the next heap goal, live × (1 + p/100), at floor, but never below
// base, so a heap already past the floor collects as GOGC says. Unknown live heap (0) gives base.
func percentFor(floor, live uint64, base int) int {
	if live == 0 || live >= floor {
		return base
	}
	p := (floor - live) * 100 / live
	const most = 1 << 20 // a 1 KB live heap would otherwise overflow nothing but make the number silly
	if p > most {
		p = most
	}
	if int(p) < base {
		return base
	}
	return int(p)
}

func liveHeap() uint64 {
	s := []metrics.Sample{{Name: "/gc/heap/live:bytes"}}
	metrics.Read(s)
	if s[0].Value.Kind() != metrics.KindUint64 {
		return 0
	}
	return s[0].Value.Uint64()
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
