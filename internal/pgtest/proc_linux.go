package pgtest

import (
	"os/exec"
	"syscall"
)

// setUser runs cmd as uid/gid (when not -1) and has the kernel kill it if the test process dies.
func setUser(cmd *exec.Cmd, uid, gid int) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if uid >= 0 {
		cmd.SysProcAttr.Credential = &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}
	}
}
