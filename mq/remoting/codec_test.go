package remoting

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"reflect"
	"testing"
)

func goClientFrame(header string, body []byte) []byte {
	var b []byte
	b = binary.BigEndian.AppendUint32(b, uint32(4+len(header)+len(body)))
	b = binary.BigEndian.AppendUint32(b, uint32(len(header)))
	b = append(b, header...)
	return append(b, body...)
}

func TestDecodeGoClientJSON(t *testing.T) {
	frame := goClientFrame(`{"code":105,"language":"GO","version":317,"opaque":1,"flag":0,"remark":"","extFields":{"topic":"test"}}`, []byte("xyz"))
	got, err := ReadFrame(bytes.NewReader(frame))
	if err != nil {
		t.Fatal(err)
	}
	c, err := Decode(got)
	if err != nil {
		t.Fatal(err)
	}
	want := &Command{Code: 105, Language: "GO", Version: 317, Opaque: 1, ExtFields: map[string]string{"topic": "test"}, Body: []byte("xyz")}
	if !reflect.DeepEqual(c, want) {
		t.Fatalf("got %+v want %+v", c, want)
	}
}

func TestRoundTripBothHeaders(t *testing.T) {
	c := &Command{Code: 10, Language: "JAVA", Version: 399, Opaque: 77, Flag: FlagResponse, Remark: "é \"q\"\n\x01",
		ExtFields: map[string]string{"a": "1", "properties": "TAGS\x01x\x02"}, Body: []byte{0, 1, 2}}
	for _, typ := range []byte{SerializeJSON, SerializeRocketMQ} {
		frame := c.AppendFrame(nil, typ)
		f, err := ReadFrame(bytes.NewReader(frame))
		if err != nil {
			t.Fatal(err)
		}
		got, err := Decode(f)
		if err != nil {
			t.Fatalf("type %d: %v", typ, err)
		}
		if !reflect.DeepEqual(got, c) {
			t.Fatalf("type %d: got %+v want %+v", typ, got, c)
		}
	}
}

func TestRejects(t *testing.T) {
	big := binary.BigEndian.AppendUint32(nil, MaxFrameSize+1)
	if _, err := ReadFrame(bytes.NewReader(big)); !errors.Is(err, ErrFrameTooLarge) {
		t.Fatalf("oversize: %v", err)
	}
	for name, frame := range map[string][]byte{
		"short":          {0, 0},
		"header too big": {0, 0, 0, 9, 1},
		"bad type":       {7, 0, 0, 0},
		"bad json":       append([]byte{0, 0, 0, 1}, '{'),
		"ext number":     append([]byte{0, 0, 0, 30}, `{"opaque":3,"extFields":{"a":1}}`[:30]...),
		"binary short":   {1, 0, 0, 3, 0, 1, 2},
	} {
		if _, err := Decode(frame); !errors.Is(err, ErrMalformed) {
			t.Errorf("%s: err %v", name, err)
		}
	}
	bad := []byte(`{"opaque":3,"extFields":{"a":1}}`)
	frame := binary.BigEndian.AppendUint32(nil, uint32(len(bad)))
	frame = append(frame, bad...)
	if _, err := Decode(frame); err == nil {
		t.Fatal("wrong ext type accepted")
	}
	if op, _, ok := PeekOpaque(frame); !ok || op != 3 {
		t.Fatalf("peek opaque %d %v", op, ok)
	}
}

// FuzzDecode: no input panics the decoder, and whatever decodes re-encodes (both header kinds) to an equal command.
func FuzzDecode(f *testing.F) {
	f.Add(goClientFrame(`{"code":105,"language":"GO","version":317,"opaque":1,"flag":0,"remark":"","extFields":{"topic":"test"}}`, nil)[4:])
	c := &Command{Code: 11, Opaque: 5, ExtFields: map[string]string{"queueId": "1"}, Body: []byte("b")}
	f.Add(c.AppendFrame(nil, SerializeRocketMQ)[4:])
	f.Add(c.AppendFrame(nil, SerializeJSON)[4:])
	f.Add([]byte{1, 0, 0, 0})
	f.Fuzz(func(t *testing.T, frame []byte) {
		cmd, err := Decode(frame)
		PeekOpaque(frame)
		if err != nil {
			return
		}
		for _, typ := range []byte{SerializeJSON, SerializeRocketMQ} {
			enc := cmd.AppendFrame(nil, typ)
			again, err := Decode(enc[4:])
			if err != nil {
				t.Fatalf("re-decode type %d: %v", typ, err)
			}
			if again.Code != cmd.Code || again.Opaque != cmd.Opaque || again.Flag != cmd.Flag || !bytes.Equal(again.Body, cmd.Body) || len(again.ExtFields) != len(cmd.ExtFields) {
				t.Fatalf("type %d: round trip changed %+v -> %+v", typ, cmd, again)
			}
		}
	})
}

// FuzzFastJSONAgrees: whenever the fast header decoder accepts input, encoding/json accepts it too and both agree.
func FuzzFastJSONAgrees(f *testing.F) {
	f.Add([]byte(`{"code":105,"language":"GO","version":317,"opaque":1,"flag":0,"remark":"","extFields":{"topic":"test"}}`))
	f.Add([]byte(`{"code":1,"remark":null,"extFields":{"a\u00e9\n":"\ud83d\ude00"},"serializeTypeCurrentRPC":"JSON"}`))
	f.Add([]byte(`{ "opaque" : -5 , "extFields" : { } }`))
	f.Fuzz(func(t *testing.T, b []byte) {
		fast, ok := fastDecodeJSONHeader(b)
		if !ok {
			return
		}
		var h jsonHeader
		if err := json.Unmarshal(b, &h); err != nil {
			t.Fatalf("fast path accepted what encoding/json rejects: %v", err)
		}
		if fast.Code != h.Code || fast.Opaque != h.Opaque || fast.Flag != h.Flag || fast.Version != h.Version || len(fast.ExtFields) != len(h.ExtFields) {
			t.Fatalf("decoders disagree: %+v vs %+v", fast, h)
		}
		for k, v := range h.ExtFields {
			if fast.ExtFields[k] != v {
				t.Fatalf("ext %q: %q vs %q", k, fast.ExtFields[k], v)
			}
		}
		if h.Remark != nil && *h.Remark != fast.Remark {
			t.Fatalf("remark %q vs %q", fast.Remark, *h.Remark)
		}
	})
}
