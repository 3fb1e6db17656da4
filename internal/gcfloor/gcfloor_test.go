package gcfloor

import (
	"errors"
	"os"
	"runtime"
	"runtime/debug"
	"runtime/metrics"
	"sync"
	"testing"
	"time"
)

func TestPercentFor(t *testing.T) {
	for _, tc := range []struct {
		floor, live, roots uint64
		base, want         int
	}{
		{floor: 256 << 20, live: 8 << 20, base: 100, want: 3100},                 // 8 + 8 × 31 = 256 MiB
		{floor: 256 << 20, live: 8 << 20, roots: 8 << 20, base: 100, want: 1550}, // 8 + 16 × 15.5 = 256 MiB
		{floor: 256 << 20, live: 128 << 20, base: 100, want: 100},
		{floor: 256 << 20, live: 200 << 20, base: 100, want: 100},     // 28% would be below GOGC: GOGC wins
		{floor: 256 << 20, live: 300 << 20, base: 100, want: 100},     // past the floor
		{floor: 256 << 20, live: 0, base: 100, want: 100},             // live heap unknown
		{floor: 256 << 20, live: 8 << 20, base: 5000, want: 5000},     // a user's larger GOGC stays
		{floor: 256 << 20, live: 1 << 20, base: 100, want: 6400},      // 25,500% would make the runtime's minimum 1 GiB
		{floor: 1 << 40, live: 1, base: 100, want: 1 << 20 * 100 / 4}, // capped the same way
	} {
		if got := percentFor(tc.floor, tc.live, tc.roots, tc.base); got != tc.want {
			t.Errorf("percentFor(%d, %d, %d, %d) = %d, want %d", tc.floor, tc.live, tc.roots, tc.base, got, tc.want)
		}
	}
}

func TestParseSize(t *testing.T) {
	for in, want := range map[string]uint64{
		"0": 0, "off": 0, "OFF": 0, "268435456": 256 << 20, "256MiB": 256 << 20, "256 MiB": 256 << 20,
		"256m": 256 << 20, "1GiB": 1 << 30, "2G": 2 << 30, "64KiB": 64 << 10, "10B": 10,
	} {
		got, err := ParseSize(in)
		if err != nil || got != want {
			t.Errorf("ParseSize(%q) = %d, %v; want %d", in, got, err, want)
		}
	}
	for _, in := range []string{"", "MiB", "-1", "12 parsecs", "1.5GiB", "99999999999999999999", "17179869184GiB"} {
		if _, err := ParseSize(in); !errors.Is(err, ErrBadSize) {
			t.Errorf("ParseSize(%q) error = %v, want ErrBadSize", in, err)
		}
	}
}

// gcCycles is the number of completed collections so far.
func gcCycles() uint64 {
	s := []metrics.Sample{{Name: "/gc/cycles/total:gc-cycles"}}
	metrics.Read(s)
	return s[0].Value.Uint64()
}

func heapGoal() uint64 {
	s := []metrics.Sample{{Name: "/gc/heap/goal:bytes"}}
	metrics.Read(s)
	return s[0].Value.Uint64()
}

var sink [][]byte

// churn allocates n bytes of short-lived garbage in 4 KiB pieces, keeping at most 64 KiB alive.
func churn(n int) {
	sink = make([][]byte, 16)
	for i := 0; i < n/4096; i++ {
		sink[i%16] = make([]byte, 4096)
	}
	sink = nil
}

func TestFloorDefersCollections(t *testing.T) {
	base := debug.SetGCPercent(100)
	defer debug.SetGCPercent(base)
	runtime.GC()

	// Without a floor the test binary's small live heap gives a goal of a few MiB, so 64 MiB of garbage takes
	// several cycles. (The goal is what decides it; the number of cycles is only reported, because on a starved
	// machine a slow concurrent mark lets the heap overshoot and fewer cycles run.)
	if goal := heapGoal(); goal > 32<<20 {
		t.Fatalf("heap goal %d MiB without a floor; the test assumes a small live heap", goal>>20)
	}
	before := gcCycles()
	churn(64 << 20)
	without := gcCycles() - before

	f := Install(512 << 20)
	defer f.Stop()
	runtime.GC() // the floor's first per-cycle adjustment runs after this cycle
	deadline := time.Now().Add(5 * time.Second)
	for f.Percent() <= 100 {
		if time.Now().After(deadline) {
			t.Fatalf("GC percentage still %d after a cycle; the floor did not adjust it", f.Percent())
		}
		runtime.Gosched()
	}
	// The runtime's own goal lands at the floor (its formula counts GC roots too; ignoring them overshoots).
	if goal := heapGoal(); goal < 460<<20 || goal > 564<<20 {
		t.Errorf("heap goal %d MiB with a 512 MiB floor, want within 10%%", goal>>20)
	}
	before = gcCycles()
	churn(64 << 20)
	with := gcCycles() - before
	if with > 1 {
		t.Errorf("with a 512 MiB floor 64 MiB of garbage took %d collections (without: %d), want at most 1", with, without)
	}

	f.Stop()
	if got := debug.SetGCPercent(100); got != 100 {
		t.Errorf("after Stop the GC percentage is %d, want the 100 found at Install", got)
	}
}

