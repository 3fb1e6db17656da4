package fooddelivery

import (
	"bytes"
	"encoding/xml"
	"fmt"
	"io"
	"math"
	"os"
	"strings"
	"testing"
	"time"
)

var t0 = time.Unix(1_700_000_000, 0)

func at(sec float64) time.Time { return t0.Add(time.Duration(sec * float64(time.Second))) }

func TestSummarizeAccountsForEveryOrder(t *testing.T) {
	in := SummaryInput{
		Sent: []SentOrder{
			{OrderID: "a", SentAt: at(1)}, {OrderID: "b", SentAt: at(2)}, {OrderID: "c", SentAt: at(3)},
			{OrderID: "m", SentAt: at(4), Malformed: true}, {OrderID: "lost", SentAt: at(5)},
			{OrderID: "v", SentAt: at(6)},
		},
		SendFailed: 2,
		Orders: []StoredOrder{
			{OrderID: "a", Born: at(1), Stored: at(1.010)},
			{OrderID: "b", Born: at(2), Stored: at(2.020), Duplicates: 2},
			{OrderID: "c", Stored: at(3.5)}, // no event time: latency from the send time
			{OrderID: "other-run", Born: at(0), Stored: at(0.5)},
		},
		DeadLetters: []DeadLetter{{EventID: "x", OrderID: "m"}, {EventID: "y", OrderID: "v"}, {EventID: "z"}},
		Instances:   []Sample{{at(0), 0}, {at(1), 1}, {at(2), 3}, {at(3), 2}, {at(10), 0}},
	}
	s := Summarize(in)
	want := Summary{Sent: 6, SendFailed: 2, Processed: 3, Duplicates: 2, DeadLettered: 2, Lost: 1,
		LostIDs: []string{"lost"}, ValidDeadLettered: 1}
	if s.Sent != want.Sent || s.Processed != want.Processed || s.Duplicates != want.Duplicates ||
		s.DeadLettered != want.DeadLettered || s.Lost != want.Lost || s.LostIDs[0] != "lost" ||
		s.ValidDeadLettered != 1 || s.MalformedStored != 0 || s.SendFailed != 2 {
		t.Fatalf("summary %+v", s)
	}
	if s.Processed+s.DeadLettered+s.Lost != s.Sent {
		t.Fatal("every sent order must be exactly one of processed, dead-lettered, lost")
	}
	if s.OK() {
		t.Fatal("a lost order must make the summary not OK")
	}
	// Latencies 10 ms, 20 ms, 500 ms: p50 is 20 ms, p99 500 ms.
	if s.LatencySamples != 3 || s.LatencyP50 != 20*time.Millisecond || s.LatencyP99 != 500*time.Millisecond {
		t.Fatalf("latency p50 %v p99 %v (%d)", s.LatencyP50, s.LatencyP99, s.LatencySamples)
	}
	if s.PeakInstances != 3 || !s.ScaledToZero || s.ScaleToZero != 6500*time.Millisecond {
		t.Fatalf("peak %d, scale to zero %v %v", s.PeakInstances, s.ScaledToZero, s.ScaleToZero)
	}
	var buf bytes.Buffer
	if err := s.WriteText(&buf); err != nil {
		t.Fatal(err)
	}
	for _, line := range []string{"orders sent", "processed", "duplicates ignored", "dead-lettered", "lost",
		"e.g. lost", "p50 20ms", "p99 500ms", "peak instances", "scale to zero after last peak  6.5 s"} {
		if !strings.Contains(buf.String(), line) {
			t.Errorf("summary text lacks %q:\n%s", line, buf.String())
		}
	}
}

func TestSummarizeWithoutZero(t *testing.T) {
	s := Summarize(SummaryInput{
		Sent:      []SentOrder{{OrderID: "a", SentAt: at(1)}},
		Orders:    []StoredOrder{{OrderID: "a", Born: at(1), Stored: at(2)}},
		Instances: []Sample{{at(0), 0}, {at(1), 1}},
	})
	if s.ScaledToZero || !s.OK() {
		t.Fatalf("scaled to zero without a zero sample: %+v", s)
	}
	var buf bytes.Buffer
	s.WriteText(&buf)
	if !strings.Contains(buf.String(), "not observed") {
		t.Fatalf("summary:\n%s", buf.String())
	}
}

// syntheticDay plays a 3-minute default day: orders at the schedule's rate, an autoscaler that follows demand
// (80 ms per order, 2.8 in flight per instance) after a 2 s delay, and scales to zero 12 s after the load stops.
func syntheticDay() (SummaryInput, time.Time) {
	sched := Schedule{Day: DefaultDay(), DayLength: 3 * time.Minute, PeakRate: 200}
	in := SummaryInput{Schedule: &sched, Start: t0}
	n := 0
	for ms := 0; ms < 180_000; ms += 10 {
		due := sched.Due(time.Duration(ms) * time.Millisecond)
		for ; n < due; n++ {
			sent := at(float64(ms) / 1000)
			id := fmt.Sprint("o", n)
			in.Sent = append(in.Sent, SentOrder{OrderID: id, SentAt: sent})
			in.Orders = append(in.Orders, StoredOrder{OrderID: id, Born: sent,
				Stored: sent.Add(time.Duration(90+n%40) * time.Millisecond)})
		}
	}
	last := -1.0
	lastBusy := -100.0
	for sec := 0; sec <= 195; sec++ {
		rate := sched.Rate(time.Duration(math.Max(float64(sec)-2, 0)) * time.Second)
		want := math.Ceil(rate * 0.09 / 2.8)
		if want > 0 {
			lastBusy = float64(sec)
		} else if float64(sec)-lastBusy < 12 {
			want = math.Max(last, 1) // stable window + grace before scaling to zero
			if last <= 0 {
				want = 0
			}
		}
		if want != last {
			in.Instances = append(in.Instances, Sample{At: at(float64(sec)), Value: want})
			last = want
		}
	}
	return in, at(195)
}

