package cli

import (
	"fmt"
	"io"
	"time"
)

// progressEvery is how often a long operation reports that it is moving.
const progressEvery = 2 * time.Second

// progress writes a line to w (stderr: the data goes to stdout) at most once per interval while a long operation
// counts its work, so a run over many messages shows it is moving and how fast; an operation that ends within the
// first interval prints nothing. now is the clock (tests inject one).
//
//	replayed 1200 of 5000 dead letters (600/s)
//	consumed 48000 messages (24000/s)
type progress struct {
	w     io.Writer
	verb  string // "replayed", "consumed"
	noun  string // plural noun: "messages"
	total int    // 0: unknown
	every time.Duration
	now   func() time.Time
	start time.Time
	last  time.Time
}

func newProgress(w io.Writer, verb, noun string, total int) *progress {
	t := time.Now()
	return &progress{w: w, verb: verb, noun: noun, total: total, every: progressEvery, now: time.Now, start: t, last: t}
}

// at reports that n units are done (a line when an interval has passed since the last one).
func (p *progress) at(n int) {
	t := p.now()
	if t.Sub(p.last) < p.every {
		return
	}
	p.last = t
	rate := ""
	if el := t.Sub(p.start).Seconds(); el > 0 {
		rate = fmt.Sprintf(" (%.0f/s)", float64(n)/el)
	}
	if p.total > 0 {
		fmt.Fprintf(p.w, "%s %d of %d %s%s\n", p.verb, n, p.total, p.noun, rate)
		return
	}
	fmt.Fprintf(p.w, "%s %d %s%s\n", p.verb, n, p.noun, rate)
}
