//go:build !linux

package apachetest

import "os/exec"

// setParentDeathSignal: without a parent-death signal (macOS), the script still stops the JVMs when its stdin
// closes, which happens when the test process exits; a kill -9 of the test process can leave them running
// (`test/apache/rocketmq stop DIR` removes them).
func setParentDeathSignal(*exec.Cmd) {}

// killGroup kills the script only; its EXIT trap stops the JVMs.
func killGroup(cmd *exec.Cmd) {
	if cmd.Process != nil {
		_ = cmd.Process.Kill()
	}
}

// KillWithParent: no parent-death signal here; the process ends when its stdin closes with this process.
func KillWithParent(*exec.Cmd) {}
