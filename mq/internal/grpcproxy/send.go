package grpcproxy

import (
	"context"
	"crypto/md5"
	"encoding/hex"
	"errors"
	"fmt"
	"net/netip"
	"strconv"
	"strings"
	"time"
	"unicode"

	v2 "github.com/apache/rocketmq-clients/golang/v5/protocol/v2"
	"google.golang.org/grpc/peer"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/tide-run/tide/mq/internal/store"
	"github.com/tide-run/tide/mq/message"
	"github.com/tide-run/tide/mq/mqmeta"
)

// Limits of Apache's proxy (ProxyConfig defaults).
const (
	maxUserProperties    = 128
	maxUserPropertyBytes = 16 << 10
	maxMessageGroupBytes = 64
	// maxDeliveryDelay is how far ahead a 5.x delivery timestamp may be (maxDelayTimeMills): the proxy refuses more
	// with ILLEGAL_DELIVERY_TIME before the broker's own, longer limit (the broker's MaxTimerDelay, 3 days, for 4.x
	// clients' TIMER_* properties) is reached.
	maxDeliveryDelay = 24 * time.Hour
)

type sendError struct {
	code v2.Code
	msg  string
}

func (e *sendError) Error() string { return e.msg }

func sendErr(code v2.Code, format string, args ...any) error {
	return &sendError{code: code, msg: fmt.Sprintf(format, args...)}
}

// SendMessage stores the request's messages (one topic; Apache's proxy sends them as one batch to one queue).
// The producer group of a transactional message is its topic, as in Apache's proxy, so checks reach whoever
// publishes the topic.
func (s *Server) SendMessage(ctx context.Context, req *v2.SendMessageRequest) (*v2.SendMessageResponse, error) {
	entries, err := s.send(ctx, req)
	if err != nil {
		st := status(v2.Code_INTERNAL_SERVER_ERROR, "%v", err)
		var se *sendError
		if errors.As(err, &se) {
			st = status(se.code, "%s", se.msg)
		} else if errors.Is(err, store.ErrDiskFull) {
			st = status(v2.Code_INTERNAL_SERVER_ERROR, "service not available now: the broker's disk is full (%v)", err)
		}
		return &v2.SendMessageResponse{Status: st}, nil
	}
	return &v2.SendMessageResponse{Status: statusOK, Entries: entries}, nil
}

