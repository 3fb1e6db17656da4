package admin

import (
	"encoding/json"
	"maps"
	"reflect"
	"regexp"
	"slices"
	"testing"
)

func TestParseMastersJavaAndTide(t *testing.T) {
	for name, body := range map[string]string{
		// fastjson, as an Apache RocketMQ name server writes it: integer map keys are bare.
		"java": `{"brokerAddrTable":{"broker-b":{"brokerAddrs":{0:"10.0.0.2:10911",1:"10.0.0.3:10911"},"brokerName":"broker-b","cluster":"DefaultCluster"},` +
			`"broker-a":{"brokerAddrs":{0:"10.0.0.1:10911"},"brokerName":"broker-a","cluster":"DefaultCluster"},` +
			`"slave-only":{"brokerAddrs":{1:"10.0.0.9:10911"},"brokerName":"slave-only","cluster":"DefaultCluster"}},` +
			`"clusterAddrTable":{"DefaultCluster":["broker-a","broker-b","slave-only"]}}`,
		"tide": `{"brokerAddrTable":{"broker-a":{"brokerAddrs":{"0":"10.0.0.1:10911"},"brokerName":"broker-a"},` +
			`"broker-b":{"brokerAddrs":{"0":"10.0.0.2:10911"},"brokerName":"broker-b"}},"clusterAddrTable":{"DefaultCluster":["broker-a","broker-b"]}}`,
	} {
		got, err := parseMasters([]byte(body))
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if want := []string{"10.0.0.1:10911", "10.0.0.2:10911"}; !slices.Equal(got, want) {
			t.Errorf("%s: masters %v, want %v", name, got, want)
		}
	}
	if _, err := parseMasters([]byte(`{"brokerAddrTable":`)); err == nil {
		t.Error("truncated cluster info parsed")
	}
}

func TestQuoteNumericKeys(t *testing.T) {
	for in, want := range map[string]string{
		`{0:"a"}`:                          `{"0":"a"}`,
		`{ 0 : "a", -12:"b" ,3:{4:[5,6]}}`: `{ "0" : "a", "-12":"b" ,"3":{"4":[5,6]}}`,
		`[1,2,{"k":3}]`:                    `[1,2,{"k":3}]`,
		`{"s":"{0:1}","n":7}`:              `{"s":"{0:1}","n":7}`,
		`{"esc":"\"{1:2}","x":[{9:0}]}`:    `{"esc":"\"{1:2}","x":[{"9":0}]}`,
	} {
		if got := string(QuoteNumericKeys([]byte(in))); got != want {
			t.Errorf("%s -> %s, want %s", in, got, want)
		}
	}
}

// FuzzQuoteNumericKeys: never panics; valid JSON comes back unchanged; and a fastjson-style document (valid JSON
// with some keys unquoted) becomes valid JSON again. For the last, every valid input is rewritten the way fastjson
// writes integer map keys (each key that is an integer, every other one left quoted so mixed objects occur too), and
// quoting it back must give valid JSON with the same value as the input.
func FuzzQuoteNumericKeys(f *testing.F) {
	f.Add([]byte(`{"brokerAddrTable":{"a":{"brokerAddrs":{0:"1.2.3.4:10911"}}}}`))
	f.Add([]byte(`{"a":[1,{"2":3}],"b":"x\"y"}`))
	f.Add([]byte(`{0:{1:[2,{3:4}]}}`))
	f.Add([]byte(`{"0":{"-1":[2,{"3":"{4:5}"}]},"10":"a","x":{"7":null}}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		out := QuoteNumericKeys(b)
		if !json.Valid(b) {
			return
		}
		if string(out) != string(b) {
			t.Fatalf("valid JSON changed: %q -> %q", b, out)
		}
		var want any
		if err := json.Unmarshal(b, &want); err != nil {
			t.Fatal(err)
		}
		n := 0
		fast := fastjsonStyle(nil, want, &n)
		back := QuoteNumericKeys(fast)
		var got any
		if err := json.Unmarshal(back, &got); err != nil {
			t.Fatalf("fastjson-style %q -> %q: not valid JSON: %v", fast, back, err)
		}
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("fastjson-style %q -> %q: value %v, want %v", fast, back, got, want)
		}
	})
}

// fastjsonStyle appends v encoded as fastjson writes a map with integer keys: such keys bare ({0:"a"}). Every other
// integer key (counted by n) stays quoted, so documents mix both forms.
func fastjsonStyle(dst []byte, v any, n *int) []byte {
	switch v := v.(type) {
	case map[string]any:
		dst = append(dst, '{')
		for i, k := range slices.Sorted(maps.Keys(v)) {
			if i > 0 {
				dst = append(dst, ',')
			}
			if integerKey.MatchString(k) && *n%2 == 0 {
				dst = append(dst, k...)
			} else {
				kb, _ := json.Marshal(k)
				dst = append(dst, kb...)
			}
			if integerKey.MatchString(k) {
				*n++
			}
			dst = append(dst, ':')
			dst = fastjsonStyle(dst, v[k], n)
		}
		return append(dst, '}')
	case []any:
		dst = append(dst, '[')
		for i, e := range v {
			if i > 0 {
				dst = append(dst, ',')
			}
			dst = fastjsonStyle(dst, e, n)
		}
		return append(dst, ']')
	default:
		b, _ := json.Marshal(v)
		return append(dst, b...)
	}
}

var integerKey = regexp.MustCompile(`^-?[0-9]+$`)
