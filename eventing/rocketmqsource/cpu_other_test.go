//go:build !unix

package rocketmqsource

import "time"

// processCPU is not measured here (no getrusage): the benchmarks report 0 CPU per event.
func processCPU() time.Duration { return 0 }
