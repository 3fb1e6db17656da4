package apachetest

import (
	"os/exec"
	"syscall"
)

// setParentDeathSignal makes the kernel send the script SIGTERM if the test process dies (its trap stops the JVMs),
// and puts it in its own process group so killGroup reaches the JVMs too.
func setParentDeathSignal(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGTERM}
}

func killGroup(cmd *exec.Cmd) {
	if cmd.Process != nil {
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
	}
}

// KillWithParent makes the kernel kill cmd's process if this process dies, so no JVM started for a benchmark
// outlives it.
func KillWithParent(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}
