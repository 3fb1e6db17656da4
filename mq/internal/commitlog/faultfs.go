package commitlog

import (
	"fmt"
	"os"
	"sync"
	"syscall"
)

// FaultFS wraps an FS and injects faults into writes, for tests: a torn write (only part of the bytes land, then
// an error, as a crash mid-write would leave) and a full disk (ENOSPC once a byte budget is spent).
type FaultFS struct {
	FS FS

	mu sync.Mutex // guards the fields below
	// SpaceLeft, when >= 0, is how many more bytes writes may add before they fail with ENOSPC; the write that
	// crosses it lands partially. -1 disables.
	SpaceLeft int64
	// TearNextWrite makes the next WriteAt write only half its bytes and fail.
	TearNextWrite bool
	// FailSync makes Sync fail.
	FailSync bool
}

// NewFaultFS wraps fs with no faults armed.
func NewFaultFS(fs FS) *FaultFS { return &FaultFS{FS: fs, SpaceLeft: -1} }

// SetSpaceLeft arms the disk-full fault.
func (f *FaultFS) SetSpaceLeft(n int64) { f.mu.Lock(); f.SpaceLeft = n; f.mu.Unlock() }

// SetTearNextWrite arms a torn write.
func (f *FaultFS) SetTearNextWrite() { f.mu.Lock(); f.TearNextWrite = true; f.mu.Unlock() }

// SetFailSync arms or disarms sync failures.
func (f *FaultFS) SetFailSync(v bool) { f.mu.Lock(); f.FailSync = v; f.mu.Unlock() }

func (f *FaultFS) OpenFile(name string, flag int, perm os.FileMode) (File, error) {
	file, err := f.FS.OpenFile(name, flag, perm)
	if err != nil {
		return nil, err
	}
	return &faultFile{File: file, fs: f}, nil
}
func (f *FaultFS) Remove(name string) error             { return f.FS.Remove(name) }
func (f *FaultFS) Rename(a, b string) error             { return f.FS.Rename(a, b) }
func (f *FaultFS) MkdirAll(dir string) error            { return f.FS.MkdirAll(dir) }
func (f *FaultFS) List(dir string) ([]string, error)    { return f.FS.List(dir) }
func (f *FaultFS) ReadFile(name string) ([]byte, error) { return f.FS.ReadFile(name) }

type faultFile struct {
	File
	fs *FaultFS
}

func (f *faultFile) WriteAt(p []byte, off int64) (int, error) {
	f.fs.mu.Lock()
	tear := f.fs.TearNextWrite
	f.fs.TearNextWrite = false
	allowed := int64(len(p))
	full := false
	if f.fs.SpaceLeft >= 0 {
		if f.fs.SpaceLeft < allowed {
			allowed, full = f.fs.SpaceLeft, true
		}
		f.fs.SpaceLeft -= allowed
	}
	f.fs.mu.Unlock()
	if tear && allowed > 0 {
		allowed /= 2
	}
	n, err := f.File.WriteAt(p[:allowed], off)
	if err != nil {
		return n, err
	}
	if full {
		return n, &os.PathError{Op: "write", Path: "faultfs", Err: syscall.ENOSPC}
	}
	if tear {
		return n, fmt.Errorf("faultfs: torn write after %d of %d bytes", n, len(p))
	}
	return n, nil
}

func (f *faultFile) Sync() error {
	f.fs.mu.Lock()
	fail := f.fs.FailSync
	f.fs.mu.Unlock()
	if fail {
		return fmt.Errorf("faultfs: sync failed")
	}
	return f.File.Sync()
}