func (s *Server) send(ctx context.Context, req *v2.SendMessageRequest) ([]*v2.SendResultEntry, error) {
	if len(req.GetMessages()) == 0 {
		return nil, sendErr(v2.Code_MESSAGE_CORRUPTED, "no message to send")
	}
	first := req.GetMessages()[0]
	topic := first.GetTopic().GetName()
	if msg := badTopic(topic); msg != "" {
		return nil, sendErr(v2.Code_ILLEGAL_TOPIC, "%s", msg)
	}
	t, ok := s.b.Topic(topic)
	if !ok {
		return nil, sendErr(v2.Code_TOPIC_NOT_FOUND, "topic %s not found", topic)
	}
	if t.Perm&mqmeta.PermWrite == 0 {
		return nil, sendErr(v2.Code_FORBIDDEN, "the topic[%s] sending message is forbidden", topic)
	}
	born := bornAddr(ctx)
	msgs := make([]*message.Message, 0, len(req.GetMessages()))
	half := first.GetSystemProperties().GetMessageType() == v2.MessageType_TRANSACTION
	for _, pm := range req.GetMessages() {
		if pm.GetTopic().GetName() != topic {
			return nil, sendErr(v2.Code_MESSAGE_CORRUPTED, "topic in message is not same")
		}
		m, err := s.toStored(pm, topic, born)
		if err != nil {
			return nil, err
		}
		props := message.ParseProperties(m.Properties)
		if got, want := messageTypeOf(props), t.MessageType(); want != mqmeta.MessageTypeMixed && got != want {
			return nil, sendErr(v2.Code_MESSAGE_PROPERTY_CONFLICT_WITH_TYPE,
				"TopicMessageType validate failed, the expected type is %s, but actual type is %s", want, got)
		}
		msgs = append(msgs, m)
	}
	if half && len(msgs) > 1 {
		return nil, sendErr(v2.Code_MESSAGE_CORRUPTED, "batch messages cannot be transactional")
	}
	// Queue: by message group (so a group keeps its order), else round robin.
	var qid int32
	if g := first.GetSystemProperties().GetMessageGroup(); g != "" && len(msgs) == 1 {
		qid = int32(uint32(javaHash(g)) % uint32(t.WriteQueueNums))
	} else {
		qid = int32(s.rr.Add(1) % uint64(t.WriteQueueNums))
	}
	for _, m := range msgs {
		m.QueueID = qid
	}
	res, err := s.b.Put(ctx, msgs, half)
	if err != nil {
		if errors.Is(err, message.ErrCorrupt) {
			return nil, sendErr(v2.Code_MESSAGE_CORRUPTED, "%v", err)
		}
		if strings.Contains(err.Error(), "timer") {
			return nil, sendErr(v2.Code_ILLEGAL_DELIVERY_TIME, "%v", err)
		}
		return nil, err
	}
	out := make([]*v2.SendResultEntry, len(res))
	for i, r := range res {
		e := &v2.SendResultEntry{Status: statusOK, MessageId: req.GetMessages()[i].GetSystemProperties().GetMessageId(),
			Offset: r.QueueOffset}
		if half {
			e.TransactionId = txID(r.Pos, r.QueueOffset)
		}
		out[i] = e
	}
	return out, nil
}

