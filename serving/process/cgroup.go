package process

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"

	corev1 "k8s.io/api/core/v1"
)

// goos names the operating system in messages about what it lacks.
const goos = runtime.GOOS

// ErrLimitsUnsupported is wrapped when a container has cpu/memory limits but the machine cannot enforce them.
var ErrLimitsUnsupported = errors.New("resource limits not enforced")

// limits are a container's cpu/memory limits in cgroup v2 terms.
type limits struct {
	cpuMax    string // cpu.max content, "" for none
	memoryMax string // memory.max content, "" for none
}

func containerLimits(c *corev1.Container) limits {
	var l limits
	if q, ok := c.Resources.Limits[corev1.ResourceCPU]; ok {
		// cpu.max is "<quota> <period>" in microseconds; 1000m = one full CPU per period.
		const period = 100000
		quota := q.MilliValue() * period / 1000
		if quota < 1000 {
			quota = 1000 // the kernel's minimum
		}
		l.cpuMax = fmt.Sprintf("%d %d", quota, period)
	}
	if q, ok := c.Resources.Limits[corev1.ResourceMemory]; ok {
		l.memoryMax = fmt.Sprint(q.Value())
	}
	return l
}

func (l limits) empty() bool { return l.cpuMax == "" && l.memoryMax == "" }

// cgroupParent finds a cgroup v2 directory tide may create children in: the cgroup tide itself runs in, under
// root (normally /sys/fs/cgroup). It fails with a plain explanation where the machine has cgroup v1, a hybrid
// layout, no cpu/memory controllers, or no write access.
func cgroupParent(root string) (string, error) {
	ctrl, err := os.ReadFile(filepath.Join(root, "cgroup.controllers"))
	if err != nil {
		return "", fmt.Errorf("%w: no cgroup v2 hierarchy at %s (cgroup v1 or hybrid layout)", ErrLimitsUnsupported, root)
	}
	have := strings.Fields(string(ctrl))
	for _, want := range []string{"cpu", "memory"} {
		found := false
		for _, h := range have {
			found = found || h == want
		}
		if !found {
			return "", fmt.Errorf("%w: cgroup v2 controller %q not available at %s", ErrLimitsUnsupported, want, root)
		}
	}
	self, err := os.ReadFile("/proc/self/cgroup")
	if err != nil {
		return "", fmt.Errorf("%w: %w", ErrLimitsUnsupported, err)
	}
	var rel string
	for _, line := range strings.Split(strings.TrimSpace(string(self)), "\n") {
		if strings.HasPrefix(line, "0::") {
			rel = strings.TrimPrefix(line, "0::")
		}
	}
	parent := filepath.Join(root, rel, "tide")
	if err := os.MkdirAll(parent, 0o755); err != nil {
		return "", fmt.Errorf("%w: cannot create %s: %w", ErrLimitsUnsupported, parent, err)
	}
	// Children of parent get cpu and memory only if parent delegates them.
	if err := os.WriteFile(filepath.Join(parent, "cgroup.subtree_control"), []byte("+cpu +memory"), 0o644); err != nil {
		return "", fmt.Errorf("%w: cannot enable cpu/memory controllers in %s: %w", ErrLimitsUnsupported, parent, err)
	}
	return parent, nil
}

// createCgroup makes the cgroup for one instance and returns an open directory fd for SysProcAttr.CgroupFD, so the
// process starts inside it (no window where it runs unlimited).
func createCgroup(parent, name string, l limits) (dir string, fd *os.File, err error) {
	dir = filepath.Join(parent, name)
	if err := os.Mkdir(dir, 0o755); err != nil && !os.IsExist(err) {
		return "", nil, fmt.Errorf("%w: %w", ErrLimitsUnsupported, err)
	}
	if l.cpuMax != "" {
		if err := os.WriteFile(filepath.Join(dir, "cpu.max"), []byte(l.cpuMax), 0o644); err != nil {
			_ = os.Remove(dir)
			return "", nil, fmt.Errorf("%w: cpu.max: %w", ErrLimitsUnsupported, err)
		}
	}
	if l.memoryMax != "" {
		if err := os.WriteFile(filepath.Join(dir, "memory.max"), []byte(l.memoryMax), 0o644); err != nil {
			_ = os.Remove(dir)
			return "", nil, fmt.Errorf("%w: memory.max: %w", ErrLimitsUnsupported, err)
		}
	}
	f, err := os.Open(dir)
	if err != nil {
		_ = os.Remove(dir)
		return "", nil, fmt.Errorf("%w: %w", ErrLimitsUnsupported, err)
	}
	return dir, f, nil
}
