//go:build linux

package residency

import (
	"bytes"
	"errors"
	"hash/crc32"
	"os"
	"path/filepath"
	"syscall"
	"testing"
)

const smapsFixture = `00400000-02426000 r-xp 00000000 fd:00 1234                               /tmp/tide
Size:              32920 kB
Rss:               20504 kB
Anonymous:             0 kB
VmFlags: rd ex mr mw me dw
02426000-0467d000 r--p 02026000 fd:00 1234                               /tmp/tide
Anonymous:             0 kB
0467d000-0473f000 rw-p 0427d000 fd:00 1234                               /tmp/tide
Anonymous:           300 kB
0473f000-06794000 rw-p 00000000 00:00 0 
Anonymous:           172 kB
7f5027a89000-7f5027bdf000 r-xp 00028000 103:02 99 /usr/lib/a dir/libc.so.6 (deleted)
Anonymous:             0 kB
7f5027c00000-7f5027c10000 r--p 00000000 fd:00 1234 /tmp/tide
Anonymous:             8 kB
7ffd1000-7ffd2000 r--s 00000000 fd:00 77 /dev/shm/x
Anonymous:             0 kB
`

func TestParseSmaps(t *testing.T) {
	maps, err := parseSmaps([]byte(smapsFixture))
	if err != nil {
		t.Fatal(err)
	}
	want := []struct {
		m          mapping
		releasable bool
	}{
		{mapping{start: 0x400000, end: 0x2426000, perms: "r-xp", major: 0xfd, minor: 0, inode: 1234, path: "/tmp/tide"}, true},
		{mapping{start: 0x2426000, end: 0x467d000, perms: "r--p", major: 0xfd, inode: 1234, path: "/tmp/tide"}, true},
		{mapping{start: 0x467d000, end: 0x473f000, perms: "rw-p", major: 0xfd, inode: 1234, path: "/tmp/tide", anonymous: 300 << 10}, false},
		{mapping{start: 0x473f000, end: 0x6794000, perms: "rw-p", anonymous: 172 << 10}, false},
		{mapping{start: 0x7f5027a89000, end: 0x7f5027bdf000, perms: "r-xp", major: 0x103, minor: 2, inode: 99, path: "/usr/lib/a dir/libc.so.6 (deleted)"}, true},
		{mapping{start: 0x7f5027c00000, end: 0x7f5027c10000, perms: "r--p", major: 0xfd, inode: 1234, path: "/tmp/tide", anonymous: 8 << 10}, false},
		{mapping{start: 0x7ffd1000, end: 0x7ffd2000, perms: "r--s", major: 0xfd, inode: 77, path: "/dev/shm/x"}, false},
	}
	if len(maps) != len(want) {
		t.Fatalf("parsed %d mappings, want %d: %+v", len(maps), len(want), maps)
	}
	for i, w := range want {
		if maps[i] != w.m {
			t.Errorf("mapping %d = %+v, want %+v", i, maps[i], w.m)
		}
		if got := maps[i].releasable(); got != w.releasable {
			t.Errorf("mapping %d (%s %s) releasable = %v, want %v", i, maps[i].perms, maps[i].path, got, w.releasable)
		}
	}
	self := exe{major: 0xfd, inode: 1234, path: "/elsewhere"}
	if !self.is(maps[0]) || self.is(maps[4]) {
		t.Errorf("exe{fd:00 1234}.is matched by device and inode wrongly")
	}
	if !(exe{path: "/usr/lib/a dir/libc.so.6 (deleted)"}).is(maps[4]) {
		t.Errorf("exe.is does not fall back to the path")
	}
}

func TestParseSmapsMalformed(t *testing.T) {
	for _, in := range []string{
		"00400000 r-xp 00000000 fd:00 1234 /tmp/tide\n",
		"zz-02426000 r-xp 00000000 fd:00 1234 /tmp/tide\n",
		"02426000-00400000 r-xp 00000000 fd:00 1234 /tmp/tide\n",
		"00400000-02426000 r-xp 00000000 fd00 1234 /tmp/tide\n",
		"00400000-02426000 r-xp 00000000 fd:00 x /tmp/tide\n",
		"00400000-02426000 r-xp\n",
		"00400000-02426000 r-xp 00000000 fd:00 1 /t\nAnonymous: many kB\n",
	} {
		if _, err := parseSmaps([]byte(in)); !errors.Is(err, ErrBadSmaps) {
			t.Errorf("parseSmaps(%q) error = %v, want ErrBadSmaps", in, err)
		}
	}
}

