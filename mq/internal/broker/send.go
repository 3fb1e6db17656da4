package broker

import (
	"errors"
	"net"
	"net/netip"
	"strconv"
	"strings"
	"sync/atomic"

	"github.com/tide-run/tide/mq/internal/store"
	"github.com/tide-run/tide/mq/message"
	"github.com/tide-run/tide/mq/mqmeta"
	"github.com/tide-run/tide/mq/remoting"
)

type sendHeader struct {
	producerGroup     string
	topic             string
	defaultTopic      string
	defaultQueueNums  int32
	queueID           int32
	sysFlag           int32
	bornTimestamp     int64
	flag              int32
	properties        string
	reconsumeTimes    int32
	maxReconsumeTimes int32
	batch             bool
}

// sendHeaderNames are the ext-field names of SendMessageRequestHeader's fields: V1 spells them out, V2 (batches,
// and Java clients) uses the letters a..m (k is unused).
type sendHeaderNames struct {
	producerGroup, topic, defaultTopic, defaultQueueNums, queueID, sysFlag, bornTimestamp, flag, properties,
	reconsumeTimes, maxReconsumeTimes, batch string
}

var (
	sendHeaderV1 = sendHeaderNames{"producerGroup", "topic", "defaultTopic", "defaultTopicQueueNums", "queueId",
		"sysFlag", "bornTimestamp", "flag", "properties", "reconsumeTimes", "maxReconsumeTimes", "batch"}
	sendHeaderV2 = sendHeaderNames{"a", "b", "c", "d", "e", "f", "g", "h", "i", "j", "l", "m"}
)

// parseSendHeader reads the V1 header (named fields) or the V2 one (letters a..m, used for batches and by Java).
func parseSendHeader(req *remoting.Command) (sendHeader, error) {
	f := req.ReadFields()
	n := sendHeaderV1
	if _, v2 := req.ExtFields[sendHeaderV2.topic]; v2 {
		n = sendHeaderV2
	}
	h := sendHeader{
		producerGroup:     f.String(n.producerGroup),
		topic:             f.String(n.topic),
		defaultTopic:      f.OptString(n.defaultTopic),
		defaultQueueNums:  f.OptInt32(n.defaultQueueNums, 4),
		queueID:           f.OptInt32(n.queueID, -1),
		sysFlag:           f.OptInt32(n.sysFlag, 0),
		bornTimestamp:     f.OptInt64(n.bornTimestamp, 0),
		flag:              f.OptInt32(n.flag, 0),
		properties:        f.OptString(n.properties),
		reconsumeTimes:    f.OptInt32(n.reconsumeTimes, 0),
		maxReconsumeTimes: f.OptInt32(n.maxReconsumeTimes, 16),
		batch:             f.OptBool(n.batch, false),
	}
	return h, f.Err
}

func addrPort(a net.Addr) netip.AddrPort {
	if ta, ok := a.(*net.TCPAddr); ok {
		return ta.AddrPort()
	}
	ap, _ := netip.ParseAddrPort(a.String())
	return ap
}

