// Package tailbuf is a leaf: a concurrency-safe buffer that keeps only the last bytes written to it. The test
// harnesses (mq/mqtest, server/servertest) hold a server's log in one and print it only when a test failed.
package tailbuf

import (
	"bytes"
	"sync"
)

// Buffer keeps the last Max bytes written to it (all of them when Max <= 0). Safe for concurrent use: mu guards b.
type Buffer struct {
	Max int

	mu sync.Mutex
	b  bytes.Buffer
}

// Write appends p, then drops the oldest bytes beyond Max. It never fails.
func (w *Buffer) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.b.Write(p)
	if over := w.b.Len() - w.Max; w.Max > 0 && over > 0 {
		w.b.Next(over)
	}
	return len(p), nil
}

// String returns what the buffer holds.
func (w *Buffer) String() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.b.String()
}