// mapFile writes size bytes of a pattern to a new file (so its pages are in the page cache) and maps it. It
// writes in 1 MiB chunks: a heap buffer of the file's size would make the heap, and so RSS, move under the test.
func mapFile(t *testing.T, size int, prot int) (path string, data []byte) {
	t.Helper()
	path = filepath.Join(t.TempDir(), "big.bin")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	chunk := bytes.Repeat([]byte("tide residency! "), (1<<20)/16)
	for off := 0; off < size; off += len(chunk) {
		if _, err := f.Write(chunk[:min(len(chunk), size-off)]); err != nil {
			t.Fatal(err)
		}
	}
	data, err = syscall.Mmap(int(f.Fd()), 0, size, prot, syscall.MAP_PRIVATE)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = syscall.Munmap(data) })
	return path, data
}

func touch(data []byte) (sum byte) {
	for i := 0; i < len(data); i += 4096 {
		sum += data[i]
	}
	return sum
}

// rssFile is the process's resident file-backed pages: RssFile, plus RssShmem for files on tmpfs (where
// t.TempDir and the test binary may live).
func rssFile(t *testing.T) int64 {
	t.Helper()
	r, err := readRSS("/proc/self/status")
	if err != nil {
		t.Fatal(err)
	}
	return r.File + r.Shmem
}

// TestReleaseDropsReadOnlyFileMapping: a process that touched every page of a 64 MiB read-only private file
// mapping has them in its RSS; after release they are gone from it, and the data reads back unchanged (from the
// page cache), which brings the pages back.
func TestReleaseDropsReadOnlyFileMapping(t *testing.T) {
	const size = 64 << 20
	path, data := mapFile(t, size, syscall.PROT_READ)
	before := rssFile(t)
	sum := touch(data) // the sum is used below, so the compiler keeps the loads
	touched := rssFile(t)
	if touched-before < size*9/10 {
		t.Fatalf("touching the mapping (sum %d) raised file-backed RSS by %d KiB, want about %d KiB", sum, (touched-before)>>10, size>>10)
	}
	want := crc32.ChecksumIEEE(data)
	res, err := release("/proc/self/smaps", func(m mapping) bool { return m.path == path })
	if err != nil {
		t.Fatal(err)
	}
	if res.Mappings != 1 || res.Skipped != 0 || res.Bytes != size {
		t.Errorf("release = %+v, want 1 mapping of %d bytes advised, none skipped", res, size)
	}
	before, after := res.Before.File+res.Before.Shmem, res.After.File+res.After.Shmem
	if before-after < size*9/10 {
		t.Errorf("release dropped %d KiB of file-backed RSS (%d -> %d KiB), want about %d KiB",
			(before-after)>>10, before>>10, after>>10, size>>10)
	}
	if got := crc32.ChecksumIEEE(data); got != want {
		t.Fatalf("the mapping reads back with checksum %08x after release, want %08x", got, want)
	}
	if back := rssFile(t); back-after < size*9/10 {
		t.Errorf("reading the mapping again raised file-backed RSS by %d KiB, want the %d KiB back", (back-after)>>10, size>>10)
	}
}

// TestReleaseKeepsPrivateCopies: a private mapping the process wrote to (then made read-only, as a debugger's
// breakpoint leaves text) holds pages that exist nowhere else, so release must leave it alone.
func TestReleaseKeepsPrivateCopies(t *testing.T) {
	const size = 4 << 20
	path, data := mapFile(t, size, syscall.PROT_READ|syscall.PROT_WRITE)
	for i := 0; i < size; i += 4096 {
		data[i] = 'X'
	}
	if err := syscall.Mprotect(data, syscall.PROT_READ); err != nil {
		t.Fatal(err)
	}
	res, err := release("/proc/self/smaps", func(m mapping) bool { return m.path == path })
	if err != nil {
		t.Fatal(err)
	}
	if res.Mappings != 0 || res.Skipped != 1 {
		t.Errorf("release = %+v, want the written mapping skipped", res)
	}
	for i := 0; i < size; i += 4096 {
		if data[i] != 'X' {
			t.Fatalf("byte %d = %q after release, want the written 'X'", i, data[i])
		}
	}
}

// TestReleaseStartupPagesOfTestBinary runs the real thing on this test binary's own executable.
func TestReleaseStartupPagesOfTestBinary(t *testing.T) {
	t.Setenv(EnvVar, "")
	res, err := ReleaseStartupPages()
	if err != nil {
		t.Fatal(err)
	}
	if res.Mappings < 2 {
		t.Errorf("advised %d mappings of the executable, want its text and read-only data at least: %+v", res.Mappings, res)
	}
	if before, after := res.Before.File+res.Before.Shmem, res.After.File+res.After.Shmem; after >= before {
		t.Errorf("file-backed RSS %d KiB -> %d KiB, want it to fall", before>>10, after>>10)
	}
}
