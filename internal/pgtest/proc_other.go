//go:build !linux

package pgtest

import "os/exec"

// setUser: outside Linux the server runs as the test's user (PostgreSQL refuses root; such a test fails clearly).
func setUser(cmd *exec.Cmd, uid, gid int) {}