// toStored maps a 5.x message to the stored form both protocols read (Apache's SendMessageActivity mapping).
func (s *Server) toStored(pm *v2.Message, topic string, born netip.AddrPort) (*message.Message, error) {
	sp := pm.GetSystemProperties()
	body := pm.GetBody()
	if len(body) == 0 {
		return nil, sendErr(v2.Code_MESSAGE_BODY_EMPTY, "message body cannot be empty")
	}
	if len(body) > s.b.MaxMessageSize() {
		return nil, sendErr(v2.Code_MESSAGE_BODY_TOO_LARGE, "message body cannot exceed the max %d", s.b.MaxMessageSize())
	}
	up := pm.GetUserProperties()
	if len(up) > maxUserProperties {
		return nil, sendErr(v2.Code_MESSAGE_PROPERTIES_TOO_LARGE, "too many user properties, max is %d", maxUserProperties)
	}
	props := make(map[string]string, len(up)+8)
	size := 0
	for k, v := range up {
		if message.IsSystemProperty(k) {
			return nil, sendErr(v2.Code_ILLEGAL_MESSAGE_PROPERTY_KEY, "property is used by system: %s", k)
		}
		if hasControl(k) || k == "" {
			return nil, sendErr(v2.Code_ILLEGAL_MESSAGE_PROPERTY_KEY, "the key of property cannot contain control character")
		}
		if hasControl(v) {
			return nil, sendErr(v2.Code_ILLEGAL_MESSAGE_PROPERTY_KEY, "the value of property cannot contain control character")
		}
		size += len(k) + len(v)
		props[k] = v
	}
	if tag := sp.GetTag(); tag != "" {
		switch {
		case strings.TrimSpace(tag) == "":
			return nil, sendErr(v2.Code_ILLEGAL_MESSAGE_TAG, "tag cannot be the char sequence of whitespace")
		case strings.Contains(tag, "|"):
			return nil, sendErr(v2.Code_ILLEGAL_MESSAGE_TAG, "tag cannot contain '|'")
		case hasControl(tag):
			return nil, sendErr(v2.Code_ILLEGAL_MESSAGE_TAG, "tag cannot contain control character")
		}
		props[message.PropTags] = tag
		size += len(tag)
	}
	if keys := sp.GetKeys(); len(keys) > 0 {
		for _, k := range keys {
			if k != "" && strings.TrimSpace(k) == "" {
				return nil, sendErr(v2.Code_ILLEGAL_MESSAGE_KEY, "key cannot be the char sequence of whitespace")
			}
			if hasControl(k) {
				return nil, sendErr(v2.Code_ILLEGAL_MESSAGE_KEY, "key cannot contain control character")
			}
			size += len(k)
		}
		props[message.PropKeys] = strings.Join(keys, " ")
	}
	if size > maxUserPropertyBytes {
		return nil, sendErr(v2.Code_MESSAGE_PROPERTIES_TOO_LARGE, "the total size of user property is too large, max is %d", maxUserPropertyBytes)
	}
	if strings.TrimSpace(sp.GetMessageId()) == "" {
		return nil, sendErr(v2.Code_ILLEGAL_MESSAGE_ID, "message id cannot be empty")
	}
	props[message.PropUniqKey] = sp.GetMessageId()
	if sp.GetMessageType() == v2.MessageType_TRANSACTION {
		props[message.PropTxPrepared] = "true"
		props[message.PropProducerGroup] = topic
		if d := sp.GetOrphanedTransactionRecoveryDuration(); d != nil {
			props[message.PropCheckImmunitySec] = strconv.FormatInt(int64(d.AsDuration().Seconds()), 10)
		}
	}
	if ts := sp.GetDeliveryTimestamp(); ts != nil {
		ms := ts.AsTime().UnixMilli()
		now := s.b.Clock().Now()
		if ms-now.UnixMilli() > maxDeliveryDelay.Milliseconds() {
			return nil, sendErr(v2.Code_ILLEGAL_DELIVERY_TIME, "the max delay time of message is too large, max is %d", maxDeliveryDelay.Milliseconds())
		}
		props[message.PropTimerDeliverMS] = strconv.FormatInt(ms, 10)
	}
	props[message.PropReconsumeTime] = strconv.Itoa(int(sp.GetDeliveryAttempt()))
	if g := sp.GetMessageGroup(); g != "" {
		if strings.TrimSpace(g) == "" {
			return nil, sendErr(v2.Code_ILLEGAL_MESSAGE_GROUP, "message group cannot be the char sequence of whitespace")
		}
		if len(g) >= maxMessageGroupBytes {
			return nil, sendErr(v2.Code_ILLEGAL_MESSAGE_GROUP, "message group exceed the max size %d", maxMessageGroupBytes)
		}
		if hasControl(g) {
			return nil, sendErr(v2.Code_ILLEGAL_MESSAGE_GROUP, "message group cannot contain control character")
		}
		props[message.PropShardingKey] = g
	}
	if tc := sp.GetTraceContext(); tc != "" {
		props[message.PropTraceContext] = tc
	}
	if bh := sp.GetBornHost(); bh != "" {
		props[message.PropBornHost] = bh
	}
	bornTS := s.b.Clock().Now().UnixMilli()
	if ts := sp.GetBornTimestamp(); ts != nil && ts.IsValid() {
		bornTS = ts.AsTime().UnixMilli()
		props[message.PropBornTimestamp] = strconv.FormatInt(bornTS, 10)
	}
	var sysFlag int32
	if sp.GetBodyEncoding() == v2.Encoding_GZIP {
		sysFlag |= message.FlagCompressed
	}
	return &message.Message{Topic: topic, SysFlag: sysFlag, BornTimestamp: bornTS, BornHost: born, Body: body,
		Properties: message.FormatProperties(props)}, nil
}

// messageTypeOf classifies stored properties as Java's TopicMessageType.parseFromMessageProperty does.
func messageTypeOf(props map[string]string) string {
	switch {
	case props[message.PropTxPrepared] == "true":
		return mqmeta.MessageTypeTransaction
	case props[message.PropDelayLevel] != "" || props[message.PropTimerDeliverMS] != "" ||
		props[message.PropTimerDelaySec] != "" || props[message.PropTimerDelayMS] != "":
		return mqmeta.MessageTypeDelay
	case props[message.PropShardingKey] != "":
		return mqmeta.MessageTypeFIFO
	}
	return mqmeta.MessageTypeNormal
}

