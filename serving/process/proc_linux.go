//go:build linux

package process

import "syscall"

// parentDeathSignal reports whether instances die with tide even when tide is killed with SIGKILL: on Linux the
// kernel sends them SIGKILL when the thread that started them exits (PR_SET_PDEATHSIG).
const parentDeathSignal = true

// cgroupsSupported reports whether this OS has cgroups at all (whether they are usable is found at run time).
const cgroupsSupported = true

// sysProcAttr is how an instance is started: in its own process group (signals reach its whole tree), with a
// parent-death signal, as cred when not nil, and inside the cgroup open as cgroupFD when >= 0 (clone3's
// CLONE_INTO_CGROUP: no window in which it runs outside its limits).
func sysProcAttr(cred *syscall.Credential, cgroupFD int) *syscall.SysProcAttr {
	a := &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL, Credential: cred}
	if cgroupFD >= 0 {
		a.UseCgroupFD = true
		a.CgroupFD = cgroupFD
	}
	return a
}

// signalGroup sends sig to the process group pgid.
func signalGroup(pgid int, sig syscall.Signal) error { return syscall.Kill(-pgid, sig) }
