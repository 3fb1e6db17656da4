package tailbuf

import (
	"strings"
	"sync"
	"testing"
)

func TestKeepsTheTail(t *testing.T) {
	b := &Buffer{Max: 10}
	b.Write([]byte("0123456789"))
	b.Write([]byte("abc"))
	if got := b.String(); got != "3456789abc" {
		t.Fatalf("got %q, want the last 10 bytes", got)
	}
	all := &Buffer{}
	all.Write([]byte(strings.Repeat("x", 1000)))
	if n := len(all.String()); n != 1000 {
		t.Fatalf("without Max kept %d of 1000 bytes", n)
	}
}

func TestConcurrentWrites(t *testing.T) {
	b := &Buffer{Max: 1 << 20}
	var wg sync.WaitGroup
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 100 {
				b.Write([]byte("line\n"))
			}
		}()
	}
	wg.Wait()
	if n := strings.Count(b.String(), "line\n"); n != 800 {
		t.Fatalf("%d lines, want 800", n)
	}
}
