package residency

import (
	"errors"
	"os"
	"strings"
)

// EnvVar names the environment variable that turns the release off: "off", "0", "false" or "no".
const EnvVar = "TIDE_RELEASE_STARTUP_PAGES"

// ErrUnsupported is returned on systems where the release is not implemented (everything but Linux).
var ErrUnsupported = errors.New("residency: not supported on this system")

// RSS is a process's resident memory in bytes, as /proc/self/status reports it.
type RSS struct {
	Total int64 // VmRSS
	Anon  int64 // RssAnon: heap, stacks, written private pages
	File  int64 // RssFile: mapped file pages, the executable's among them
	Shmem int64 // RssShmem: mapped tmpfs and shared-memory pages (an executable on tmpfs counts here)
}

// Result reports what ReleaseStartupPages did.
type Result struct {
	Before, After RSS
	Mappings      int   // mappings advised
	Skipped       int   // mappings of the executable left alone (writable, shared, or holding private copies)
	Bytes         int64 // address space advised, resident or not
}

// Enabled reports whether the environment leaves the release on (the default).
func Enabled() bool {
	switch strings.ToLower(strings.TrimSpace(os.Getenv(EnvVar))) {
	case "off", "0", "false", "no":
		return false
	}
	return true
}

// ReleaseStartupPages drops the process's resident pages of its own executable's read-only mappings, so that only
// the pages touched from now on count in its RSS. Call it once, when start-up is done (listeners open, ready
// printed). It is safe at any time and from any goroutine: pages still in use fault back in from the page cache.
// It does nothing, returning a zero Result and nil, when Enabled is false. On systems other than Linux it returns
// ErrUnsupported.
func ReleaseStartupPages() (Result, error) {
	if !Enabled() {
		return Result{}, nil
	}
	return releaseStartupPages()
}
