package simulator

import (
	"fmt"
	"io"
	"os"
	"strings"
	"time"
)

// isTerminal reports whether w is a character device (a terminal), where the progress line is redrawn in place.
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}

// FormatProgress renders one progress line, e.g.
//
//	12:04 lunch      rate 198/s  sent 2345/6000  in flight 8  failed 0  day 39%
func FormatProgress(p Progress, expected int) string {
	meal := p.Meal
	if meal == "" {
		meal = "-"
	}
	return fmt.Sprintf("%s %-9s  rate %4.0f/s  sent %d/%d  in flight %d  failed %d  day %3.0f%%",
		p.Clock, meal, p.Rate, p.Sent, expected, p.InFlight, p.Failed, 100*min(p.Fraction, 1))
}

// startProgress writes the progress line until the returned stop function is called; stop writes a final line.
func (s *Simulator) startProgress() (stop func()) {
	w := s.opts.Progress
	if w == nil {
		return func() {}
	}
	tty := isTerminal(w)
	interval := s.opts.ProgressInterval
	if interval <= 0 {
		interval = 5 * time.Second
		if tty {
			interval = 250 * time.Millisecond
		}
	}
	write := func(final bool) {
		line := FormatProgress(s.Progress(), s.Expected())
		switch {
		case tty && final:
			fmt.Fprintf(w, "\r%s\x1b[K\n", line)
		case tty:
			fmt.Fprintf(w, "\r%s\x1b[K", line)
		default:
			fmt.Fprintln(w, strings.TrimRight(line, " "))
		}
	}
	done := make(chan struct{})
	finished := make(chan struct{})
	t := s.opts.Clock.NewTicker(interval)
	go func() {
		defer close(finished)
		for {
			select {
			case <-t.C():
				write(false)
			case <-done:
				t.Stop()
				return
			}
		}
	}()
	return func() {
		close(done)
		<-finished
		write(true)
	}
}