func hasControl(s string) bool {
	for _, r := range s {
		if unicode.IsControl(r) {
			return true
		}
	}
	return false
}

// javaHash is Java's String.hashCode (UTF-16 code units), so a message group maps to a queue the same way for
// clients that compute it themselves.
func javaHash(s string) int32 {
	var h int32
	for _, r := range s {
		if r >= 0x10000 {
			r -= 0x10000
			h = 31*h + int32(0xD800+(r>>10))
			h = 31*h + int32(0xDC00+(r&0x3FF))
			continue
		}
		h = 31*h + int32(r)
	}
	return h
}

func bornAddr(ctx context.Context) netip.AddrPort {
	if p, ok := peer.FromContext(ctx); ok && p.Addr != nil {
		if ap, err := netip.ParseAddrPort(p.Addr.String()); err == nil {
			return netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port())
		}
	}
	return netip.AddrPortFrom(netip.IPv4Unspecified(), 0)
}

// txID names a half message: its commit-log position and half-queue offset.
func txID(pos, halfOff int64) string { return fmt.Sprintf("%016X%016X", pos, halfOff) }

func parseTxID(id string) (pos, halfOff int64, ok bool) {
	if len(id) != 32 {
		return 0, 0, false
	}
	p, err1 := strconv.ParseUint(id[:16], 16, 64)
	h, err2 := strconv.ParseUint(id[16:], 16, 64)
	return int64(p), int64(h), err1 == nil && err2 == nil
}

// EndTransaction commits or rolls back a half message; the producer group is the topic (see SendMessage).
func (s *Server) EndTransaction(ctx context.Context, req *v2.EndTransactionRequest) (*v2.EndTransactionResponse, error) {
	topic := req.GetTopic().GetName()
	if msg := badTopic(topic); msg != "" {
		return &v2.EndTransactionResponse{Status: status(v2.Code_ILLEGAL_TOPIC, "%s", msg)}, nil
	}
	if strings.TrimSpace(req.GetTransactionId()) == "" {
		return &v2.EndTransactionResponse{Status: status(v2.Code_INVALID_TRANSACTION_ID, "transaction id cannot be empty")}, nil
	}
	pos, halfOff, ok := parseTxID(req.GetTransactionId())
	if !ok {
		return &v2.EndTransactionResponse{Status: status(v2.Code_INVALID_TRANSACTION_ID, "transaction id %q is not one this broker issued", req.GetTransactionId())}, nil
	}
	var commit bool
	switch req.GetResolution() {
	case v2.TransactionResolution_COMMIT:
		commit = true
	case v2.TransactionResolution_ROLLBACK:
	default:
		return &v2.EndTransactionResponse{Status: statusOK}, nil // unknown: the broker asks again later
	}
	if err := s.b.EndTransaction(topic, halfOff, pos, commit, req.GetSource() == v2.TransactionSource_SOURCE_SERVER_CHECK); err != nil {
		return &v2.EndTransactionResponse{Status: status(v2.Code_INVALID_TRANSACTION_ID, "%v", err)}, nil
	}
	return &v2.EndTransactionResponse{Status: statusOK}, nil
}

