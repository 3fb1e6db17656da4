package grpcproxy

import (
	"testing"
	"time"
)

// renewPass follows Apache's renewal rules for each kind of delivery.
func TestRenewPass(t *testing.T) {
	t0 := time.Date(2026, 12, 7, 22, 0, 0, 0, time.UTC)
	fl := func(deadline time.Time, client string, since time.Time, times int) *flight {
		return &flight{deadline: deadline, gen: 7, renew: renewal{client: client, since: since, times: times}}
	}
	q := &popQueue{inflight: map[int64]*flight{
		0: fl(t0.Add(5*time.Second), "live", t0, 0),                   // due: renewed by 1 min
		1: fl(t0.Add(30*time.Second), "live", t0, 0),                  // not due yet
		2: fl(t0.Add(5*time.Second), "live", t0.Add(-3*time.Hour), 9), // renewed for 3 h: left to lapse
		3: fl(t0.Add(50*time.Second), "gone", t0, 0),                  // its consumer left: visible in 1 s
		4: fl(t0.Add(5*time.Second), "", time.Time{}, 0),              // a simple consumer's: never renewed
		5: fl(t0.Add(5*time.Second), "live", t0, 2),                   // third renewal: 5 min
		6: fl(t0.Add(5*time.Second), "live", t0, 40),                  // past the last step: 1 h
	}}
	p := &popState{qs: map[qref]*popQueue{{"g", "t", 0}: q}}
	woke := p.renewPass(t0, func(c string) bool { return c == "live" })
	want := map[int64]struct {
		deadline time.Time
		renewed  bool
		times    int
	}{
		0: {t0.Add(time.Minute), true, 1},
		1: {t0.Add(30 * time.Second), true, 0},
		2: {t0.Add(5 * time.Second), false, 0},
		3: {t0.Add(time.Second), false, 0},
		4: {t0.Add(5 * time.Second), false, 0},
		5: {t0.Add(5 * time.Minute), true, 3},
		6: {t0.Add(time.Hour), true, 41},
	}
	for off, w := range want {
		f := q.inflight[off]
		if !f.deadline.Equal(w.deadline) || (f.renew.client != "") != w.renewed || f.renew.times != w.times || f.gen != 7 {
			t.Errorf("delivery %d: deadline %v renewed %v times %d gen %d; want %v %v %d (handle kept)", off, f.deadline.Sub(t0),
				f.renew.client != "", f.renew.times, f.gen, w.deadline.Sub(t0), w.renewed, w.times)
		}
	}
	if !woke["t"] || len(woke) != 1 {
		t.Errorf("woke %v, want the topic of the departed consumer's delivery", woke)
	}
}
