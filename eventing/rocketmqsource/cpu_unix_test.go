//go:build unix

package rocketmqsource

import (
	"syscall"
	"time"
)

// processCPU is the user+system CPU time this process has used (a benchmark's cost on a shared machine, where
// wall time also counts other processes' turns).
func processCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
