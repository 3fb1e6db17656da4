package cli

import (
	"strings"
	"testing"
	"time"
)

// TestProgressLines: nothing within the first interval, then at most a line per interval, with the count, the
// total when known and the rate.
func TestProgressLines(t *testing.T) {
	var out strings.Builder
	clock := time.Unix(1000, 0)
	p := newProgress(&out, "replayed", "dead letters", 50)
	p.now, p.start, p.last = func() time.Time { return clock }, clock, clock
	for i := 1; i <= 50; i++ {
		clock = clock.Add(100 * time.Millisecond) // 10 per second
		p.at(i)
	}
	want := "replayed 20 of 50 dead letters (10/s)\nreplayed 40 of 50 dead letters (10/s)\n"
	if out.String() != want {
		t.Fatalf("progress lines:\n%s\nwant:\n%s", out.String(), want)
	}
	out.Reset()
	q := newProgress(&out, "consumed", "messages", 0)
	q.now, q.start, q.last = func() time.Time { return clock }, clock, clock
	q.at(5)
	clock = clock.Add(3 * time.Second)
	q.at(9000)
	if out.String() != "consumed 9000 messages (3000/s)\n" {
		t.Fatalf("progress without a total: %q", out.String())
	}
}
