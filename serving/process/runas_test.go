//go:build linux

package process

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
)

// procUID reads the real, effective, saved and file-system uids of pid from /proc (Linux).
func procUID(t *testing.T, pid int) []string {
	t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		t.Fatalf("reading the instance's status: %v", err)
	}
	for line := range strings.Lines(string(b)) {
		if rest, ok := strings.CutPrefix(line, "Uid:"); ok {
			return strings.Fields(rest)
		}
	}
	t.Fatal("no Uid line")
	return nil
}

func nobody(t *testing.T) *RunAs {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("switching users needs root; this test checks what tide does when it runs as root")
	}
	ru, err := LookupRunAs("nobody")
	if err != nil {
		t.Fatal(err)
	}
	return ru
}

// allowedEnv is every variable an instance may see: the runtime contract, the base tide passes on, and what the
// test's container sets.
var allowedEnv = []string{"PORT", "K_SERVICE", "K_CONFIGURATION", "K_REVISION", "PATH", "HOME", "TMPDIR", "USER", "LANG", "TZ", "GREETING"}

// TestInstanceRunsAsInstanceUser runs the ko:// conformance program as nobody while tide is root: the kernel
// reports uid 65534 for the process, its environment holds only the runtime contract and the container's env
// (tide's TIDE_TOKEN and other variables do not leak), HOME is a private directory it owns, and the build cache and
// data dir are not opened to it.
func TestInstanceRunsAsInstanceUser(t *testing.T) {
	ru := nobody(t)
	t.Setenv("TIDE_TOKEN", "do-not-leak")
	t.Setenv("AWS_SECRET_ACCESS_KEY", "do-not-leak-either")
	dataDir := t.TempDir()
	if err := os.Chmod(dataDir, 0o700); err != nil {
		t.Fatal(err)
	}
	p := newTestPool(t, Options{
		DataDir: dataDir,
		RunAs:   ru,
		Spec:    testSpec(corev1.Container{Image: conformanceImage, Env: []corev1.EnvVar{{Name: "GREETING", Value: "hi"}}}),
	})
	p.SetScale(1)
	inst := readyInstance(t, p)
	for i, id := range procUID(t, inst.PID) {
		if id != "65534" {
			t.Errorf("uid field %d of the instance = %s, want 65534 (nobody)", i, id)
		}
	}
	var env map[string]string
	getJSON(t, "http://"+inst.Addr+"/env", &env)
	for k, v := range env {
		if !slices.Contains(allowedEnv, k) {
			t.Errorf("instance sees %s=%q, which is not part of its runtime contract", k, v)
		}
		if strings.Contains(v, "do-not-leak") {
			t.Errorf("tide's environment leaked into %s", k)
		}
	}
	if env["GREETING"] != "hi" || env["USER"] != ru.Name || env["K_REVISION"] != "svc-00001" {
		t.Errorf("env = %v", env)
	}
	home := env["HOME"]
	st, err := os.Stat(home)
	if err != nil {
		t.Fatal(err)
	}
	if s := st.Sys().(*syscall.Stat_t); s.Uid != ru.UID || st.Mode().Perm() != 0o700 {
		t.Errorf("HOME %s: uid %d mode %v, want uid %d mode 0700", home, s.Uid, st.Mode().Perm(), ru.UID)
	}
	if env["TMPDIR"] != home {
		t.Errorf("TMPDIR = %q, want the instance directory %q", env["TMPDIR"], home)
	}
	if strings.HasPrefix(home, dataDir) {
		t.Errorf("instance directory %s is inside the data dir, which would have to be opened to nobody", home)
	}
	if cwd, err := os.Readlink(fmt.Sprintf("/proc/%d/cwd", inst.PID)); err != nil || cwd != home {
		t.Errorf("working directory of a ko:// instance = %q (%v), want its instance directory %q", cwd, err, home)
	}
	// The data dir (0700 here) and the logs stay tide's alone: nobody reached its binary and HOME without them.
	if st, err := os.Stat(dataDir); err != nil || st.Mode().Perm() != 0o700 {
		t.Errorf("data dir mode %v (%v): opened to others", st.Mode().Perm(), err)
	}
	logFile := filepath.Join(p.LogDir(), inst.ID+".log")
	if st, err := os.Stat(logFile); err != nil || st.Mode().Perm() != 0o600 {
		t.Errorf("log file %s: %v %v, want mode 0600", logFile, st.Mode(), err)
	}
	// When the slot ends its directory goes with it.
	p.SetScale(0)
	eventually(t, 10*time.Second, "instance directory removed", func() bool {
		_, err := os.Stat(home)
		return errors.Is(err, os.ErrNotExist)
	})
}

