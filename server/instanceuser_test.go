package server

import (
	"context"
	"os"
	"path/filepath"
	"testing"
)

// TestDataDirPrivate: a data dir tide creates is 0700; when instances run as another user (tide is root, with
// --instance-user), an existing data dir loses its permissions for other users, so instances cannot read the
// store (Secrets), messages or logs.
func TestDataDirPrivate(t *testing.T) {
	fresh := filepath.Join(t.TempDir(), "fresh")
	s, err := New(Options{DataDir: fresh, Logger: quiet()})
	if err != nil {
		t.Fatal(err)
	}
	_ = s.Shutdown(context.Background())
	if st, err := os.Stat(fresh); err != nil || st.Mode().Perm() != 0o700 {
		t.Fatalf("new data dir: %v %v, want 0700", st.Mode().Perm(), err)
	}
	if os.Geteuid() != 0 {
		t.Skip("the rest needs root (switching users)")
	}
	open := t.TempDir()
	if err := os.Chmod(open, 0o755); err != nil {
		t.Fatal(err)
	}
	s, err = New(Options{DataDir: open, Logger: quiet(), Serving: ServingOptions{InstanceUser: "nobody"}})
	if err != nil {
		t.Fatal(err)
	}
	_ = s.Shutdown(context.Background())
	if st, err := os.Stat(open); err != nil || st.Mode().Perm() != 0o750 {
		t.Fatalf("existing data dir with instances as nobody: %v %v, want 0750", st.Mode().Perm(), err)
	}
}
