// Package process runs a Knative Revision's container as operating-system processes: one process per instance, in a
// per-revision Pool that the autoscaler sizes with SetScale.
//
// The runtime contract follows Knative's (see docs/serving.md): every instance gets its own free port in $PORT
// (the container's containerPort is only a label here, since many instances share one machine), plus K_SERVICE,
// K_CONFIGURATION and K_REVISION. Readiness is probed aggressively at start (every StartupProbeInterval, 10 ms by
// default) so a cold start costs milliseconds; the default probe is a TCP connect to $PORT, as in Knative.
// Instances are stopped by draining first (no new requests, in-flight ones finish), then SIGTERM to the process
// group, then SIGKILL after the grace period. A process that exits is restarted with exponential back-off and the
// Pool's Status carries the reason and the last lines it printed.
//
// Images: `ko://<import path>` is built with `go build` by a Builder, resolved in the directory `tide apply` ran in
// (as `ko apply` resolves it) and cached by content; a container with command/args runs that command and the image
// is only a label.
//
// Confinement (docs/security-isolation.md): an instance sees only its runtime contract in its environment, has a
// private HOME/TMPDIR directory, runs in its own process group and, when Options.RunAs is set (tide is root), as
// that unprivileged user with the build cache and data dir closed to it. Every name is checked before it becomes a
// path element (checkName/joinName). Platform files: proc_linux.go (parent-death signal, cgroup fd), proc_unix.go
// (macOS and BSDs: neither exists; what is weaker is documented).
package process
