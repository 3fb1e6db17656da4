package mq

import "github.com/tide-run/tide/mq/internal/commitlog"

// FS is the file layer under the commit log (Options.FS). The implementation stays internal; these names let
// code outside mq (tide up's tests, say) inject faults.
type FS = commitlog.FS

// FaultFS wraps an FS and injects faults: a full disk (SetSpaceLeft), a torn next write, failing syncs.
type FaultFS = commitlog.FaultFS

// OSFS returns the real file system, the default.
func OSFS() FS { return commitlog.OS{} }

// NewFaultFS wraps fs; with no fault set it behaves as fs.
func NewFaultFS(fs FS) *FaultFS { return commitlog.NewFaultFS(fs) }
