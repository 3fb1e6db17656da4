package broker

import (
	"encoding/json"
	"strconv"

	"github.com/tide-run/tide/mq/mqmeta"
	"github.com/tide-run/tide/mq/remoting"
)

// Apache's broker serializes GET_CONSUME_STATS and INVOKE_BROKER_TO_RESET_OFFSET bodies with fastjson, whose maps
// keyed by a MessageQueue object carry the object itself as the key:
//
//	{"consumeTps":0.0,"offsetTable":{{"brokerName":"b","queueId":0,"topic":"t"}:{"brokerOffset":5,...},...}}
//
// That is not JSON, but it is what Java tools (mqadmin consumerProgress, the dashboard) and tide's own admin client
// read, so tide's broker writes the same.

func appendQueueKey(b []byte, brokerName, topic string, queue int32) []byte {
	b = append(b, `{"brokerName":`...)
	b = appendJSONString(b, brokerName)
	b = append(b, `,"queueId":`...)
	b = strconv.AppendInt(b, int64(queue), 10)
	b = append(b, `,"topic":`...)
	b = appendJSONString(b, topic)
	return append(b, '}')
}

func appendJSONString(b []byte, s string) []byte {
	q, _ := json.Marshal(s) // a string always encodes
	return append(b, q...)
}

// consumeStatsBody is ConsumeStats in Apache's layout. pullOffset is the consumer offset (tide keeps no separate
// pull position) and lastTimestamp is 0 (not tracked).
func consumeStatsBody(stats []mqmeta.QueueStat) []byte {
	b := []byte(`{"consumeTps":0.0,"offsetTable":{`)
	for i, s := range stats {
		if i > 0 {
			b = append(b, ',')
		}
		b = appendQueueKey(b, s.BrokerName, s.Topic, s.QueueID)
		b = append(b, `:{"brokerOffset":`...)
		b = strconv.AppendInt(b, s.BrokerOffset, 10)
		b = append(b, `,"consumerOffset":`...)
		b = strconv.AppendInt(b, s.ConsumerOffset, 10)
		b = append(b, `,"lastTimestamp":0,"pullOffset":`...)
		b = strconv.AppendInt(b, s.ConsumerOffset, 10)
		b = append(b, '}')
	}
	return append(b, "}}"...)
}

// resetOffsetBody is ResetOffsetBody in Apache's layout: the new offset per queue.
func resetOffsetBody(stats []mqmeta.QueueStat) []byte {
	b := []byte(`{"offsetTable":{`)
	for i, s := range stats {
		if i > 0 {
			b = append(b, ',')
		}
		b = appendQueueKey(b, s.BrokerName, s.Topic, s.QueueID)
		b = append(b, ':')
		b = strconv.AppendInt(b, s.ConsumerOffset, 10)
	}
	return append(b, "}}"...)
}

func bodyResponse(req *remoting.Command, body []byte) *remoting.Command {
	resp := remoting.NewResponse(req, remoting.Success, "")
	resp.Body = body
	return resp
}
