//go:build !linux

package residency

func releaseStartupPages() (Result, error) { return Result{}, ErrUnsupported }
