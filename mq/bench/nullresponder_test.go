package bench

import (
	"go/parser"
	"go/token"
	"strconv"
	"strings"
	"testing"
)

// TestNullResponderIsIndependentOfTide: the ceiling peer's server must not reuse tide's broker code (remoting
// codec, name server, broker handlers), or "tide reaches N% of the official client's ceiling" would be measured
// partly against tide itself.
func TestNullResponderIsIndependentOfTide(t *testing.T) {
	for _, name := range []string{"nullresponder.go", "nullpeer.go"} {
		f, err := parser.ParseFile(token.NewFileSet(), name, nil, parser.ImportsOnly)
		if err != nil {
			t.Fatal(err)
		}
		for _, imp := range f.Imports {
			if p, _ := strconv.Unquote(imp.Path.Value); strings.HasPrefix(p, "github.com/tide-run/tide") {
				t.Errorf("%s imports %s", name, p)
			}
		}
	}
}

// TestNullResponderFrames: JSON and RocketMQ-binary request headers are both answered with the request's opaque;
// one-way requests and responses are not answered.
func TestNullResponderFrames(t *testing.T) {
	r := &nullResponder{addr: "127.0.0.1:1"}
	jsonFrame := func(header string) []byte {
		b := []byte{0, 0, 0, byte(len(header))}
		return append(b, header...)
	}
	out, err := r.answer(nil, jsonFrame(`{"code":310,"language":"GO","version":317,"opaque":42,"flag":0,"extFields":{"a":"1"}}`))
	if err != nil || !strings.Contains(string(out), `"opaque":42,`) || !strings.Contains(string(out), `"queueOffset":"1"`) {
		t.Fatalf("send: %q %v", out, err)
	}
	if out, err := r.answer(nil, jsonFrame(`{"code":34,"opaque":7,"flag":2}`)); err != nil || len(out) != 0 {
		t.Fatalf("one-way answered: %q %v", out, err)
	}
	// Binary header: code 105, language, version, opaque 9, flag 0.
	bin := []byte{1, 0, 0, 13, 0, 105, 0, 0, 1, 0, 0, 0, 9, 0, 0, 0, 0}
	out, err = r.answer(nil, bin)
	if err != nil || !strings.Contains(string(out), `"opaque":9,`) || !strings.Contains(string(out), `"brokerAddrs":{"0":"127.0.0.1:1"}`) {
		t.Fatalf("route: %q %v", out, err)
	}
	if _, err := r.answer(nil, jsonFrame(`{"language":"GO"}`)); err == nil {
		t.Fatal("a header without code answered")
	}
}
