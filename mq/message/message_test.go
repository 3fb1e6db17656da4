package message

import (
	"bytes"
	"net/netip"
	"reflect"
	"testing"
)

func sample() *Message {
	return &Message{QueueID: 2, Flag: 7, QueueOffset: 42, PhysicalOffset: 4096, SysFlag: FlagCompressed,
		BornTimestamp: 1700000000000, BornHost: netip.MustParseAddrPort("10.0.0.1:5555"),
		StoreTimestamp: 1700000000001, StoreHost: netip.MustParseAddrPort("[::1]:10911"), ReconsumeTimes: 3,
		Body: []byte("hello"), Topic: "orders", Properties: FormatProperties(map[string]string{"TAGS": "a", "KEYS": "k1 k2"})}
}

func TestRoundTrip(t *testing.T) {
	m := sample()
	b := m.Append(nil)
	got, n, err := Decode(b)
	if err != nil || n != len(b) {
		t.Fatalf("decode: %v n=%d len=%d", err, n, len(b))
	}
	m.SysFlag = m.normalizedSysFlag()
	if !reflect.DeepEqual(got, m) {
		t.Fatalf("got %+v\nwant %+v", got, m)
	}
	if !bytes.Equal(got.Append(nil), b) {
		t.Fatal("re-encode differs")
	}
	if Property(got.Properties, "KEYS") != "k1 k2" || ParseProperties(got.Properties)["TAGS"] != "a" {
		t.Fatal("properties")
	}
}

func TestTagsHashMatchesJava(t *testing.T) {
	// Values of java.lang.String#hashCode.
	for tag, want := range map[string]int64{"TagA": 2598919, "": 0, "hello world": 1794106052, "é": 233, "😀": 1772899} {
		if got := TagsHash(tag); got != want {
			t.Errorf("%q: %d want %d", tag, got, want)
		}
	}
}

func TestOffsetMsgID(t *testing.T) {
	id := OffsetMsgID(netip.MustParseAddrPort("127.0.0.1:10911"), 1234)
	if id != "7F00000100002A9F00000000000004D2" {
		t.Fatal(id)
	}
	if off, err := ParseOffsetMsgID(id); err != nil || off != 1234 {
		t.Fatal(off, err)
	}
}

func TestBatch(t *testing.T) {
	var b []byte
	b = AppendBatchItem(b, BatchItem{Body: []byte("one"), Properties: "TAGS\x01x\x02"})
	b = AppendBatchItem(b, BatchItem{Flag: 1, Body: []byte("two")})
	items, err := DecodeBatch(b)
	if err != nil || len(items) != 2 || string(items[1].Body) != "two" || items[0].Properties != "TAGS\x01x\x02" {
		t.Fatalf("%v %+v", err, items)
	}
	if _, err := DecodeBatch(b[:len(b)-1]); err == nil {
		t.Fatal("truncated batch accepted")
	}
}

func FuzzDecode(f *testing.F) {
	f.Add(sample().Append(nil))
	f.Add([]byte{0, 0, 0, 8, 0xDA, 0xA3, 0x20, 0xA7})
	f.Fuzz(func(t *testing.T, b []byte) {
		m, n, err := Decode(b)
		if err != nil {
			return
		}
		if n > len(b) {
			t.Fatalf("size %d beyond input %d", n, len(b))
		}
		if m.Validate() == nil && bytes.Equal(b[4:8], []byte{0xDA, 0xA3, 0x20, 0xA7}) {
			// Hosts normalise (v4-in-v6), CRC is recomputed; the decoded form must still round trip.
			again, _, err := Decode(m.Append(nil))
			if err != nil || again.Topic != m.Topic || !bytes.Equal(again.Body, m.Body) || again.Properties != m.Properties {
				t.Fatalf("round trip: %v", err)
			}
		}
	})
}

func FuzzDecodeBatch(f *testing.F) {
	f.Add(AppendBatchItem(nil, BatchItem{Body: []byte("x"), Properties: "A\x01b\x02"}))
	f.Fuzz(func(t *testing.T, b []byte) {
		items, err := DecodeBatch(b)
		if err != nil {
			return
		}
		var re []byte
		for _, it := range items {
			re = AppendBatchItem(re, it)
		}
		if again, err := DecodeBatch(re); err != nil || len(again) != len(items) {
			t.Fatalf("round trip: %v", err)
		}
	})
}
