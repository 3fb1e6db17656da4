//go:build unix

package runtime_test

import "syscall"

// processExists is kill(pid, 0): nil while the process exists, ESRCH once it is gone.
func processExists(pid int) error { return syscall.Kill(pid, 0) }
