package broker

import (
	"encoding/json"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/tide-run/tide/mq/message"
	"github.com/tide-run/tide/mq/remoting"
)

// The broker's answers to the operations requests of Apache's own tools: mqadmin's clusterList and brokerStatus
// (GET_BROKER_RUNTIME_INFO), getBrokerConfig (GET_BROKER_CONFIG), topicStatus (GET_TOPIC_STATS_INFO) and
// consumerConnection and producerConnection (GET_CONSUMER_CONNECTION_LIST, GET_PRODUCER_CONNECTION_LIST), which the RocketMQ dashboard and exporter also ask. Bodies have
// Apache's layouts (AdminBrokerProcessor); values tide does not track (thread-pool queues, page-cache locks, timer
// wheel backlog) are the idle values Apache's broker reports.
const (
	getBrokerConfig           int16 = 26
	getBrokerRuntimeInfo      int16 = 28
	getTopicStatsInfo         int16 = 202
	getConsumerConnectionList int16 = 203
	getProducerConnectionList int16 = 204

	// consumerNotOnline is CONSUMER_NOT_ONLINE: a group with no consumer connected.
	consumerNotOnline int16 = 206
)

// versionDesc is Java's MQVersion name of remoting.Version (317), the version tide's broker answers with.
const versionDesc = "V4_5_2"

// handleBrokerRuntimeInfo answers GET_BROKER_RUNTIME_INFO with a KVTable ({"table":{...}}) holding the keys
// mqadmin's clusterList and brokerStatus read.
func (b *Broker) handleBrokerRuntimeInfo(req *remoting.Command) *remoting.Command {
	now := b.clock.Now()
	st := b.st.Stats()
	var putMsgs, getMsgs uint64
	if c := b.opts.Counters; c != nil {
		c.RangeIn(func(_ string, _ MessageType, s *InStats) { putMsgs += s.Messages.Load() })
		c.RangeOut(func(_, _ string, s *OutStats) { getMsgs += s.Messages.Load() })
	} else {
		// Without counters (metrics off) the messages the queues hold stand in for those put.
		for name, t := range b.cfg.allTopics() {
			for q := int32(0); int(q) < max(t.ReadQueueNums, t.WriteQueueNums); q++ {
				putMsgs += uint64(max(0, b.st.MaxOffset(name, q)))
			}
		}
	}
	put, get := strconv.FormatUint(putMsgs, 10), strconv.FormatUint(getMsgs, 10)
	earliest := int64(-1) // an empty store, as Apache's getEarliestMessageTime answers it
	if st.WriteOffset > st.MinOffset {
		if m, _, err := b.st.ReadMessage(st.MinOffset); err == nil {
			earliest = m.StoreTimestamp
		}
	}
	t := map[string]string{
		"brokerVersionDesc": versionDesc,
		"brokerVersion":     strconv.Itoa(int(remoting.Version)),
		"brokerActive":      "true", // a master that serves sends and pulls
		"bootTimestamp":     strconv.FormatInt(b.started.UnixMilli(), 10),
		"runtime":           runtimeDesc(now.Sub(b.started)),
		// Counted since tide started: it keeps no per-day history, so "yesterday" and "this morning" are 0 and
		// clusterList's day totals are the counts since start (without metrics' counters: the messages stored).
		"msgPutTotalYesterdayMorning": "0", "msgPutTotalTodayMorning": "0", "msgPutTotalTodayNow": put,
		"msgGetTotalYesterdayMorning": "0", "msgGetTotalTodayMorning": "0", "msgGetTotalTodayNow": get,
		"putTps": "0.0 0.0 0.0", "getTransferredTps": "0.0 0.0 0.0", "getFoundTps": "0.0 0.0 0.0",
		"getMissTps": "0.0 0.0 0.0", "getTotalTps": "0.0 0.0 0.0",
		"commitLogMinOffset": strconv.FormatInt(st.MinOffset, 10), "commitLogMaxOffset": strconv.FormatInt(st.WriteOffset, 10),
		"dispatchBehindBytes": "0", "pageCacheLockTimeMills": "0", "earliestMessageTimeStamp": strconv.FormatInt(earliest, 10),
		"startAcceptSendRequestTimeStamp": "0", "remainHowManyDataToFlush": "0 B",
		"timerReadBehind": "0", "timerOffsetBehind": "0", "timerCongestNum": "0", "timerEnqueueTps": "0.0",
		"timerDequeueTps":         "0.0",
		"sendThreadPoolQueueSize": "0", "sendThreadPoolQueueCapacity": "10000", "sendThreadPoolQueueHeadWaitTimeMills": "0",
		"pullThreadPoolQueueSize": "0", "pullThreadPoolQueueCapacity": "100000", "pullThreadPoolQueueHeadWaitTimeMills": "0",
		"ackThreadPoolQueueSize": "0", "ackThreadPoolQueueCapacity": "100000", "ackThreadPoolQueueHeadWaitTimeMills": "0",
		"queryThreadPoolQueueSize": "0", "queryThreadPoolQueueCapacity": "20000", "queryThreadPoolQueueHeadWaitTimeMills": "0",
	}
	body, _ := json.Marshal(map[string]map[string]string{"table": t})
	return bodyResponse(req, body)
}

