package grpcproxy

import (
	"testing"
	"time"

	v2 "github.com/apache/rocketmq-clients/golang/v5/protocol/v2"
)

// Receipt handles and transaction ids come back from clients: any bytes must decode or be refused, never panic,
// and what encodes must decode to itself.
func FuzzDecodeHandle(f *testing.F) {
	f.Add(encodeHandle(qref{"g", "orders", 3}, 42, 7, time.UnixMilli(1700000000000)))
	f.Add(encodeHandle(qref{"g", "%RETRY%g", 0}, 0, 1, time.UnixMilli(0)))
	f.Add("1 0 0 0 0 ")
	f.Add("garbage")
	f.Fuzz(func(t *testing.T, s string) {
		h, ok := decodeHandle("g", s)
		if !ok {
			return
		}
		if again := encodeHandle(h.ref, h.offset, h.gen, h.deadline); again != s {
			if h2, ok := decodeHandle("g", again); !ok || h2 != h {
				t.Fatalf("%q decodes to %+v, which encodes to %q decoding to %+v", s, h, again, h2)
			}
		}
	})
}

func FuzzParseTxID(f *testing.F) {
	f.Add(txID(123456, 7))
	f.Add("")
	f.Add("ZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZ")
	f.Fuzz(func(t *testing.T, s string) {
		pos, off, ok := parseTxID(s)
		if ok && pos >= 0 && off >= 0 {
			if p2, o2, ok2 := parseTxID(txID(pos, off)); !ok2 || p2 != pos || o2 != off {
				t.Fatalf("%q: round trip of (%d, %d) failed", s, pos, off)
			}
		}
	})
}

func FuzzCompileFilter(f *testing.F) {
	f.Add("a || b", false)
	f.Add("*", false)
	f.Add("amount > 10 AND TAGS IN ('a', 'b')", true)
	f.Add("((((", true)
	f.Fuzz(func(t *testing.T, expr string, sql bool) {
		typ := v2.FilterType_TAG
		if sql {
			typ = v2.FilterType_SQL
		}
		_, _ = compileFilter(&v2.FilterExpression{Type: typ, Expression: expr})
	})
}

func TestHandleRoundTrip(t *testing.T) {
	r := qref{"grp", "%RETRY%grp", 0}
	dl := time.UnixMilli(1700000000123)
	h, ok := decodeHandle("grp", encodeHandle(r, 99, 5, dl))
	if !ok || h.ref != r || h.offset != 99 || h.gen != 5 || !h.deadline.Equal(dl) {
		t.Fatalf("round trip: %+v %v", h, ok)
	}
	for _, bad := range []string{"", "2 0 0 0 0 t", "1 x 0 0 0 t", "1 0 0 0 0 "} {
		if _, ok := decodeHandle("grp", bad); ok {
			t.Errorf("%q decoded", bad)
		}
	}
}