func TestSummarizeMealsOfADay(t *testing.T) {
	in, _ := syntheticDay()
	s := Summarize(in)
	if s.Lost != 0 || s.Processed != 6000 || !s.OK() {
		t.Fatalf("summary %+v", s)
	}
	if len(s.Meals) != 3 {
		t.Fatalf("meals %+v", s.Meals)
	}
	for i, name := range []string{"breakfast", "lunch", "dinner"} {
		m := s.Meals[i]
		if m.Name != name || m.Sent == 0 || m.PeakInstances < 2 || !m.ValleyZero {
			t.Errorf("%s: %+v, want orders, a rise to several instances and zero afterwards", name, m)
		}
	}
	if s.Meals[1].PeakInstances != s.PeakInstances || s.PeakInstances != 7 {
		t.Errorf("lunch peak %d, overall %d, want 7", s.Meals[1].PeakInstances, s.PeakInstances)
	}
	if !s.ScaledToZero || s.ScaleToZero < 10*time.Second || s.ScaleToZero > 16*time.Second {
		t.Errorf("scale to zero after last peak = %v (%v)", s.ScaleToZero, s.ScaledToZero)
	}
}

func TestRateSeries(t *testing.T) {
	pts := RateSeries([]time.Time{at(0), at(0.5), at(1.2), at(3.9), at(4), at(-1)}, t0, at(4), 2*time.Second)
	if len(pts) != 2 || pts[0].Value != 1.5 || pts[1].Value != 0.5 || !pts[1].At.Equal(at(2)) {
		t.Fatalf("series %+v", pts)
	}
	if RateSeries(nil, t0, t0, time.Second) != nil {
		t.Fatal("empty range must give no points")
	}
}

// wellFormed parses the SVG as XML and counts elements by name.
func wellFormed(t *testing.T, svg []byte) map[string]int {
	t.Helper()
	counts := map[string]int{}
	dec := xml.NewDecoder(bytes.NewReader(svg))
	for {
		tok, err := dec.Token()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatalf("SVG is not well-formed XML: %v", err)
		}
		if se, ok := tok.(xml.StartElement); ok {
			counts[se.Name.Local]++
		}
	}
	return counts
}

func TestEffectChartRenders(t *testing.T) {
	in, end := syntheticDay()
	c := EffectChart("food-delivery <synthetic day>: order-service instances vs orders", in, end)
	var buf bytes.Buffer
	if err := c.WriteSVG(&buf); err != nil {
		t.Fatal(err)
	}
	svg := buf.Bytes()
	els := wellFormed(t, svg)
	if els["svg"] != 1 || els["path"] != 1 || els["polyline"] != 2 || els["polygon"] != 1 {
		t.Fatalf("elements %v", els)
	}
	for _, want := range []string{"breakfast 08:00", "lunch 12:00", "dinner 18:30", "instances", "orders / s", "orders sent / s",
		"orders stored / s", "&lt;synthetic day&gt;", "seconds since start"} {
		if !bytes.Contains(svg, []byte(want)) {
			t.Errorf("chart lacks %q", want)
		}
	}
	// The instance step line reaches the top tick region at lunch and the baseline in the valleys: its path visits
	// both y = baseline (0 instances) and the 7-instance level.
	path := string(svg[bytes.Index(svg, []byte("<path d=\"")):])
	path = path[:strings.Index(path, "\"/>")]
	if !strings.Contains(path, fmt.Sprintf("V%.1f", float64(440-marginBottom))) {
		t.Errorf("instance line never returns to 0: %s", path)
	}
	if p := os.Getenv("FOOD_CHART_OUT"); p != "" { // to look at it: FOOD_CHART_OUT=/tmp/chart.svg go test -run EffectChart
		if err := os.WriteFile(p, svg, 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

func TestEmptyChartStillRenders(t *testing.T) {
	var buf bytes.Buffer
	if err := (Chart{Title: "nothing yet"}).WriteSVG(&buf); err != nil {
		t.Fatal(err)
	}
	if els := wellFormed(t, buf.Bytes()); els["svg"] != 1 || els["path"] != 0 {
		t.Fatalf("elements %v", els)
	}
}

func TestNiceStep(t *testing.T) {
	for _, c := range []struct {
		span float64
		max  int
		want float64
	}{{7, 6, 2}, {200, 6, 50}, {180, 10, 20}, {1, 6, 0.2}, {0, 6, 1}, {13, 6, 5}} {
		if got := niceStep(c.span, c.max); math.Abs(got-c.want) > 1e-9 {
			t.Errorf("niceStep(%v, %d) = %v, want %v", c.span, c.max, got, c.want)
		}
	}
}
