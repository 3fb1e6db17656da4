package msgtrace

import (
	"strings"
	"testing"
)

func rec(fields ...string) string { return strings.Join(fields, "\x01") + "\x02" }

// Bodies as the clients write them: Java's TraceDataEncoder (Pub with offsetMsgId, SubAfter with time and group)
// and the Go client v2.1.2 (Pub and SubBefore with a client host, "null" keys).
var (
	javaPub      = rec("Pub", "1700000000000", "DefaultRegion", "pg", "orders", "ID1", "created", "o-1 o-2", "127.0.0.1:10911", "12", "3", "0", "OFF1", "true")
	goPub        = rec("Pub", "1700000000001", "DefaultRegion", "pg", "orders", "ID2", "", "", "127.0.0.1:10911", "5", "1", "0", "OFF2", "true", "10.0.0.1")
	goSubBefore  = rec("SubBefore", "1700000000100", "DefaultRegion", "cg", "REQ1", "ID1", "0", "o-1 o-2", "10.0.0.2")
	javaSubAfter = rec("SubAfter", "REQ1", "ID1", "7", "false", "o-1 o-2", "4", "1700000000107", "cg")
	oldSubAfter  = rec("SubAfter", "REQ2", "ID1", "2", "true", "null")
	javaSubBef2  = rec("SubBefore", "1700000001000", "DefaultRegion", "cg", "REQ2", "ID1", "1", "o-1 o-2")
	otherGroup   = rec("SubBefore", "1700000000050", "DefaultRegion", "audit", "REQ3", "ID1", "0", "null")
	endTx        = rec("EndTransaction", "1700000000002", "DefaultRegion", "pg", "orders", "ID1", "", "", "127.0.0.1:10911", "1", "TX1", "COMMIT_MESSAGE", "false")
)

func TestParse(t *testing.T) {
	body := javaPub + goPub + goSubBefore + javaSubAfter + oldSubAfter + endTx + rec("Pub", "x") + rec("Unknown", "1") + "\n"
	recs, skipped := Parse([]byte(body))
	if skipped != 2 || len(recs) != 6 {
		t.Fatalf("%d records, %d skipped", len(recs), skipped)
	}
	p := recs[0]
	if p.Type != Pub || p.Timestamp != 1700000000000 || p.Group != "pg" || p.Topic != "orders" || p.MsgID != "ID1" ||
		p.Tags != "created" || p.Keys != "o-1 o-2" || p.StoreHost != "127.0.0.1:10911" || p.BodyLength != 12 ||
		p.CostMS != 3 || p.OffsetMsgID != "OFF1" || !p.Success {
		t.Fatalf("java Pub: %+v", p)
	}
	if g := recs[1]; g.ClientHost != "10.0.0.1" || g.OffsetMsgID != "OFF2" {
		t.Fatalf("go Pub: %+v", g)
	}
	if s := recs[2]; s.Type != SubBefore || s.RequestID != "REQ1" || s.ClientHost != "10.0.0.2" || s.Group != "cg" {
		t.Fatalf("go SubBefore: %+v", s)
	}
	if a := recs[3]; a.Success || a.CostMS != 7 || a.ContextCode != 4 || a.Timestamp != 1700000000107 || a.Group != "cg" {
		t.Fatalf("java SubAfter: %+v", a)
	}
	if a := recs[4]; a.Keys != "" || a.Group != "" || !a.Success {
		t.Fatalf("old SubAfter: %+v", a)
	}
	if e := recs[5]; e.TransactionID != "TX1" || e.TransactionState != "COMMIT_MESSAGE" || e.MsgType != 1 {
		t.Fatalf("EndTransaction: %+v", e)
	}
}

func TestBuild(t *testing.T) {
	recs, _ := Parse([]byte(javaPub + goPub + goSubBefore + javaSubAfter + javaSubBef2 + oldSubAfter + otherGroup))
	if ids := MsgIDs(recs, "o-2"); len(ids) != 1 || ids[0] != "ID1" {
		t.Fatalf("by key: %v", ids)
	}
	tl := Build("ID1", recs)
	if len(tl.Published) != 1 || tl.Published[0].OffsetMsgID != "OFF1" {
		t.Fatalf("published %+v", tl.Published)
	}
	if len(tl.Groups) != 2 || tl.Groups[0].Group != "audit" || tl.Groups[1].Group != "cg" {
		t.Fatalf("groups %+v", tl.Groups)
	}
	cg := tl.Groups[1].Attempts
	if len(cg) != 2 || cg[0].Success || cg[0].Result != "FAILED" || cg[0].End != 1700000000107 ||
		!cg[1].Success || cg[1].RetryTimes != 1 || !cg[1].Done || cg[1].Result != "SUCCESS" {
		t.Fatalf("cg attempts %+v", cg)
	}
	if a := tl.Groups[0].Attempts[0]; a.Done {
		t.Fatalf("audit has no SubAfter yet: %+v", a)
	}
}

