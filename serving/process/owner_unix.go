//go:build unix

package process

import (
	"fmt"
	"os"
	"syscall"
)

// credential is what SysProcAttr.Credential needs to start a process as ru (nil: tide's own user). Supplementary
// groups are dropped (NoSetGroups false with an empty list), so the instance keeps none of tide's.
func credential(ru *RunAs) *syscall.Credential {
	if ru == nil {
		return nil
	}
	return &syscall.Credential{Uid: ru.UID, Gid: ru.GID, Groups: []uint32{}}
}

// checkOwnDir refuses a directory tide did not create: a symbolic link, not a directory, or owned by another user
// (in a shared directory such as /tmp another user could have created it first to read or swap what tide puts
// there).
func checkOwnDir(dir string) error {
	st, err := os.Lstat(dir)
	if err != nil {
		return fmt.Errorf("%w: %w", ErrRunAs, err)
	}
	if !st.IsDir() {
		return fmt.Errorf("%w: %s is not a directory (a symbolic link or file is refused)", ErrRunAs, dir)
	}
	if s, ok := st.Sys().(*syscall.Stat_t); ok && int(s.Uid) != os.Geteuid() {
		return fmt.Errorf("%w: %s belongs to uid %d, not to tide (uid %d); remove it", ErrRunAs, dir, s.Uid, os.Geteuid())
	}
	return nil
}