// resolveTopic finds the topic of a send, auto-creating it from TBW102 when allowed; on failure it returns the
// error response for req.
func (b *Broker) resolveTopic(req *remoting.Command, h sendHeader) (mqmeta.TopicConfig, *remoting.Command) {
	if err := mqmeta.ValidateTopic(h.topic); err != nil {
		return mqmeta.TopicConfig{}, remoting.Errorf(req, remoting.SystemError, "%v", err)
	}
	if t, ok := b.Topic(h.topic); ok {
		return t, nil
	}
	if strings.HasPrefix(h.topic, mqmeta.DLQPrefix) {
		// A client (or a replay tool) writing a dead letter itself: the same one-queue topic the broker would create.
		if t, ok := b.systemTopic(h.topic); ok {
			return t, nil
		}
	}
	if b.opts.DisableAutoCreateTopics || h.topic == h.defaultTopic {
		return mqmeta.TopicConfig{}, remoting.Errorf(req, remoting.TopicNotExist, "topic[%s] not exist, apply first please!", h.topic)
	}
	def, ok := b.cfg.topic(mqmeta.DefaultTopic)
	if !ok || def.Perm&mqmeta.PermInherit == 0 {
		return mqmeta.TopicConfig{}, remoting.Errorf(req, remoting.TopicNotExist, "topic[%s] not exist and auto-creation is off", h.topic)
	}
	n := int(h.defaultQueueNums)
	if n <= 0 || n > def.WriteQueueNums {
		n = def.WriteQueueNums
	}
	t, created, err := b.cfg.ensureTopic(mqmeta.TopicConfig{TopicName: h.topic, ReadQueueNums: n, WriteQueueNums: n, Perm: mqmeta.PermRW})
	if err != nil {
		return mqmeta.TopicConfig{}, remoting.Errorf(req, remoting.SystemError, "creating topic %s: %v", h.topic, err)
	}
	if created {
		b.log.Info("auto-created topic", "topic", h.topic, "queues", n)
	}
	return t, nil
}

func (b *Broker) handleSend(c *remoting.Conn, req *remoting.Command, batch bool) *remoting.Command {
	h, err := parseSendHeader(req)
	if err != nil {
		return remoting.Errorf(req, remoting.SystemError, "send: %v", err)
	}
	if len(req.Body) > b.opts.MaxMessageSize {
		return remoting.Errorf(req, remoting.MessageIllegal, "the message body size over max value, MAX: %d", b.opts.MaxMessageSize)
	}
	half := h.sysFlag&message.TxTypeMask == message.FlagTxPrepared || message.Property(h.properties, message.PropTxPrepared) == "true"
	if half && batch {
		return remoting.Errorf(req, remoting.MessageIllegal, "batch messages cannot be transactional")
	}
	t, fail := b.resolveTopic(req, h)
	if fail != nil {
		return fail
	}
	if t.Perm&mqmeta.PermWrite == 0 {
		return remoting.Errorf(req, remoting.NoPermission, "the topic[%s] sending message is forbidden", h.topic)
	}
	qid := h.queueID
	if qid < 0 || int(qid) >= t.WriteQueueNums {
		qid = int32(int(uint32(qid)) % t.WriteQueueNums)
	}
	born := addrPort(c.RemoteAddr())
	var msgs []*message.Message
	if batch {
		items, err := message.DecodeBatch(req.Body)
		if err != nil {
			return remoting.Errorf(req, remoting.MessageIllegal, "batch body: %v", err)
		}
		if len(items) == 0 {
			return remoting.Errorf(req, remoting.MessageIllegal, "batch body: no messages")
		}
		for _, it := range items {
			if message.DelayLevel(it.Properties) > 0 {
				return remoting.Errorf(req, remoting.MessageIllegal, "batch messages cannot have a delay level")
			}
			msgs = append(msgs, &message.Message{Topic: h.topic, QueueID: qid, Flag: it.Flag, SysFlag: h.sysFlag &^ message.FlagCompressed,
				BornTimestamp: h.bornTimestamp, BornHost: born, Body: it.Body, Properties: it.Properties})
		}
	} else {
		props := h.properties
		if to := message.Property(props, propReplyToClient); to != "" && req.Code != remoting.SendReplyMessage && req.Code != remoting.SendReplyMessageV2 {
			// A request (request/reply): remember the requester's connection (its heartbeat may not have come yet)
			// and stamp CLUSTER, from which the replier builds its reply topic, as Java brokers do.
			b.clients.noteRequester(to, c)
			if message.Property(props, propCluster) == "" {
				props += propCluster + "\x01" + b.opts.ClusterName + "\x02"
			}
		}
		if message.Property(props, propMsgRegion) == "" {
			// Stamped on every message as Java's broker does (regionId, traceOn): the Java client's consume trace
			// hook reads the region from the message and drops the records of a message without one.
			props += propMsgRegion + "\x01DefaultRegion\x02" + propTraceOn + "\x01true\x02"
		}
		m := &message.Message{Topic: h.topic, QueueID: qid, Flag: h.flag, SysFlag: h.sysFlag, BornTimestamp: h.bornTimestamp,
			BornHost: born, ReconsumeTimes: h.reconsumeTimes, Body: req.Body, Properties: props}
		if half {
			b.prepareHalf(m)
		}
		if req.Code == remoting.SendReplyMessage || req.Code == remoting.SendReplyMessageV2 {
			if fail := b.pushReply(req, h, m); fail != nil {
				return fail
			}
		}
		if strings.HasPrefix(h.topic, mqmeta.RetryPrefix) && h.reconsumeTimes >= h.maxReconsumeTimes && h.maxReconsumeTimes >= 0 {
			// A client sending straight into a retry topic after too many attempts: dead-letter it as Java does.
			m.Topic = mqmeta.DLQPrefix + strings.TrimPrefix(h.topic, mqmeta.RetryPrefix)
			m.QueueID = 0
			b.systemTopic(m.Topic)
			b.opts.Counters.noteDLQ(message.Property(props, message.PropRetryTopic), strings.TrimPrefix(h.topic, mqmeta.RetryPrefix))
		}
		if !half && (req.Code == remoting.SendMessage || req.Code == remoting.SendMessageV2) && c.HasOnIdle() {
			return b.deferSend(c, req, m) // stored with the other sends that arrived with it (sendgroup.go)
		}
		msgs = append(msgs, m)
	}
	b.flushSends(c) // earlier sends of this connection land first
	return b.putAndReply(c, req, msgs)
}

