//go:build windows

package runtime_test

import (
	"errors"
	"syscall"
)

// processExists is not implemented on Windows (not a supported platform; this keeps `GOOS=windows go vet`
// compiling).
func processExists(int) error {
	return errors.Join(errors.New("not implemented on windows"), syscall.EWINDOWS)
}
