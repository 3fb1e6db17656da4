package tracerecord

import (
	"strings"
	"testing"
	"time"

	"github.com/tide-run/tide/mq/msgtrace"
)

// The records read back with mq/msgtrace (what `tide mq trace` uses) field for field, the clients' fields at the
// positions Java's decoder reads them, and a value with the separators in it cannot break the layout.
func TestRecordsRoundTrip(t *testing.T) {
	c := Consume{Group: "g", RequestID: "r1", MsgID: "ID1", Keys: []string{"order-1", "k\x012"}, RetryTimes: 2}
	start := time.UnixMilli(1_700_000_000_000)
	ext := Ext{TraceID: "4bf92f3577b34da6a3ce929d0e0e4736", Event: "ev\x02il", Sink: "http://s/"}
	before := c.BeforeRecord(start, ext)
	after := c.AfterRecord(start.Add(40*time.Millisecond), 40*time.Millisecond, false, CodeFailed,
		Ext{TraceID: ext.TraceID, Event: "e", Outcome: "Failed", Status: 503, Attempts: 3, Delivery: 39 * time.Millisecond, Then: ThenDLQ})
	recs, skipped := msgtrace.Parse([]byte(before + after))
	if skipped != 0 || len(recs) != 2 {
		t.Fatalf("parsed %d records, %d skipped: %+v", len(recs), skipped, recs)
	}
	b, a := recs[0], recs[1]
	if b.Type != "SubBefore" || b.Timestamp != start.UnixMilli() || b.Group != "g" || b.RequestID != "r1" || b.MsgID != "ID1" ||
		b.RetryTimes != 2 || b.Keys != "order-1 k 2" || b.ClientHost != "" || b.TraceID != ext.TraceID || b.Event != "ev il" || b.Sink != "http://s/" {
		t.Errorf("SubBefore %+v", b)
	}
	if a.Type != "SubAfter" || a.RequestID != "r1" || a.MsgID != "ID1" || a.CostMS != 40 || a.Success || a.ContextCode != CodeFailed ||
		a.Timestamp != start.UnixMilli()+40 || a.Group != "g" || a.Outcome != "Failed" || a.Status != 503 || a.Attempts != 3 || a.DeliveryMS != 39 || a.Then != "dlq" {
		t.Errorf("SubAfter %+v", a)
	}
	// Java's TraceDataEncoder positions: SubBefore keys at 7, SubAfter context code at 6 and timestamp at 7.
	if f := strings.Split(strings.TrimSuffix(after, "\x02"), "\x01"); f[6] != "4" || f[7] != "1700000000040" {
		t.Errorf("SubAfter fields %q", f)
	}
	if got := (Consume{MsgID: "x"}).BeforeRecord(start, Ext{}); !strings.Contains(got, "\x01null\x01") {
		t.Errorf("no keys must be written as null, as the clients do: %q", got)
	}
}

func TestTraceIDFromTraceparent(t *testing.T) {
	for tp, want := range map[string]string{
		"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01": "4bf92f3577b34da6a3ce929d0e0e4736",
		"00-00000000000000000000000000000000-00f067aa0ba902b7-01": "",
		"00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01": "",
		"garbage": "",
		"":        "",
	} {
		if got := TraceIDFromTraceparent(tp); got != want {
			t.Errorf("%q: %q, want %q", tp, got, want)
		}
	}
}