// TestIdleCycleDropsTheFloor: a cycle that comes idleAfter or more after the previous one (the runtime's periodic
// collection of a process that stopped allocating) runs with the base percentage, so the heap goal, and the memory
// the scavenger keeps, fall back; the next cycle of a busy process puts the floor back.
func TestIdleCycleDropsTheFloor(t *testing.T) {
	base := debug.SetGCPercent(100)
	defer debug.SetGCPercent(base)
	var mu sync.Mutex
	clock := time.Unix(1_000_000, 0)
	f := Install(512 << 20)
	defer f.Stop()
	f.mu.Lock()
	f.now = func() time.Time { mu.Lock(); defer mu.Unlock(); return clock }
	f.mu.Unlock()
	step := func(d time.Duration) { mu.Lock(); clock = clock.Add(d); mu.Unlock() }
	waitPercent := func(what string, ok func(int) bool) {
		t.Helper()
		deadline := time.Now().Add(5 * time.Second)
		for !ok(f.Percent()) {
			if time.Now().After(deadline) {
				t.Fatalf("%s: GC percentage %d", what, f.Percent())
			}
			runtime.Gosched()
		}
	}
	step(time.Second)
	runtime.GC()
	waitPercent("busy cycle", func(p int) bool { return p > 100 })
	step(idleAfter)
	runtime.GC()
	waitPercent("idle cycle", func(p int) bool { return p == 100 })
	if goal := heapGoal(); goal > 64<<20 {
		t.Errorf("heap goal %d MiB after an idle cycle, want what GOGC=100 gives for a small heap", goal>>20)
	}
	// The idle adjustment ends with a debug.FreeOSMemory (one more collection) before it re-arms, so a busy
	// process's next cycles put the floor back: collect until one does.
	step(time.Second)
	deadline := time.Now().Add(5 * time.Second)
	for f.Percent() <= 100 {
		if time.Now().After(deadline) {
			t.Fatalf("busy again: GC percentage %d", f.Percent())
		}
		runtime.GC()
	}
}

func TestInstallOffIsNoop(t *testing.T) {
	base := debug.SetGCPercent(-1)
	defer debug.SetGCPercent(base)
	f := Install(256 << 20)
	if f.Percent() != -1 {
		t.Errorf("with the collector off, Install set the percentage to %d", f.Percent())
	}
	f.Stop()
	if got := debug.SetGCPercent(-1); got != -1 {
		t.Errorf("Stop changed the percentage of a collector that was off: %d", got)
	}
	if f := Install(0); f.Percent() != -1 {
		t.Errorf("a zero floor changed the percentage to %d", f.Percent())
	}
}

func TestCgroupMemoryLimit(t *testing.T) {
	files := func(m map[string]string) func(string) ([]byte, error) {
		return func(p string) ([]byte, error) {
			if v, ok := m[p]; ok {
				return []byte(v), nil
			}
			return nil, os.ErrNotExist
		}
	}
	for _, tc := range []struct {
		name  string
		files map[string]string
		limit uint64
		ok    bool
	}{
		{"v2 limit", map[string]string{"/sys/fs/cgroup/memory.max": "134217728\n"}, 128 << 20, true},
		{"v2 no limit", map[string]string{"/sys/fs/cgroup/memory.max": "max\n"}, 0, false},
		{"v1 limit", map[string]string{"/sys/fs/cgroup/memory/memory.limit_in_bytes": "67108864\n"}, 64 << 20, true},
		{"v1 no limit", map[string]string{"/sys/fs/cgroup/memory/memory.limit_in_bytes": "9223372036854771712\n"}, 0, false},
		{"no cgroup files", nil, 0, false},
		{"garbage", map[string]string{"/sys/fs/cgroup/memory.max": "lots"}, 0, false},
	} {
		limit, ok := cgroupMemoryLimit(files(tc.files))
		if limit != tc.limit || ok != tc.ok {
			t.Errorf("%s: %d, %v; want %d, %v", tc.name, limit, ok, tc.limit, tc.ok)
		}
	}
}

func TestInstallFromEnv(t *testing.T) {
	base := debug.SetGCPercent(100)
	defer debug.SetGCPercent(base)
	t.Setenv("GOGC", "")
	t.Setenv("GOMEMLIMIT", "")
	t.Setenv(EnvVar, "lots")
	if _, err := InstallFromEnv(); !errors.Is(err, ErrBadSize) {
		t.Errorf("TIDE_GC_FLOOR=lots: error %v, want ErrBadSize", err)
	}
	t.Setenv(EnvVar, "off")
	f, err := InstallFromEnv()
	if err != nil || f.floor != 0 {
		t.Errorf("TIDE_GC_FLOOR=off: floor %d, err %v; want none", f.floor, err)
	}
	t.Setenv(EnvVar, "64MiB")
	f, err = InstallFromEnv()
	if err != nil || f.floor != 64<<20 {
		t.Errorf("TIDE_GC_FLOOR=64MiB: floor %d, err %v", f.floor, err)
	}
	f.Stop()
	t.Setenv("GOGC", "200")
	f, _ = InstallFromEnv()
	if f.floor != 0 {
		t.Errorf("with GOGC set, a floor of %d was installed; the user's setting must win", f.floor)
	}
}

// TestInstallForBenchmark: the floor holds for the benchmark (here a subtest) and is gone after it.
func TestInstallForBenchmark(t *testing.T) {
	base := debug.SetGCPercent(100)
	defer debug.SetGCPercent(base)
	t.Setenv("GOGC", "")
	t.Setenv("GOMEMLIMIT", "")
	t.Setenv(EnvVar, "512MiB")
	t.Run("bench", func(t *testing.T) {
		InstallForBenchmark(t)
		deadline := time.Now().Add(5 * time.Second)
		for heapGoal() < 256<<20 {
			if time.Now().After(deadline) {
				t.Fatalf("heap goal %d MiB with a 512 MiB floor installed", heapGoal()>>20)
			}
			runtime.GC()
		}
	})
	if p := debug.SetGCPercent(100); p != 100 {
		t.Errorf("GC percentage %d after the benchmark, want the 100 it found", p)
	}
}
