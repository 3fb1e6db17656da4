package broker

import (
	"bytes"
	"io"
	"net"
	"testing"
	"time"

	clocktesting "k8s.io/utils/clock/testing"

	"github.com/tide-run/tide/mq/message"
	"github.com/tide-run/tide/mq/mqmeta"
	"github.com/tide-run/tide/mq/remoting"
)

var fuzzCodes = []int16{remoting.SendMessage, remoting.SendMessageV2, remoting.SendBatchMessage, remoting.SendReplyMessage,
	remoting.PullMessage, remoting.HeartBeat, remoting.UnregisterClient, remoting.GetConsumerListByGroup,
	remoting.QueryConsumerOffset, remoting.UpdateConsumerOffset, remoting.GetMaxOffset, remoting.GetMinOffset,
	remoting.SearchOffsetByTimestamp, remoting.ConsumerSendMsgBack, remoting.LockBatchMQ, remoting.UnlockBatchMQ,
	remoting.ViewMessageByID, remoting.UpdateAndCreateTopic, remoting.DeleteTopicInBroker, remoting.GetAllTopicConfig,
	remoting.UpdateAndCreateSubscription, remoting.GetAllSubscriptionGroupConfig, remoting.DeleteSubscriptionGroup,
	remoting.GetConsumeStats, remoting.InvokeBrokerToResetOffset, remoting.EndTransaction, 9999, remoting.GetTopicConfig,
	remoting.QueryMessage, queryTopicConsumeByWho, getBrokerRuntimeInfo, getBrokerConfig, getTopicStatsInfo,
	getConsumerConnectionList, getProducerConnectionList} // new codes go last: the seeds and corpus name codes by index

// FuzzHandle feeds arbitrary ext fields and bodies to every request handler (heartbeat and lock JSON, batch bodies,
// send-back offsets, ...). Handlers must answer, never panic; the server's recover is not in the way here.
// Ext fields are encoded in the input as key\x00value\x00 pairs.
func FuzzHandle(f *testing.F) {
	f.Add(uint8(0), []byte("b\x00t1\x00a\x00pg\x00i\x00TAGS\x01x\x02\x00"), []byte("body"))
	f.Add(uint8(2), []byte("b\x00t1\x00a\x00pg\x00"), message.AppendBatchItem(nil, message.BatchItem{Body: []byte("x")}))
	f.Add(uint8(4), []byte("consumerGroup\x00g\x00topic\x00t1\x00queueId\x000\x00queueOffset\x000\x00maxMsgNums\x0032\x00sysFlag\x006\x00suspendTimeoutMillis\x000\x00"), []byte(nil))
	f.Add(uint8(5), []byte(nil), []byte(`{"clientID":"c1","consumerDataSet":[{"groupName":"g","messageModel":"CLUSTERING","subscriptionDataSet":[{"topic":"t1","subString":"a||b","tagsSet":["a","b"]}]}]}`))
	f.Add(uint8(4), []byte("consumerGroup\x00g\x00topic\x00t1\x00queueId\x000\x00queueOffset\x000\x00maxMsgNums\x0032\x00sysFlag\x004\x00expressionType\x00SQL92\x00subscription\x00a > 1 AND TAGS IN ('x')\x00"), []byte(nil))
	f.Add(uint8(5), []byte(nil), []byte(`{"clientID":"c2","consumerDataSet":[{"groupName":"g","messageModel":"CLUSTERING","subscriptionDataSet":[{"topic":"t1","subString":"a BETWEEN 0 AND","expressionType":"SQL92"}]}]}`))
	f.Add(uint8(13), []byte("group\x00g\x00offset\x000\x00delayLevel\x00-1\x00"), []byte(nil))
	f.Add(uint8(14), []byte(nil), []byte(`{"consumerGroup":"g","clientId":"c1","mqSet":[{"topic":"t1","brokerName":"b","queueId":0}]}`))
	f.Add(uint8(17), []byte("topic\x00t2\x00readQueueNums\x001\x00writeQueueNums\x001\x00attributes\x00+message.type=DELAY,+queue.type=SimpleCQ\x00"), []byte(nil))
	f.Add(uint8(27), []byte("topic\x00t1\x00"), []byte(nil))
	f.Add(uint8(0), []byte("b\x00t1\x00a\x00pg\x00i\x00TIMER_DELAY_SEC\x0160\x02TIMER_DELIVER_MS\x01x\x02\x00"), []byte("timer"))
	f.Add(uint8(25), []byte("producerGroup\x00pg\x00tranStateTableOffset\x000\x00commitLogOffset\x000\x00commitOrRollback\x008\x00"), []byte(nil))

	f.Add(uint8(28), []byte("topic\x00t1\x00key\x00k\x00maxNum\x0032\x00beginTimestamp\x000\x00endTimestamp\x009223372036854775807\x00_UNIQUE_KEY_QUERY\x00true\x00"), []byte(nil))
	f.Add(uint8(16), []byte("offset\x0013\x00"), []byte(nil))
	fc := clocktesting.NewFakeClock(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
	b := newTestBroker(f, fc)
	if err := b.CreateTopic(mqmeta.TopicConfig{TopicName: "t1", ReadQueueNums: 2, WriteQueueNums: 2}); err != nil {
		f.Fatal(err)
	}
	server, client := net.Pipe()
	go io.Copy(io.Discard, client)
	c := remoting.NewConn(server, b.log)
	f.Cleanup(func() { c.Close(); client.Close() })

	f.Fuzz(func(t *testing.T, code uint8, ext []byte, body []byte) {
		req := remoting.NewRequest(fuzzCodes[int(code)%len(fuzzCodes)], map[string]string{}, body)
		parts := bytes.Split(ext, []byte{0})
		for i := 0; i+1 < len(parts); i += 2 {
			req.ExtFields[string(parts[i])] = string(parts[i+1])
		}
		if req.Code == remoting.DeleteTopicInBroker {
			req.ExtFields["topic"] = "not-" + req.ExtFields["topic"] // keep the fixture topic
		}
		resp := b.Handle(c, req)
		if resp != nil && !resp.IsResponse() {
			t.Fatalf("code %d: answer without the response flag", req.Code)
		}
	})
}