// putAndReply stores msgs and answers the send once the flush policy allows.
func (b *Broker) putAndReply(c *remoting.Conn, req *remoting.Command, msgs []*message.Message) *remoting.Command {
	for _, m := range msgs {
		// Java's timer hook applies to single messages only: timer properties in a batch are ignored.
		if req.Code != remoting.SendBatchMessage {
			if err := b.applyTimer(m); err != nil {
				return remoting.Errorf(req, remoting.MessageIllegal, "%v", err)
			}
		}
		b.applyDelay(m)
	}
	res, end, err := b.st.Put(msgs)
	if err != nil {
		return b.putError(req, err)
	}
	if req.Code != remoting.ConsumerSendMsgBack {
		b.opts.Counters.noteIn(msgs)
	}
	return b.whenFlushedReply(c, req, b.sendResponse(req, msgs, res), end)
}

// sendResponse is the success answer to a send whose msgs were stored at res.
func (b *Broker) sendResponse(req *remoting.Command, msgs []*message.Message, res []store.PutResult) *remoting.Command {
	resp := remoting.NewResponse(req, remoting.Success, "")
	msgID := res[0].MsgID
	if len(res) > 1 {
		ids := make([]string, len(res))
		for i, r := range res {
			ids[i] = r.MsgID
		}
		msgID = strings.Join(ids, ",")
	}
	resp.SetExt("msgId", msgID)
	if msgs[0].Topic == mqmeta.HalfTopic {
		resp.SetExt("transactionId", message.Property(msgs[0].Properties, message.PropUniqKey))
	}
	resp.SetExt("queueId", strconv.Itoa(int(msgs[0].QueueID)))
	resp.SetExt("queueOffset", strconv.FormatInt(res[0].QueueOffset, 10))
	resp.SetExt(propMsgRegion, "DefaultRegion")
	resp.SetExt(propTraceOn, "true")
	return resp
}

