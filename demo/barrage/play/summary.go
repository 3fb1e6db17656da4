package play

import (
	"fmt"
	"io"
	"slices"
	"time"
)

// Summary is what one Send through the page did.
type Summary struct {
	Text        string
	Concurrency int
	Duration    time.Duration
	Run         string
	Planned     int
	// Sent comments were stored by the queue; NotSent ones the page could not publish (after its retries), which it
	// reports as failed and which are therefore not lost in the pipeline.
	Sent, NotSent int
	// Processed rows in the table for the run; Duplicates redeliveries the processor recognised.
	Processed, Duplicates int
	// Shown on the page's event stream; DeadLettered comments the processor rejected (recorded, not lost).
	Shown, DeadLettered int
	// Lost = sent but neither shown nor dead-lettered.
	Lost int
	// End-to-end latency: published by the page to delivered on its event stream.
	P50, P99 time.Duration
	// The processor's instances: peak during the run, whether it returned to zero, and how long after the last
	// comment was shown.
	PeakInstances int
	BackToZero    bool
	ZeroAfter     time.Duration
}

// OK reports that comments were sent and none was lost.
func (s Summary) OK() bool { return s.Sent > 0 && s.Lost == 0 }

// WriteText prints the summary.
func (s Summary) WriteText(w io.Writer) error {
	zero := "no (still running at the deadline)"
	if s.BackToZero {
		zero = fmt.Sprintf("yes, %.1fs after the last comment was shown", s.ZeroAfter.Seconds())
	}
	_, err := fmt.Fprintf(w, `barrage demo: %q, concurrency %d, %v (run %s)
  comments sent            %d (of %d; %d could not be published)
  processed (table rows)   %d (%d redeliveries ignored)
  shown on the page        %d
  dead-lettered            %d
  lost                     %d
  end-to-end latency       p50 %v, p99 %v
  processor instances      peak %d
  back to zero             %s
`, s.Text, s.Concurrency, s.Duration, s.Run, s.Sent, s.Planned, s.NotSent, s.Processed, s.Duplicates, s.Shown,
		s.DeadLettered, s.Lost, s.P50.Round(time.Millisecond), s.P99.Round(time.Millisecond), s.PeakInstances, zero)
	return err
}

// percentile is the nearest-rank p-th percentile (0 for none).
func percentile(d []time.Duration, p int) time.Duration {
	if len(d) == 0 {
		return 0
	}
	s := slices.Clone(d)
	slices.Sort(s)
	i := (len(s)*p + 99) / 100
	return s[max(0, min(len(s)-1, i-1))]
}
