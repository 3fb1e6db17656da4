//go:build linux

package residency

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"syscall"
)

// mapping is one entry of /proc/self/smaps: its address range, permissions ("r-xp"), backing file and how many of
// its resident bytes are private copies (Anonymous), the ones MADV_DONTNEED would discard rather than drop.
type mapping struct {
	start, end   uint64
	perms        string
	major, minor uint64
	inode        uint64
	path         string
	anonymous    int64
}

// releasable reports whether dropping m's resident pages loses nothing: readable, not writable, private, backed
// by a file, and holding no private copies of its pages.
func (m mapping) releasable() bool {
	return len(m.perms) == 4 && m.perms[0] == 'r' && m.perms[1] == '-' && m.perms[3] == 'p' && m.inode != 0 &&
		m.anonymous == 0
}

func releaseStartupPages() (Result, error) {
	self, err := executable()
	if err != nil {
		return Result{}, err
	}
	return release("/proc/self/smaps", self.is)
}

// exe identifies the running executable by device and inode (what smaps prints, and stable when the file has been
// replaced on disk since) and, for file systems whose smaps shows another device, by path.
type exe struct {
	major, minor, inode uint64
	path                string
}

func executable() (exe, error) {
	fi, err := os.Stat("/proc/self/exe")
	if err != nil {
		return exe{}, fmt.Errorf("residency: %w", err)
	}
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return exe{}, fmt.Errorf("residency: no stat for /proc/self/exe: %w", ErrUnsupported)
	}
	path, _ := os.Readlink("/proc/self/exe")
	dev := uint64(st.Dev) //nolint:unconvert // Dev is uint32 on some architectures
	// The kernel's new_encode_dev layout, as glibc's gnu_dev_major/minor decode it.
	major := (dev>>8)&0xfff | (dev>>32)&^uint64(0xfff)
	minor := dev&0xff | (dev>>12)&^uint64(0xff)
	return exe{major: major, minor: minor, inode: st.Ino, path: path}, nil
}

func (e exe) is(m mapping) bool {
	return (m.inode == e.inode && m.major == e.major && m.minor == e.minor) || (e.path != "" && m.path == e.path)
}

// release advises MADV_DONTNEED over every releasable mapping that match accepts. Mappings that match but are not
// releasable are counted as skipped. It keeps going past a failing madvise and returns the joined errors.
func release(smapsPath string, match func(mapping) bool) (Result, error) {
	var res Result
	var err error
	if res.Before, err = readRSS("/proc/self/status"); err != nil {
		return res, err
	}
	data, err := os.ReadFile(smapsPath)
	if err != nil {
		return res, fmt.Errorf("residency: %w", err)
	}
	maps, err := parseSmaps(data)
	if err != nil {
		return res, err
	}
	var errs []error
	for _, m := range maps {
		if !match(m) {
			continue
		}
		if !m.releasable() {
			res.Skipped++
			continue
		}
		n := m.end - m.start
		if _, _, e := syscall.Syscall(syscall.SYS_MADVISE, uintptr(m.start), uintptr(n), syscall.MADV_DONTNEED); e != 0 {
			errs = append(errs, fmt.Errorf("residency: madvise %x-%x %s: %w", m.start, m.end, m.path, e))
			continue
		}
		res.Mappings++
		res.Bytes += int64(n)
	}
	after, err := readRSS("/proc/self/status")
	if err != nil {
		errs = append(errs, err)
	}
	res.After = after
	return res, errors.Join(errs...)
}

// ErrBadSmaps is returned for smaps text that does not parse.
var ErrBadSmaps = errors.New("residency: malformed smaps")

// parseSmaps reads the mapping headers ("start-end perms offset major:minor inode [path]") and each mapping's
// Anonymous field from /proc/PID/smaps text.
func parseSmaps(data []byte) ([]mapping, error) {
	var out []mapping
	for lineNo, line := range strings.Split(string(data), "\n") {
		if line == "" {
			continue
		}
		first, _, _ := strings.Cut(line, " ")
		if strings.HasSuffix(first, ":") { // a field of the current mapping
			if first == "Anonymous:" && len(out) > 0 {
				kb, err := fieldKB(line)
				if err != nil {
					return nil, fmt.Errorf("%w: line %d: %w", ErrBadSmaps, lineNo+1, err)
				}
				out[len(out)-1].anonymous = kb << 10
			}
			continue
		}
		m, err := parseHeader(line)
		if err != nil {
			return nil, fmt.Errorf("%w: line %d: %w", ErrBadSmaps, lineNo+1, err)
		}
		out = append(out, m)
	}
	return out, nil
}

func parseHeader(line string) (mapping, error) {
	f := strings.Fields(line)
	if len(f) < 5 {
		return mapping{}, fmt.Errorf("%d fields in %q, want at least 5", len(f), line)
	}
	var m mapping
	lo, hi, ok := strings.Cut(f[0], "-")
	if !ok {
		return m, fmt.Errorf("address range %q", f[0])
	}
	var err error
	if m.start, err = strconv.ParseUint(lo, 16, 64); err != nil {
		return m, err
	}
	if m.end, err = strconv.ParseUint(hi, 16, 64); err != nil {
		return m, err
	}
	if m.end < m.start {
		return m, fmt.Errorf("address range %q ends before it starts", f[0])
	}
	m.perms = f[1]
	maj, min, ok := strings.Cut(f[3], ":")
	if !ok {
		return m, fmt.Errorf("device %q", f[3])
	}
	if m.major, err = strconv.ParseUint(maj, 16, 64); err != nil {
		return m, err
	}
	if m.minor, err = strconv.ParseUint(min, 16, 64); err != nil {
		return m, err
	}
	if m.inode, err = strconv.ParseUint(f[4], 10, 64); err != nil {
		return m, err
	}
	// The path is the rest of the line after the fifth field (the inode); it may contain spaces.
	rest := line
	for range 5 {
		_, rest, _ = strings.Cut(strings.TrimLeft(rest, " "), " ")
	}
	m.path = strings.TrimSpace(rest)
	return m, nil
}

func fieldKB(line string) (int64, error) {
	_, v, _ := strings.Cut(line, ":")
	return strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
}

// readRSS reads VmRSS, RssAnon, RssFile and RssShmem from a /proc/PID/status file.
func readRSS(path string) (RSS, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return RSS{}, fmt.Errorf("residency: %w", err)
	}
	var r RSS
	for _, line := range bytes.Split(data, []byte("\n")) {
		k, _, ok := strings.Cut(string(line), ":")
		if !ok {
			continue
		}
		var dst *int64
		switch k {
		case "VmRSS":
			dst = &r.Total
		case "RssAnon":
			dst = &r.Anon
		case "RssFile":
			dst = &r.File
		case "RssShmem":
			dst = &r.Shmem
		default:
			continue
		}
		kb, err := fieldKB(string(line))
		if err != nil {
			return RSS{}, fmt.Errorf("residency: %s in %s: %w", k, path, err)
		}
		*dst = kb << 10
	}
	return r, nil
}
