package process

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
)

// ErrRunAs is wrapped by every failure to resolve or prepare the user instances run as.
var ErrRunAs = errors.New("instance user")

// sharedTempDir is where the instance root of a RunAs user goes: /tmp, which every user may traverse (unlike
// $TMPDIR, which on macOS is a per-user private directory).
const sharedTempDir = "/tmp"

// NobodyID is the uid and gid of "nobody" on Linux, used when the system has no such user in its database.
const NobodyID = 65534

// RunAs is the unprivileged user instances run as when tide runs as root.
type RunAs struct {
	UID, GID uint32
	// Name is what instances see in $USER ("" when the uid has no name).
	Name string
}

func (r *RunAs) String() string {
	if r == nil {
		return "tide's own user"
	}
	if r.Name != "" {
		return fmt.Sprintf("%s (%d:%d)", r.Name, r.UID, r.GID)
	}
	return fmt.Sprintf("%d:%d", r.UID, r.GID)
}

// LookupRunAs resolves a user as `--instance-user` takes it: a name ("nobody"), a uid ("65534"), or "uid:gid".
// A name's gid is its primary group; a bare uid's gid is the same number unless the user database says otherwise.
// "nobody" resolves to 65534:65534 where the system has no such user.
func LookupRunAs(spec string) (*RunAs, error) {
	spec = strings.TrimSpace(spec)
	if spec == "" {
		return nil, fmt.Errorf("%w: empty user", ErrRunAs)
	}
	if u, g, ok := strings.Cut(spec, ":"); ok {
		uid, err1 := strconv.ParseUint(u, 10, 32)
		gid, err2 := strconv.ParseUint(g, 10, 32)
		if err1 != nil || err2 != nil {
			return nil, fmt.Errorf("%w: %q: want a name, a uid or uid:gid (numbers)", ErrRunAs, spec)
		}
		r := &RunAs{UID: uint32(uid), GID: uint32(gid)}
		if u, err := user.LookupId(strconv.FormatUint(uid, 10)); err == nil {
			r.Name = u.Username
		}
		return r, nil
	}
	if uid, err := strconv.ParseUint(spec, 10, 32); err == nil {
		r := &RunAs{UID: uint32(uid), GID: uint32(uid)}
		if u, err := user.LookupId(spec); err == nil {
			r.Name = u.Username
			if g, err := strconv.ParseUint(u.Gid, 10, 32); err == nil {
				r.GID = uint32(g)
			}
		}
		return r, nil
	}
	u, err := user.Lookup(spec)
	if err != nil {
		if spec == "nobody" {
			return &RunAs{UID: NobodyID, GID: NobodyID, Name: "nobody"}, nil
		}
		return nil, fmt.Errorf("%w: %q: %w", ErrRunAs, spec, err)
	}
	uid, err1 := strconv.ParseUint(u.Uid, 10, 32)
	gid, err2 := strconv.ParseUint(u.Gid, 10, 32)
	if err1 != nil || err2 != nil {
		return nil, fmt.Errorf("%w: %q has a non-numeric uid %q or gid %q", ErrRunAs, spec, u.Uid, u.Gid)
	}
	return &RunAs{UID: uint32(uid), GID: uint32(gid), Name: u.Username}, nil
}

// InstanceRoot returns the directory that holds per-instance directories (HOME, TMPDIR and the default working
// directory of each instance) and, when instances run as another user, the copies of built binaries they execute.
//
// Without ru it is <dataDir>/instances (mode 0700, like the rest of the data dir). With ru it cannot be inside
// the data dir without opening the data dir (and every directory above it, such as /root) to that user, so it is
// a directory of its own under /tmp, named after the data dir, owned by tide's user and group-owned by
// ru's group with mode 0710: ru may traverse it to reach what tide puts there for it, but not list it; other
// users get nothing. An existing directory of that name that is not tide's (another user created it first, or it
// is a symbolic link) is refused.
func InstanceRoot(dataDir string, ru *RunAs) (string, error) {
	abs, err := filepath.Abs(dataDir)
	if err != nil {
		return "", fmt.Errorf("%w: %w", ErrRunAs, err)
	}
	if ru == nil {
		dir := filepath.Join(abs, "instances")
		if err := os.MkdirAll(dir, 0o700); err != nil {
			return "", fmt.Errorf("%w: %w", ErrRunAs, err)
		}
		return dir, nil
	}
	sum := sha256.Sum256([]byte(abs))
	dir := filepath.Join(sharedTempDir, "tide-instances-"+hex.EncodeToString(sum[:])[:16])
	if err := os.Mkdir(dir, 0o700); err != nil && !errors.Is(err, os.ErrExist) {
		return "", fmt.Errorf("%w: %w", ErrRunAs, err)
	}
	if err := checkOwnDir(dir); err != nil {
		return "", err
	}
	if err := shareDir(dir, ru); err != nil {
		return "", err
	}
	return dir, nil
}

