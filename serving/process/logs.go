package process

import (
	"bytes"
	"os"
	"sync"
	"time"
)

// Stream names which output a log line came from.
type Stream string

const (
	Stdout Stream = "stdout"
	Stderr Stream = "stderr"
)

// LogLine is one line an instance printed.
type LogLine struct {
	Time     time.Time `json:"time"`
	Instance string    `json:"instance"`
	Stream   Stream    `json:"stream"`
	Text     string    `json:"text"`
}

// maxLineBytes bounds a line kept in memory; longer output is split, so a program printing without newlines cannot
// grow tide's memory.
const maxLineBytes = 16 << 10

// logRing keeps the last lines of every instance of a pool and fans new lines out to followers (`tide logs -f`).
type logRing struct {
	mu        sync.Mutex // guards everything below
	lines     []LogLine  // ring of cap(lines) entries
	next      int        // index the next line is written to
	full      bool       // the ring has wrapped
	followers map[int]func(LogLine)
	nextID    int
}

func newLogRing(n int) *logRing {
	return &logRing{lines: make([]LogLine, n), followers: map[int]func(LogLine){}}
}

func (r *logRing) add(l LogLine) {
	r.mu.Lock()
	r.lines[r.next] = l
	r.next++
	if r.next == len(r.lines) {
		r.next, r.full = 0, true
	}
	fs := make([]func(LogLine), 0, len(r.followers))
	for _, f := range r.followers {
		fs = append(fs, f)
	}
	r.mu.Unlock()
	for _, f := range fs {
		f(l)
	}
}

// tail returns up to n of the newest lines, oldest first; instance filters when not empty.
func (r *logRing) tail(n int, instance string) []LogLine {
	r.mu.Lock()
	defer r.mu.Unlock()
	var all []LogLine
	if r.full {
		all = append(all, r.lines[r.next:]...)
	}
	all = append(all, r.lines[:r.next]...)
	out := make([]LogLine, 0, n)
	for i := len(all) - 1; i >= 0 && len(out) < n; i-- {
		if instance == "" || all[i].Instance == instance {
			out = append(out, all[i])
		}
	}
	for i, j := 0, len(out)-1; i < j; i, j = i+1, j-1 {
		out[i], out[j] = out[j], out[i]
	}
	return out
}

func (r *logRing) follow(f func(LogLine)) (cancel func()) {
	r.mu.Lock()
	id := r.nextID
	r.nextID++
	r.followers[id] = f
	r.mu.Unlock()
	return func() {
		r.mu.Lock()
		delete(r.followers, id)
		r.mu.Unlock()
	}
}

// lineWriter splits one stream of one instance into lines for the ring and copies raw bytes to the instance's log
// file. os/exec calls Write from a single goroutine per stream, but the mutex keeps flush safe against it.
type lineWriter struct {
	mu       sync.Mutex // guards buf and file
	ring     *logRing
	file     *os.File // may be nil (no data dir)
	instance string
	stream   Stream
	now      func() time.Time
	buf      []byte
}

func (w *lineWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.file != nil {
		_, _ = w.file.Write(p) // a full disk must not stop the program; the ring still has the lines
	}
	w.buf = append(w.buf, p...)
	for {
		i := bytes.IndexByte(w.buf, '\n')
		if i < 0 {
			if len(w.buf) >= maxLineBytes {
				w.emit(w.buf[:maxLineBytes])
				w.buf = append(w.buf[:0], w.buf[maxLineBytes:]...)
				continue
			}
			break
		}
		w.emit(bytes.TrimSuffix(w.buf[:i], []byte("\r")))
		w.buf = w.buf[i+1:]
	}
	if len(w.buf) == 0 {
		w.buf = nil
	}
	return len(p), nil
}

// flush emits a trailing partial line, once the process has exited.
func (w *lineWriter) flush() {
	w.mu.Lock()
	defer w.mu.Unlock()
	if len(w.buf) > 0 {
		w.emit(w.buf)
		w.buf = nil
	}
}

func (w *lineWriter) emit(b []byte) {
	w.ring.add(LogLine{Time: w.now(), Instance: w.instance, Stream: w.stream, Text: string(b)})
}