// checkTransaction asks one connected 5.x producer of the half message's topic about it, on its Telemetry stream.
func (s *Server) checkTransaction(m *message.Message, halfOff int64) bool {
	props := message.ParseProperties(m.Properties)
	topic := props[message.PropRealTopic]
	if props[message.PropProducerGroup] != topic {
		return false // a remoting producer group
	}
	ps := s.clients.producersOf(topic)
	if len(ps) == 0 {
		return false
	}
	out := *m
	out.Topic = topic
	if q, err := strconv.Atoi(props[message.PropRealQueueID]); err == nil {
		out.QueueID = int32(q)
	}
	pm := s.toV2(&out, "", 0, 0)
	cmd := &v2.TelemetryCommand{Command: &v2.TelemetryCommand_RecoverOrphanedTransactionCommand{
		RecoverOrphanedTransactionCommand: &v2.RecoverOrphanedTransactionCommand{Message: pm,
			TransactionId: txID(m.PhysicalOffset, halfOff)}}}
	c := ps[int(halfOff)%len(ps)]
	if err := c.send(cmd); err != nil {
		s.log.Warn("transaction check not sent", "client", c.id, "err", err)
		return false
	}
	return true
}

// toV2 maps a stored message to a 5.x message (Apache's GrpcConverter.buildMessage). handle and attempt are
// set for received messages.
func (s *Server) toV2(m *message.Message, handle string, attempt int32, invisibleMS int64) *v2.Message {
	props := message.ParseProperties(m.Properties)
	topic := m.Topic
	if rt := props[message.PropRetryTopic]; rt != "" && mqmeta.IsRetryTopic(topic) {
		topic = rt
	}
	up := map[string]string{}
	for k, v := range props {
		if !message.IsSystemProperty(k) {
			up[k] = v
		}
	}
	sum := md5.Sum(m.Body)
	sp := &v2.SystemProperties{
		MessageId:      props[message.PropUniqKey],
		BodyDigest:     &v2.Digest{Type: v2.DigestType_MD5, Checksum: strings.ToUpper(hex.EncodeToString(sum[:]))},
		BodyEncoding:   v2.Encoding_IDENTITY,
		MessageType:    v2.MessageType_NORMAL,
		BornTimestamp:  timestamppb.New(msTime(m.BornTimestamp)),
		BornHost:       props[message.PropBornHost],
		StoreTimestamp: timestamppb.New(msTime(m.StoreTimestamp)),
		StoreHost:      m.StoreHost.String(),
		QueueId:        m.QueueID,
		QueueOffset:    proto.Int64(m.QueueOffset),
	}
	if sp.MessageId == "" {
		sp.MessageId = message.OffsetMsgID(m.StoreHost, m.PhysicalOffset)
	}
	if sp.BornHost == "" {
		sp.BornHost = m.BornHost.String()
	}
	if m.SysFlag&message.FlagCompressed != 0 {
		sp.BodyEncoding = v2.Encoding_GZIP // Apache's name for it; clients detect zlib and gzip alike
	}
	switch messageTypeOf(props) {
	case mqmeta.MessageTypeTransaction:
		sp.MessageType = v2.MessageType_TRANSACTION
	case mqmeta.MessageTypeDelay:
		sp.MessageType = v2.MessageType_DELAY
	case mqmeta.MessageTypeFIFO:
		sp.MessageType = v2.MessageType_FIFO
	}
	if tag, ok := props[message.PropTags]; ok {
		sp.Tag = proto.String(tag)
	}
	if keys := props[message.PropKeys]; keys != "" {
		sp.Keys = strings.Fields(keys)
	}
	if v := props[message.PropTimerDeliverMS]; v != "" {
		if ms, err := strconv.ParseInt(v, 10, 64); err == nil {
			sp.DeliveryTimestamp = timestamppb.New(msTime(ms))
		}
	}
	if g := props[message.PropShardingKey]; g != "" {
		sp.MessageGroup = proto.String(g)
	}
	if tc := props[message.PropTraceContext]; tc != "" {
		sp.TraceContext = proto.String(tc)
	}
	if handle != "" {
		sp.ReceiptHandle = proto.String(handle)
		sp.DeliveryAttempt = proto.Int32(attempt)
		sp.InvisibleDuration = durationMS(invisibleMS)
	}
	return &v2.Message{Topic: &v2.Resource{Name: topic}, UserProperties: up, SystemProperties: sp, Body: m.Body}
}