// shareDir makes dir (tide's) traversable, not listable, by ru's group only: owner tide, group ru.GID, 0710.
func shareDir(dir string, ru *RunAs) error {
	if err := os.Lchown(dir, -1, int(ru.GID)); err != nil {
		return fmt.Errorf("%w: %w", ErrRunAs, err)
	}
	if err := os.Chmod(dir, 0o710); err != nil {
		return fmt.Errorf("%w: %w", ErrRunAs, err)
	}
	return nil
}

// mkSharedDirs creates root/elems... with each new level shared as by shareDir (ru nil: mode 0700).
func mkSharedDirs(ru *RunAs, root string, elems ...string) (string, error) {
	dir := root
	for _, e := range elems {
		next, err := joinName(dir, e)
		if err != nil {
			return "", err
		}
		dir = next
		if err := os.Mkdir(dir, 0o700); err != nil && !errors.Is(err, os.ErrExist) {
			return "", fmt.Errorf("%w: %w", ErrRunAs, err)
		}
		if ru != nil {
			if err := checkOwnDir(dir); err != nil {
				return "", err
			}
			if err := shareDir(dir, ru); err != nil {
				return "", err
			}
		}
	}
	return dir, nil
}

// instanceDir creates the private directory of one instance slot, root/<namespace>/<revision>/<id>, owned by
// ru (mode 0700), and returns it.
func instanceDir(ru *RunAs, root, namespace, revision, id string) (string, error) {
	parent, err := mkSharedDirs(ru, root, namespace, revision)
	if err != nil {
		return "", err
	}
	dir, err := joinName(parent, id)
	if err != nil {
		return "", err
	}
	if err := os.Mkdir(dir, 0o700); err != nil && !errors.Is(err, os.ErrExist) {
		return "", fmt.Errorf("%w: %w", ErrRunAs, err)
	}
	if ru != nil {
		if err := os.Lchown(dir, int(ru.UID), int(ru.GID)); err != nil {
			return "", fmt.Errorf("%w: %w", ErrRunAs, err)
		}
	}
	return dir, nil
}

// exposeBinary makes a built binary executable by ru without opening the build cache: it is linked (or copied,
// across file systems) to root/bin/<key>/<name>, owned by tide, group ru.GID, mode 0750.
func exposeBinary(ru *RunAs, root, bin string) (string, error) {
	key := filepath.Base(filepath.Dir(bin))
	dir, err := mkSharedDirs(ru, root, "bin", key)
	if err != nil {
		return "", err
	}
	dst, err := joinName(dir, filepath.Base(bin))
	if err != nil {
		return "", err
	}
	if st, err := os.Lstat(dst); err == nil && st.Mode().IsRegular() {
		return dst, nil // content-addressed: an existing copy is the same binary
	}
	tmp := dst + ".tmp"
	_ = os.Remove(tmp)
	if err := os.Link(bin, tmp); err != nil {
		if err := copyFile(bin, tmp); err != nil {
			_ = os.Remove(tmp)
			return "", fmt.Errorf("%w: copying %s: %w", ErrRunAs, bin, err)
		}
	}
	if err := os.Lchown(tmp, -1, int(ru.GID)); err != nil {
		return "", fmt.Errorf("%w: %w", ErrRunAs, err)
	}
	if err := os.Chmod(tmp, 0o750); err != nil {
		return "", fmt.Errorf("%w: %w", ErrRunAs, err)
	}
	if err := os.Rename(tmp, dst); err != nil {
		return "", fmt.Errorf("%w: %w", ErrRunAs, err)
	}
	return dst, nil
}

func copyFile(src, dst string) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o700)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}
