package store

import (
	"database/sql"
	"encoding/json"
	"fmt"
	"path/filepath"
	"testing"

	_ "modernc.org/sqlite"
)

// Benchmarks are commands, not timed tests:
//
//	go test ./controlplane/store -run XXX -bench . -benchtime 2000x
//
// BenchmarkPeerSQLiteInsert is the peer to compare BenchmarkCreate with, in the same run.
//
// Create and Update are fsynced bbolt transactions, so they measure the disk as much as the code.

// benchStore opens a store in a temporary directory, with the real clock, closed when the benchmark ends, holding a
// Service of each given name.
func benchStore(b *testing.B, services ...string) *Store {
	b.Helper()
	s, err := Open(Options{Path: filepath.Join(b.TempDir(), "db")})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { s.Close() })
	for _, name := range services {
		if _, err := s.Create(svc(name, "img")); err != nil {
			b.Fatal(err)
		}
	}
	return s
}

func BenchmarkCreate(b *testing.B) {
	s := benchStore(b)
	b.ReportAllocs()
	for i := range b.N {
		if _, err := s.Create(svc(fmt.Sprintf("s-%d", i), "img")); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkNoopUpdate(b *testing.B) {
	s := benchStore(b, "s")
	b.ReportAllocs()
	for range b.N {
		if _, err := s.Update(svc("s", "img")); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkGet(b *testing.B) {
	s := benchStore(b, "s")
	b.ReportAllocs()
	for range b.N {
		if _, err := s.Get(svcGK, "default", "s"); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkPeerSQLiteInsert is the side-by-side peer for BenchmarkCreate: the same JSON object written durably, one
// transaction per object, into SQLite (modernc.org/sqlite, WAL, synchronous=FULL) instead of bbolt.
func BenchmarkPeerSQLiteInsert(b *testing.B) {
	db, err := sql.Open("sqlite", filepath.Join(b.TempDir(), "peer.db"))
	if err != nil {
		b.Fatal(err)
	}
	defer db.Close()
	for _, q := range []string{"PRAGMA journal_mode=WAL", "PRAGMA synchronous=FULL",
		"CREATE TABLE objects (k TEXT PRIMARY KEY, rv INTEGER, v BLOB)"} {
		if _, err := db.Exec(q); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportAllocs()
	for i := range b.N {
		name := fmt.Sprintf("s-%d", i)
		v, err := json.Marshal(svc(name, "img").Object)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := db.Exec("INSERT INTO objects (k, rv, v) VALUES (?, ?, ?)", "default\x00"+name, i+1, v); err != nil {
			b.Fatal(err)
		}
	}
}
