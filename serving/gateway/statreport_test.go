package gateway

import (
	"math"
	"sync"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/types"
	clocktesting "k8s.io/utils/clock/testing"

	"github.com/tide-run/tide/serving/autoscaler/metrics"
)

type recorded struct {
	mu    sync.Mutex
	stats map[string][]metrics.Stat
}

func (r *recorded) Record(rev string, _ time.Time, s metrics.Stat) {
	r.mu.Lock()
	r.stats[rev] = append(r.stats[rev], s)
	r.mu.Unlock()
}

// Two 500 ms requests in one second are an average concurrency of 1.0 and 2 requests per second.
func TestStatReporterTimeWeighted(t *testing.T) {
	clk := clocktesting.NewFakeClock(time.Unix(1000, 0))
	rec := &recorded{stats: map[string][]metrics.Stat{}}
	s := NewStatReporter(StatReporterOptions{Recorder: rec, Clock: clk})
	rev := types.NamespacedName{Namespace: "default", Name: "svc-00001"}
	s.RequestStart(rev, clk.Now()) // creates the reporter at t=0
	clk.Step(500 * time.Millisecond)
	s.RequestEnd(rev, clk.Now())
	s.RequestStart(rev, clk.Now())
	clk.Step(500 * time.Millisecond)
	s.RequestEnd(rev, clk.Now())
	s.ReportNow()
	got := rec.stats["default/svc-00001"]
	if len(got) != 1 || math.Abs(got[0].AverageConcurrency-1.0) > 1e-9 || math.Abs(got[0].RequestCount-2) > 1e-9 {
		t.Fatalf("stats %+v", got)
	}
}
