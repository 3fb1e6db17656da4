//go:build windows

package gateway

import (
	"errors"
	"time"
)

// selfCPU is not measured on Windows (not a supported platform; this keeps `GOOS=windows go vet` compiling).
func selfCPU() (time.Duration, error) { return 0, errors.New("CPU time is not measured on windows") }
