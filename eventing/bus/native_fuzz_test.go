package bus

import (
	"testing"
)

// The native bus parses bytes from the network itself: routes (tide's JSON, Apache's fastjson with bare numeric
// keys) and offset-reset bodies (gson pairs, fastjson object keys). These check both layouts and that no input
// makes them panic.

const (
	routeTide   = `{"brokerDatas":[{"brokerAddrs":{"0":"127.0.0.1:10911"},"brokerName":"b","cluster":"c"}],"queueDatas":[{"brokerName":"b","perm":6,"readQueueNums":8,"topicSysFlag":0,"writeQueueNums":4}]}`
	routeApache = `{"brokerDatas":[{"brokerAddrs":{0:"127.0.0.1:10911"},"brokerName":"b","cluster":"c","enableActingMaster":false}],"filterServerTable":{},"queueDatas":[{"brokerName":"b","perm":6,"readQueueNums":8,"topicSysFlag":0,"writeQueueNums":4}]}`
	resetTide   = `{"offsetTable":[[{"topic":"t","brokerName":"b","queueId":0},5],[{"topic":"t","brokerName":"b","queueId":1},-1]]}`
	resetApache = `{"offsetTable":{{"brokerName":"b","queueId":0,"topic":"t"}:5,{"brokerName":"b","queueId":1,"topic":"t"}:-1}}`
)

func TestNativeParsersBothLayouts(t *testing.T) {
	for _, body := range []string{routeTide, routeApache} {
		r, err := parseRoute("t", []byte(body))
		if err != nil {
			t.Fatalf("%s: %v", body, err)
		}
		if len(r.write) != 4 || len(r.read) != 8 || r.read[7].addr != "127.0.0.1:10911" || r.read[7].id != 7 {
			t.Errorf("%s: route %+v", body, r)
		}
	}
	for _, body := range []string{resetTide, resetApache} {
		got := parseResetOffsets([]byte(body))
		if len(got) != 2 || got[queueKey{"t", "b", 0}] != 5 || got[queueKey{"t", "b", 1}] != -1 {
			t.Errorf("%s: offsets %v", body, got)
		}
	}
}

func FuzzNativeParsers(f *testing.F) {
	for _, s := range []string{routeTide, routeApache, resetTide, resetApache, `{0:`, `{"a":"\"{1:"}`, `[1,2]`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		_, _ = parseRoute("t", b)
		_ = parseResetOffsets(b)
		_ = quoteNumericKeys(b)
	})
}