// FuzzParse: any body parses without panicking, yields at most maxRecords records, and each record is whole
// (a type and, for the types that have one, the message id field came from the input).
func FuzzParse(f *testing.F) {
	f.Add([]byte(javaPub + goSubBefore + javaSubAfter + endTx))
	f.Add([]byte(goPub + oldSubAfter + rec("Recall", "1", "r", "g", "t", "ID", "true")))
	f.Add([]byte("\x02\x01\x02Pub\x01"))
	f.Fuzz(func(t *testing.T, body []byte) {
		recs, skipped := Parse(body)
		if len(recs) > maxRecords || skipped < 0 {
			t.Fatalf("%d records", len(recs))
		}
		for _, r := range recs {
			switch r.Type {
			case Pub, SubBefore, SubAfter, EndTransaction, Recall:
			default:
				t.Fatalf("record of type %q", r.Type)
			}
			if !strings.Contains(string(body), r.MsgID) {
				t.Fatalf("message id %q not from the input", r.MsgID)
			}
		}
		_ = Build("ID1", recs)
	})
}

// tide's extension fields after the clients' own are read into the record and the attempt; a Go client's SubBefore
// (client host at 8) and records from a newer tide with unknown extension names still parse.
func TestExtensionFields(t *testing.T) {
	body := "SubBefore\x011000\x01DefaultRegion\x01g\x01r1\x01ID1\x010\x01k1\x01\x01tide.traceId=abc\x01tide.event=E1\x01tide.future=x\x02" +
		"SubAfter\x01r1\x01ID1\x015\x01true\x01k1\x010\x011005\x01g\x01tide.outcome=Delivered\x01tide.status=200\x01tide.attempts=2\x01tide.deliveryMs=4\x01tide.sink=http://s/\x02" +
		"SubBefore\x012000\x01DefaultRegion\x01g2\x01r2\x01ID1\x010\x01k1\x0110.0.0.1\x02"
	recs, skipped := Parse([]byte(body))
	if skipped != 0 || len(recs) != 3 {
		t.Fatalf("%d records, %d skipped", len(recs), skipped)
	}
	if recs[0].ClientHost != "" || recs[0].TraceID != "abc" || recs[0].Event != "E1" || recs[2].ClientHost != "10.0.0.1" {
		t.Errorf("SubBefore records %+v", recs)
	}
	tl := Build("ID1", recs)
	a := tl.Groups[0].Attempts[0]
	if a.TraceID != "abc" || a.Event != "E1" || a.Outcome != "Delivered" || a.Status != 200 || a.Attempts != 2 || a.DeliveryMS != 4 || a.Sink != "http://s/" {
		t.Errorf("attempt %+v", a)
	}
	if got := tl.TraceIDs(); len(got) != 1 || got[0] != "abc" {
		t.Errorf("TraceIDs %v", got)
	}
	if got := tl.Events(); len(got) != 1 || got[0] != "E1" {
		t.Errorf("Events %v", got)
	}
}

// The Java client's SubAfter has 8 fields (the timestamp at 7, no group): the time is read, the group comes from
// the SubBefore with the same request id.
func TestJavaSubAfter(t *testing.T) {
	body := "SubBefore\x011000\x01DefaultRegion\x01jc\x01req\x01ID\x010\x01k\x02" +
		"SubAfter\x01req\x01ID\x013\x01true\x01k\x010\x011003\x02"
	recs, skipped := Parse([]byte(body))
	if skipped != 0 || len(recs) != 2 || recs[1].Timestamp != 1003 || recs[1].Group != "" {
		t.Fatalf("%+v, %d skipped", recs, skipped)
	}
	g := Build("ID", recs).Groups
	if len(g) != 1 || g[0].Group != "jc" || len(g[0].Attempts) != 1 || g[0].Attempts[0].End != 1003 || !g[0].Attempts[0].Success {
		t.Fatalf("groups %+v", g)
	}
}
