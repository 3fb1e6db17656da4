//go:build windows

package process

import (
	"fmt"
	"os"
	"syscall"
)

// Windows is not a supported platform (run tide in WSL2); this file only keeps `GOOS=windows go vet ./...` passing.
// Instances there would have no process group, no parent-death signal, no other user and no limits.

const (
	parentDeathSignal = false
	cgroupsSupported  = false
)

// credential: switching users is not implemented on Windows.
func credential(*RunAs) *struct{} { return nil }

func sysProcAttr(*struct{}, int) *syscall.SysProcAttr { return &syscall.SysProcAttr{} }

// signalGroup kills the process itself: there are no process groups to signal.
func signalGroup(pid int, _ syscall.Signal) error {
	p, err := os.FindProcess(pid)
	if err != nil {
		return err
	}
	return p.Kill()
}

func checkOwnDir(dir string) error {
	st, err := os.Lstat(dir)
	if err != nil {
		return fmt.Errorf("%w: %w", ErrRunAs, err)
	}
	if !st.IsDir() {
		return fmt.Errorf("%w: %s is not a directory", ErrRunAs, dir)
	}
	return nil
}
