//go:build !linux

package kafkatest

import "os/exec"

// setParentDeathSignal: without a parent-death signal (macOS), the script still stops the JVM when its stdin
// closes, which happens when the test process exits; a kill -9 of the test process can leave it running
// (`test/apache/kafka stop DIR` removes them).
func setParentDeathSignal(*exec.Cmd) {}

// killGroup kills the script only; its EXIT trap stops the JVM.
func killGroup(cmd *exec.Cmd) {
	if cmd.Process != nil {
		_ = cmd.Process.Kill()
	}
}