// runtimeDesc is StoreStatsService's "[ d days, h hours, m minutes, s seconds ]".
func runtimeDesc(d time.Duration) string {
	s := int64(d / time.Second)
	return fmt.Sprintf("[ %d days, %d hours, %d minutes, %d seconds ]", s/86400, s%86400/3600, s%3600/60, s%60)
}

// handleBrokerConfig answers GET_BROKER_CONFIG: the broker's settings as Java properties lines in the body, and the
// header field "version" (the configuration's data version, JSON).
func (b *Broker) handleBrokerConfig(req *remoting.Command) *remoting.Command {
	host, port := b.opts.Addr, ""
	if i := strings.LastIndexByte(host, ':'); i >= 0 {
		host, port = host[:i], host[i+1:]
	}
	delays := make([]string, len(b.opts.DelayLevels))
	for i, d := range b.opts.DelayLevels {
		delays[i] = javaDuration(d)
	}
	kv := map[string]string{
		"brokerClusterName":           b.opts.ClusterName,
		"brokerName":                  b.opts.BrokerName,
		"brokerId":                    "0",
		"brokerIP1":                   host,
		"listenPort":                  port,
		"brokerPermission":            "6",
		"storePathRootDir":            b.opts.DataDir,
		"autoCreateTopicEnable":       strconv.FormatBool(!b.opts.DisableAutoCreateTopics),
		"autoCreateSubscriptionGroup": "true",
		"defaultTopicQueueNums":       strconv.Itoa(b.opts.DefaultTopicQueueNums),
		"maxMessageSize":              strconv.Itoa(b.opts.MaxMessageSize),
		"messageDelayLevel":           strings.Join(delays, " "),
		"brokerRole":                  "ASYNC_MASTER",
		"enablePropertyFilter":        "true",
		"timerWheelEnable":            "true",
	}
	keys := make([]string, 0, len(kv))
	for k := range kv {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var sb strings.Builder
	for _, k := range keys {
		sb.WriteString(k)
		sb.WriteByte('=')
		sb.WriteString(kv[k])
		sb.WriteByte('\n')
	}
	resp := bodyResponse(req, []byte(sb.String()))
	resp.SetExt("version", fmt.Sprintf(`{"counter":0,"stateVersion":0,"timestamp":%d}`, b.started.UnixMilli()))
	return resp
}

// javaDuration writes a delay level as Apache's messageDelayLevel does: "1s", "2m", "1h".
func javaDuration(d time.Duration) string {
	switch {
	case d >= time.Hour && d%time.Hour == 0:
		return strconv.FormatInt(int64(d/time.Hour), 10) + "h"
	case d >= time.Minute && d%time.Minute == 0:
		return strconv.FormatInt(int64(d/time.Minute), 10) + "m"
	case d%time.Second == 0:
		return strconv.FormatInt(int64(d/time.Second), 10) + "s"
	}
	return strconv.FormatInt(int64(d/time.Millisecond), 10) + "ms"
}

// handleTopicStats answers GET_TOPIC_STATS_INFO: per queue the min and max offsets and the store time of the last
// message, in Apache's TopicStatsTable layout (fastjson, queues as keys: javabody.go). An unknown topic is
// TOPIC_NOT_EXIST.
func (b *Broker) handleTopicStats(req *remoting.Command) *remoting.Command {
	f := req.ReadFields()
	topic := f.String("topic")
	if f.Err != nil {
		return remoting.Errorf(req, remoting.SystemError, "topic stats: %v", f.Err)
	}
	t, ok := b.cfg.topic(topic)
	if !ok {
		return remoting.Errorf(req, remoting.TopicNotExist, "topic[%s] not exist", topic)
	}
	out := []byte(`{"offsetTable":{`)
	for q := int32(0); int(q) < max(t.ReadQueueNums, t.WriteQueueNums); q++ {
		lo, hi := max(0, b.st.MinOffset(topic, q)), max(0, b.st.MaxOffset(topic, q))
		var last int64
		if hi > lo {
			if m, err := b.st.Entry(topic, q, hi-1); err == nil {
				last = m.StoreTimestamp
			}
		}
		if q > 0 {
			out = append(out, ',')
		}
		out = appendQueueKey(out, b.opts.BrokerName, topic, q)
		out = append(out, `:{"lastUpdateTimestamp":`...)
		out = strconv.AppendInt(out, last, 10)
		out = append(out, `,"maxOffset":`...)
		out = strconv.AppendInt(out, hi, 10)
		out = append(out, `,"minOffset":`...)
		out = strconv.AppendInt(out, lo, 10)
		out = append(out, '}')
	}
	out = append(out, `},"topicPutTps":0.0}`...)
	return bodyResponse(req, out)
}

// connectionJSON and subscriptionJSON are Apache's Connection and SubscriptionData.
type connectionJSON struct {
	ClientID   string `json:"clientId"`
	ClientAddr string `json:"clientAddr"`
	Language   string `json:"language"`
	Version    int16  `json:"version"`
}

type subscriptionJSON struct {
	Topic           string   `json:"topic"`
	SubString       string   `json:"subString"`
	TagsSet         []string `json:"tagsSet"`
	CodeSet         []int32  `json:"codeSet"`
	SubVersion      int64    `json:"subVersion"`
	ExpressionType  string   `json:"expressionType"`
	ClassFilterMode bool     `json:"classFilterMode"`
}

// handleConsumerConnections answers GET_CONSUMER_CONNECTION_LIST: a group's connected 4.x consumers (client id,
// address, language, version), its subscriptions and its consume type, model and starting point, as Apache's
// ConsumerConnection; CONSUMER_NOT_ONLINE when none is connected. (5.x gRPC consumers are listed by
// GET_CONSUMER_LIST_BY_GROUP, not here: Apache's proxy registers them with the broker as channels of its own.)
func (b *Broker) handleConsumerConnections(req *remoting.Command) *remoting.Command {
	f := req.ReadFields()
	name := f.String("consumerGroup")
	if f.Err != nil {
		return remoting.Errorf(req, remoting.SystemError, "consumer connections: %v", f.Err)
	}
	t := b.clients
	t.mu.Lock()
	g := t.groups[name]
	if g == nil || len(g.members) == 0 {
		t.mu.Unlock()
		return remoting.Errorf(req, consumerNotOnline, "the consumer group[%s] not online", name)
	}
	body := struct {
		ConnectionSet     []connectionJSON            `json:"connectionSet"`
		SubscriptionTable map[string]subscriptionJSON `json:"subscriptionTable"`
		ConsumeType       string                      `json:"consumeType"`
		MessageModel      string                      `json:"messageModel"`
		ConsumeFromWhere  string                      `json:"consumeFromWhere"`
	}{SubscriptionTable: map[string]subscriptionJSON{}, ConsumeType: g.consumeType, MessageModel: g.model,
		ConsumeFromWhere: g.fromWhere}
	for _, m := range g.members {
		addr := ""
		if m.conn != nil {
			addr = m.conn.RemoteAddr().String()
		}
		body.ConnectionSet = append(body.ConnectionSet, connectionJSON{ClientID: m.clientID, ClientAddr: addr,
			Language: m.language, Version: m.version})
	}
	for topic, s := range g.subs {
		sj := subscriptionJSON{Topic: topic, SubString: s.expr, TagsSet: s.tags, CodeSet: []int32{},
			SubVersion: s.version, ExpressionType: s.exprType}
		if sj.TagsSet == nil {
			sj.TagsSet = []string{}
		}
		for _, tag := range sj.TagsSet {
			sj.CodeSet = append(sj.CodeSet, int32(message.TagsHash(tag)))
		}
		body.SubscriptionTable[topic] = sj
	}
	t.mu.Unlock()
	sort.Slice(body.ConnectionSet, func(i, j int) bool { return body.ConnectionSet[i].ClientID < body.ConnectionSet[j].ClientID })
	if body.ConsumeType == "" {
		body.ConsumeType = "CONSUME_PASSIVELY"
	}
	if body.MessageModel == "" {
		body.MessageModel = "CLUSTERING"
	}
	if body.ConsumeFromWhere == "" {
		body.ConsumeFromWhere = "CONSUME_FROM_LAST_OFFSET"
	}
	out, _ := json.Marshal(body)
	return bodyResponse(req, out)
}

// handleProducerConnections answers GET_PRODUCER_CONNECTION_LIST: a producer group's connected clients, as Apache's
// ProducerConnection; SYSTEM_ERROR "not exist" for a group with none (Apache's answer).
func (b *Broker) handleProducerConnections(req *remoting.Command) *remoting.Command {
	f := req.ReadFields()
	name := f.String("producerGroup")
	if f.Err != nil {
		return remoting.Errorf(req, remoting.SystemError, "producer connections: %v", f.Err)
	}
	t := b.clients
	t.mu.Lock()
	var set []connectionJSON
	for _, m := range t.producers[name] {
		addr := ""
		if m.conn != nil {
			addr = m.conn.RemoteAddr().String()
		}
		set = append(set, connectionJSON{ClientID: m.clientID, ClientAddr: addr, Language: m.language, Version: m.version})
	}
	t.mu.Unlock()
	if len(set) == 0 {
		return remoting.Errorf(req, remoting.SystemError, "the producer group[%s] not exist", name)
	}
	sort.Slice(set, func(i, j int) bool { return set[i].ClientID < set[j].ClientID })
	out, _ := json.Marshal(map[string][]connectionJSON{"connectionSet": set})
	return bodyResponse(req, out)
}
