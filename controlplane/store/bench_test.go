package store

import (
	"fmt"
	"path/filepath"
	"testing"
)

// Benchmarks are commands, not timed tests:
//
//	go test ./controlplane/store -run XXX -bench . -benchtime 2000x
//
// Create and Update are fsynced bbolt transactions, so they measure the disk as much as the code.

func BenchmarkCreate(b *testing.B) {
	s, err := Open(Options{Path: filepath.Join(b.TempDir(), "db")})
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	b.ReportAllocs()
	for i := range b.N {
		if _, err := s.Create(svc(fmt.Sprintf("s-%d", i), "img")); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkNoopUpdate(b *testing.B) {
	s, err := Open(Options{Path: filepath.Join(b.TempDir(), "db")})
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	if _, err := s.Create(svc("s", "img")); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for range b.N {
		if _, err := s.Update(svc("s", "img")); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkGet(b *testing.B) {
	s, err := Open(Options{Path: filepath.Join(b.TempDir(), "db")})
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	if _, err := s.Create(svc("s", "img")); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for range b.N {
		if _, err := s.Get(svcGK, "default", "s"); err != nil {
			b.Fatal(err)
		}
	}
}