// whenFlushedReply answers req with resp once the log is durable up to end: it returns resp when that is already
// so, and otherwise writes it from the flusher and returns nil (always nil for oneway requests).
func (b *Broker) whenFlushedReply(c *remoting.Conn, req, resp *remoting.Command, end int64) *remoting.Command {
	oneway := req.IsOneway()
	// WhenFlushed runs the callback at once (async mode, or already durable) or later from the flusher. Whoever
	// loses the race on state answers: the handler by returning the response, the callback by writing it.
	var state atomic.Int32 // 0 running, 1 handler returned, 2 callback ran first
	var answer atomic.Pointer[remoting.Command]
	b.st.WhenFlushed(end, func(err error) {
		r := resp
		if err != nil {
			r = remoting.Errorf(req, remoting.SystemError, "message stored but not flushed to disk: %v", err)
		}
		answer.Store(r)
		if !state.CompareAndSwap(0, 2) && !oneway {
			_ = c.Reply(req, r)
		}
	})
	if state.CompareAndSwap(0, 1) || oneway {
		return nil
	}
	return answer.Load()
}

func (b *Broker) putError(req *remoting.Command, err error) *remoting.Command {
	switch {
	case errors.Is(err, store.ErrDiskFull):
		b.log.Error("send refused: disk full", "err", err)
		return remoting.Errorf(req, remoting.ServiceNotAvailable, "service not available now: the broker's disk is full (%v)", err)
	case errors.Is(err, message.ErrCorrupt):
		return remoting.Errorf(req, remoting.MessageIllegal, "%v", err)
	}
	b.log.Error("send failed", "err", err)
	return remoting.Errorf(req, remoting.SystemError, "store failed: %v", err)
}

// applyDelay reroutes a message with a DELAY level into the schedule topic (queue = level-1), keeping its real
// topic and queue in REAL_TOPIC / REAL_QID.
func (b *Broker) applyDelay(m *message.Message) {
	level := message.DelayLevel(m.Properties)
	if level <= 0 || m.Topic == mqmeta.ScheduleTopic || m.Topic == mqmeta.HalfTopic || m.Topic == mqmeta.TimerTopic {
		return
	}
	if level > len(b.opts.DelayLevels) {
		level = len(b.opts.DelayLevels)
	}
	props := message.ParseProperties(m.Properties)
	props[message.PropDelayLevel] = strconv.Itoa(level)
	props[message.PropRealTopic] = m.Topic
	props[message.PropRealQueueID] = strconv.Itoa(int(m.QueueID))
	m.Properties = message.FormatProperties(props)
	m.Topic = mqmeta.ScheduleTopic
	m.QueueID = int32(level - 1)
}

