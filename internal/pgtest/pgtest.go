package pgtest

import (
	"bytes"
	"context"
	"database/sql"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"sort"
	"strconv"
	"sync"
	"testing"
	"time"

	_ "github.com/jackc/pgx/v5/stdlib" // the "pgx" database/sql driver, to wait for readiness
)

// Server is one running PostgreSQL cluster.
type Server struct {
	// DSN connects to its "postgres" database as the superuser "tide" (no password), e.g.
	// postgres://tide@127.0.0.1:PORT/postgres?sslmode=disable.
	DSN string
	// Version is what `postgres --version` printed.
	Version string
}

// binDir finds the directory holding initdb and postgres.
func binDir() (string, error) {
	if p, err := exec.LookPath("initdb"); err == nil {
		if _, err := exec.LookPath("postgres"); err == nil {
			return filepath.Dir(p), nil
		}
	}
	dirs, _ := filepath.Glob("/usr/lib/postgresql/*/bin")
	sort.Sort(sort.Reverse(sort.StringSlice(dirs))) // the newest version first (lexical is enough for 1x)
	for _, d := range dirs {
		if _, err := os.Stat(filepath.Join(d, "initdb")); err == nil {
			return d, nil
		}
	}
	return "", fmt.Errorf("initdb and postgres are neither on PATH nor under /usr/lib/postgresql/*/bin (install Debian's postgresql package)")
}

// Available reports whether PostgreSQL can run here, and if not, why.
func Available() (bool, string) {
	if _, err := binDir(); err != nil {
		return false, err.Error()
	}
	return true, ""
}

// Start runs a new PostgreSQL cluster for t, or skips t (fails it under CI=true) where PostgreSQL is not
// installed. The server is stopped and its directory removed when t ends.
func Start(t testing.TB) *Server {
	t.Helper()
	bin, err := binDir()
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("PostgreSQL tests need PostgreSQL, and CI=true: %v", err)
		}
		t.Skipf("skipping PostgreSQL test: %v", err)
	}
	dir, err := os.MkdirTemp("", "tide-pg-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = os.RemoveAll(dir) })
	data := filepath.Join(dir, "data")
	if err := os.Mkdir(data, 0o700); err != nil {
		t.Fatal(err)
	}
	var uid, gid int = -1, -1
	if os.Geteuid() == 0 {
		uid, gid, err = unprivileged()
		if err != nil {
			t.Skipf("skipping PostgreSQL test: running as root and %v", err)
		}
		// The server's user must reach its data directory.
		if err := os.Chmod(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.Chown(data, uid, gid); err != nil {
			t.Fatal(err)
		}
	}
	var out bytes.Buffer
	initdb := exec.Command(filepath.Join(bin, "initdb"), "-D", data, "-U", "tide", "--auth=trust", "--no-sync",
		"-E", "UTF8", "--locale=C")
	initdb.Stdout, initdb.Stderr, initdb.Dir = &out, &out, dir
	setUser(initdb, uid, gid)
	if err := initdb.Run(); err != nil {
		t.Fatalf("initdb: %v\n%s", err, out.String())
	}
	ver, _ := exec.Command(filepath.Join(bin, "postgres"), "--version").Output()

	// PostgreSQL cannot listen on port 0: take a free port and try again if another process wins it first.
	for attempt := 0; ; attempt++ {
		port := freePort(t)
		log := &syncBuffer{}
		cmd := exec.Command(filepath.Join(bin, "postgres"), "-D", data, "-p", strconv.Itoa(port),
			"-c", "listen_addresses=127.0.0.1", "-c", "unix_socket_directories="+data, "-c", "fsync=off",
			"-c", "synchronous_commit=off", "-c", "full_page_writes=off", "-c", "max_connections=50")
		cmd.Stdout, cmd.Stderr, cmd.Dir = log, log, dir
		setUser(cmd, uid, gid)
		if err := cmd.Start(); err != nil {
			t.Fatalf("starting postgres: %v", err)
		}
		exited := make(chan error, 1)
		go func() { exited <- cmd.Wait() }()
		srv := &Server{DSN: fmt.Sprintf("postgres://tide@127.0.0.1:%d/postgres?sslmode=disable", port),
			Version: string(bytes.TrimSpace(ver))}
		if err := waitReady(srv.DSN, exited); err != nil {
			_ = cmd.Process.Kill()
			if attempt < 2 && bytes.Contains(log.Bytes(), []byte("could not bind")) {
				continue
			}
			t.Fatalf("postgres did not become ready: %v\n%s", err, log.Bytes())
		}
		t.Cleanup(func() {
			_ = cmd.Process.Signal(os.Interrupt) // fast shutdown
			select {
			case <-exited:
			case <-time.After(10 * time.Second):
				_ = cmd.Process.Kill()
				<-exited
			}
		})
		return srv
	}
}

// unprivileged finds a user PostgreSQL will run as.
func unprivileged() (int, int, error) {
	for _, name := range []string{"postgres", "nobody"} {
		u, err := user.Lookup(name)
		if err != nil {
			continue
		}
		uid, err1 := strconv.Atoi(u.Uid)
		gid, err2 := strconv.Atoi(u.Gid)
		if err1 == nil && err2 == nil {
			return uid, gid, nil
		}
	}
	return 0, 0, fmt.Errorf("neither a postgres nor a nobody user exists to run PostgreSQL as")
}

func waitReady(dsn string, exited <-chan error) error {
	db, err := sql.Open("pgx", dsn)
	if err != nil {
		return err
	}
	defer db.Close()
	deadline := time.Now().Add(30 * time.Second)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		err := db.PingContext(ctx)
		cancel()
		if err == nil {
			return nil
		}
		select {
		case werr := <-exited:
			return fmt.Errorf("postgres exited: %v", werr)
		default:
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("not accepting connections after 30 s: %w", err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func freePort(t testing.TB) int {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// syncBuffer collects the server's log from its output goroutines.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) Bytes() []byte {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]byte(nil), s.b.Bytes()...)
}