// TestCommandRunsAsInstanceUser runs a shell command as nobody: its id, a file written in HOME, and no access to a
// file only root may read (the kind of thing an instance of a root tide could otherwise take, e.g. the data dir's
// token).
func TestCommandRunsAsInstanceUser(t *testing.T) {
	ru := nobody(t)
	secret := filepath.Join(t.TempDir(), "token")
	if err := os.WriteFile(secret, []byte("s3cret"), 0o600); err != nil {
		t.Fatal(err)
	}
	p := newTestPool(t, Options{RunAs: ru, Spec: testSpec(corev1.Container{Image: "shell", Command: []string{"sh", "-c",
		`echo "uid=$(id -u) gid=$(id -g) groups=$(id -G)"; echo x > "$HOME/probe" && echo wrote-home; cat "$SECRET" 2>/dev/null || echo no-secret; sleep 30`},
		Env: []corev1.EnvVar{{Name: "SECRET", Value: secret}}})})
	p.SetScale(1)
	want := []string{fmt.Sprintf("uid=%d gid=%d groups=%d", ru.UID, ru.GID, ru.GID), "wrote-home", "no-secret"}
	eventually(t, 10*time.Second, "the command's three lines", func() bool { return len(p.Logs(10, "")) >= 3 })
	var got []string
	for _, l := range p.Logs(10, "") {
		got = append(got, l.Text)
	}
	if !slices.Equal(got[:3], want) {
		t.Fatalf("output %q, want %q", got, want)
	}
}

func TestLookupRunAs(t *testing.T) {
	for _, tc := range []struct {
		in       string
		uid, gid uint32
		err      bool
	}{
		{in: "nobody", uid: NobodyID, gid: NobodyID},
		{in: "65534", uid: 65534, gid: 65534},
		{in: "1234:5678", uid: 1234, gid: 5678},
		{in: "root", uid: 0, gid: 0},
		{in: "", err: true},
		{in: "x:y", err: true},
		{in: "no-such-user-tide", err: true},
	} {
		ru, err := LookupRunAs(tc.in)
		if tc.err {
			if err == nil || !errors.Is(err, ErrRunAs) {
				t.Errorf("LookupRunAs(%q) = %v, %v; want an ErrRunAs", tc.in, ru, err)
			}
			continue
		}
		if err != nil || ru.UID != tc.uid || ru.GID != tc.gid {
			t.Errorf("LookupRunAs(%q) = %v, %v; want %d:%d", tc.in, ru, err, tc.uid, tc.gid)
		}
	}
}

// TestInstanceRootRefusesForeignDir: a directory another user planted at the shared instance root's name (or a
// symbolic link there) is refused, not used.
func TestInstanceRootRefusesForeignDir(t *testing.T) {
	ru := nobody(t)
	dataDir := t.TempDir()
	root, err := InstanceRoot(dataDir, ru)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(root) })
	st, _ := os.Stat(root)
	if s := st.Sys().(*syscall.Stat_t); st.Mode().Perm() != 0o710 || s.Gid != ru.GID || int(s.Uid) != os.Geteuid() {
		t.Fatalf("instance root %s: mode %v uid %d gid %d", root, st.Mode().Perm(), s.Uid, s.Gid)
	}
	if err := os.Chown(root, int(ru.UID), int(ru.GID)); err != nil {
		t.Fatal(err)
	}
	if _, err := InstanceRoot(dataDir, ru); err == nil || !strings.Contains(err.Error(), "not to tide") {
		t.Fatalf("a root owned by another user: err = %v", err)
	}
	os.RemoveAll(root)
	if err := os.Symlink(t.TempDir(), root); err != nil {
		t.Fatal(err)
	}
	if _, err := InstanceRoot(dataDir, ru); err == nil || !strings.Contains(err.Error(), "symbolic link") {
		t.Fatalf("a symbolic link: err = %v", err)
	}
	os.Remove(root)
}
