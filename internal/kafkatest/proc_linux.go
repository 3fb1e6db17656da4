package kafkatest

import (
	"os/exec"
	"syscall"
)

// setParentDeathSignal makes the kernel send the script SIGTERM if the test process dies (its trap stops the JVM),
// and puts it in its own process group so killGroup reaches the JVM too.
func setParentDeathSignal(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGTERM}
}

func killGroup(cmd *exec.Cmd) {
	if cmd.Process != nil {
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
	}
}
