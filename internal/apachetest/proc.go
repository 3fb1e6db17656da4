package apachetest

import (
	"os/exec"

	"github.com/tide-run/tide/internal/jvmscript"
)

// KillWithParent makes the kernel kill cmd's process if this process dies, so no JVM started for a benchmark
// outlives it.
func KillWithParent(cmd *exec.Cmd) { jvmscript.KillWithParent(cmd) }