// handleSendBack moves a message the consumer failed to process into %RETRY%<group> with the next delay level,
// or into %DLQ%<group> once it has been reconsumed maxReconsumeTimes times (or the client asks with level < 0).
func (b *Broker) handleSendBack(c *remoting.Conn, req *remoting.Command) *remoting.Command {
	f := req.ReadFields()
	group := f.String("group")
	offset := f.Int64("offset")
	delayLevel := int(f.OptInt32("delayLevel", 0))
	originMsgID := f.OptString("originMsgId")
	originTopic := f.OptString("originTopic")
	maxTimes := f.OptInt32("maxReconsumeTimes", -1)
	if f.Err != nil {
		return remoting.Errorf(req, remoting.SystemError, "send back: %v", f.Err)
	}
	if maxTimes < 0 {
		maxTimes = 16
		if g, ok := b.cfg.group(group); ok && g.RetryMaxTimes > 0 {
			maxTimes = int32(g.RetryMaxTimes)
		}
	}
	orig, _, err := b.st.ReadMessage(offset)
	if err != nil {
		return remoting.Errorf(req, remoting.SystemError, "look up message at commit-log offset %d: %v", offset, err)
	}
	props := message.ParseProperties(orig.Properties)
	if props[message.PropRetryTopic] == "" {
		rt := orig.Topic
		if originTopic != "" && strings.HasPrefix(orig.Topic, mqmeta.RetryPrefix) {
			rt = originTopic
		}
		props[message.PropRetryTopic] = rt
	}
	if originMsgID == "" {
		originMsgID = props[message.PropOriginMessageID]
	}
	if originMsgID == "" {
		originMsgID = message.OffsetMsgID(orig.StoreHost, orig.PhysicalOffset)
	}
	props[message.PropOriginMessageID] = originMsgID
	delete(props, message.PropDelayLevel)
	m := &message.Message{Flag: orig.Flag, SysFlag: orig.SysFlag, BornTimestamp: orig.BornTimestamp,
		BornHost: orig.BornHost, ReconsumeTimes: orig.ReconsumeTimes + 1, Body: orig.Body}
	if int32(orig.ReconsumeTimes) >= maxTimes || delayLevel < 0 {
		m.Topic = mqmeta.DLQPrefix + group
		props[message.PropDLQOriginTopic] = props[message.PropRetryTopic]
		props[message.PropDLQOriginMsgID] = originMsgID
		b.log.Info("message dead-lettered", "group", group, "reconsumeTimes", orig.ReconsumeTimes, "originMsgId", originMsgID)
	} else {
		m.Topic = mqmeta.RetryPrefix + group
		if delayLevel == 0 {
			delayLevel = 3 + int(orig.ReconsumeTimes)
		}
		props[message.PropDelayLevel] = strconv.Itoa(delayLevel)
	}
	if _, ok := b.systemTopic(m.Topic); !ok {
		return remoting.Errorf(req, remoting.SystemError, "topic %s cannot be created", m.Topic)
	}
	m.Properties = message.FormatProperties(props)
	resp := b.putAndReply(c, req, []*message.Message{m})
	if strings.HasPrefix(m.Topic, mqmeta.DLQPrefix) && (resp == nil || resp.Code == remoting.Success) {
		b.opts.Counters.noteDLQ(props[message.PropDLQOriginTopic], group)
	}
	return resp
}

const (
	propReplyToClient = "REPLY_TO_CLIENT"
	propCluster       = "CLUSTER"
	// propMsgRegion and propTraceOn are Java's PROPERTY_MSG_REGION and PROPERTY_TRACE_SWITCH.
	propMsgRegion = "MSG_REGION"
	propTraceOn   = "TRACE_ON"
)

// pushReply hands a reply (SEND_REPLY_MESSAGE) to the requesting client's connection as PUSH_REPLY_MESSAGE_TO_CLIENT;
// the reply is also stored like any message.
func (b *Broker) pushReply(req *remoting.Command, h sendHeader, m *message.Message) *remoting.Command {
	to := message.Property(m.Properties, propReplyToClient)
	c := b.clients.connOf(to)
	if c == nil {
		return remoting.Errorf(req, remoting.SystemError, "reply: client %q (REPLY_TO_CLIENT) is not connected", to)
	}
	push := remoting.NewRequest(remoting.PushReplyMessageToClient, map[string]string{
		"producerGroup": h.producerGroup, "topic": m.Topic, "defaultTopic": h.defaultTopic,
		"defaultTopicQueueNums": strconv.Itoa(int(h.defaultQueueNums)), "queueId": strconv.Itoa(int(m.QueueID)),
		"sysFlag": strconv.Itoa(int(m.SysFlag)), "bornTimestamp": strconv.FormatInt(m.BornTimestamp, 10),
		"flag": strconv.Itoa(int(m.Flag)), "properties": m.Properties, "reconsumeTimes": strconv.Itoa(int(m.ReconsumeTimes)),
		"unitMode": "false", "bornHost": m.BornHost.String(), "storeHost": b.opts.Addr,
		"storeTimestamp": strconv.FormatInt(b.clock.Now().UnixMilli(), 10)}, m.Body)
	if err := c.Send(push); err != nil {
		return remoting.Errorf(req, remoting.SystemError, "reply: push to %s: %v", to, err)
	}
	return nil
}
