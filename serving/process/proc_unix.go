//go:build unix && !linux

package process

import "syscall"

// parentDeathSignal is false: macOS and the BSDs have no parent-death signal. Instances are stopped when tide
// shuts down (SIGINT/SIGTERM, or the 30 s budget ending in SIGKILL to each process group), but an instance whose
// tide was killed with SIGKILL or crashed keeps running until it exits; docs/security-isolation.md says so.
const parentDeathSignal = false

// cgroupsSupported is false: there are no cgroups outside Linux, so resource limits are reported as not enforced.
const cgroupsSupported = false

// sysProcAttr starts an instance in its own process group, as cred when not nil. cgroupFD is ignored (always -1
// here, since cgroupsSupported is false).
func sysProcAttr(cred *syscall.Credential, _ int) *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true, Credential: cred}
}

// signalGroup sends sig to the process group pgid.
func signalGroup(pgid int, sig syscall.Signal) error { return syscall.Kill(-pgid, sig) }
