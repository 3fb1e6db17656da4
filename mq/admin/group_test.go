package admin

import (
	"encoding/json"
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
// with some keys unquoted) becomes valid JSON again.
func FuzzQuoteNumericKeys(f *testing.F) {
	f.Add([]byte(`{"brokerAddrTable":{"a":{"brokerAddrs":{0:"1.2.3.4:10911"}}}}`))
	f.Add([]byte(`{"a":[1,{"2":3}],"b":"x\"y"}`))
	f.Add([]byte(`{0:{1:[2,{3:4}]}}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		out := QuoteNumericKeys(b)
		if json.Valid(b) && string(out) != string(b) {
			t.Fatalf("valid JSON changed: %q -> %q", b, out)
		}
	})
}
