package commitlog

import (
	"io"
	"os"
	"path/filepath"
	"sort"
	"time"
)

// File is the part of *os.File the log uses; FaultFS wraps it to inject torn writes and full disks.
type File interface {
	io.ReaderAt
	io.WriterAt
	Sync() error
	Truncate(size int64) error
	Close() error
	Size() (int64, error)
	ModTime() (time.Time, error)
}

// FS opens and lists files. OS is the real one.
type FS interface {
	OpenFile(name string, flag int, perm os.FileMode) (File, error)
	Remove(name string) error
	Rename(from, to string) error
	MkdirAll(dir string) error
	// List returns the names (not paths) of the regular files in dir, sorted.
	List(dir string) ([]string, error)
	ReadFile(name string) ([]byte, error)
}

// OS is the operating system's file system.
type OS struct{}

type osFile struct{ *os.File }

func (f osFile) Size() (int64, error) {
	st, err := f.Stat()
	if err != nil {
		return 0, err
	}
	return st.Size(), nil
}

func (f osFile) ModTime() (time.Time, error) {
	st, err := f.Stat()
	if err != nil {
		return time.Time{}, err
	}
	return st.ModTime(), nil
}

// OpenFile opens a file.
func (OS) OpenFile(name string, flag int, perm os.FileMode) (File, error) {
	f, err := os.OpenFile(name, flag, perm)
	if err != nil {
		return nil, err
	}
	return osFile{f}, nil
}

// Remove removes a file.
func (OS) Remove(name string) error { return os.Remove(name) }

// Rename renames a file.
func (OS) Rename(from, to string) error { return os.Rename(from, to) }

// MkdirAll creates a directory tree.
func (OS) MkdirAll(dir string) error { return os.MkdirAll(dir, 0o755) }

// ReadFile reads a whole file.
func (OS) ReadFile(name string) ([]byte, error) { return os.ReadFile(name) }

// List lists regular files.
func (OS) List(dir string) ([]string, error) {
	ents, err := os.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	var names []string
	for _, e := range ents {
		if e.Type().IsRegular() {
			names = append(names, e.Name())
		}
	}
	sort.Strings(names)
	return names, nil
}

// WriteFileAtomic writes data to name through a temporary file, fsync and rename, so a crash leaves the old or the
// new content, never a mix.
func WriteFileAtomic(fs FS, name string, data []byte) error {
	tmp := name + ".tmp"
	f, err := fs.OpenFile(tmp, os.O_CREATE|os.O_TRUNC|os.O_RDWR, 0o644)
	if err != nil {
		return err
	}
	if _, err := f.WriteAt(data, 0); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	if err := fs.Rename(tmp, name); err != nil {
		return err
	}
	if d, err := fs.OpenFile(filepath.Dir(name), os.O_RDONLY, 0); err == nil {
		_ = d.Sync()
		d.Close()
	}
	return nil
}
