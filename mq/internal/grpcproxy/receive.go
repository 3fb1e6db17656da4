package grpcproxy

import (
	"context"
	"errors"
	"time"

	v2 "github.com/apache/rocketmq-clients/golang/v5/protocol/v2"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/tide-run/tide/mq/mqmeta"
)

// ReceiveMessage long-polls for visible messages of the request's topic (every queue: POP consumption ignores the
// queue id, as Apache's does) and streams status, messages and a delivery timestamp.
func (s *Server) ReceiveMessage(req *v2.ReceiveMessageRequest, stream v2.MessagingService_ReceiveMessageServer) error {
	ctx := stream.Context()
	st, msgs := s.receive(ctx, req)
	if err := stream.Send(&v2.ReceiveMessageResponse{Content: &v2.ReceiveMessageResponse_Status{Status: st}}); err != nil {
		s.nack(req.GetGroup().GetName(), msgs)
		return err
	}
	for i, m := range msgs {
		if err := stream.Send(&v2.ReceiveMessageResponse{Content: &v2.ReceiveMessageResponse_Message{Message: m}}); err != nil {
			s.nack(req.GetGroup().GetName(), msgs[i:])
			return err
		}
	}
	return stream.Send(&v2.ReceiveMessageResponse{Content: &v2.ReceiveMessageResponse_DeliveryTimestamp{
		DeliveryTimestamp: timestamppb.New(s.b.Clock().Now())}})
}

// nack makes messages that could not be written visible again in a second (Apache's NACK_INVISIBLE_TIME).
func (s *Server) nack(group string, msgs []*v2.Message) {
	for _, m := range msgs {
		if h, ok := decodeHandle(group, m.GetSystemProperties().GetReceiptHandle()); ok {
			_, _ = s.pop.change(h, time.Second)
		}
	}
}

func (s *Server) receive(ctx context.Context, req *v2.ReceiveMessageRequest) (*v2.Status, []*v2.Message) {
	id := clientIDOf(ctx)
	c := s.clients.get(id, false)
	var set *v2.Settings
	if c != nil {
		c.mu.Lock()
		set = c.settings
		c.mu.Unlock()
	}
	if set == nil || set.GetSubscription() == nil {
		return status(v2.Code_UNRECOGNIZED_CLIENT_TYPE, "cannot find client settings for this client"), nil
	}
	topic, group := req.GetMessageQueue().GetTopic().GetName(), req.GetGroup().GetName()
	if msg := badTopic(topic); msg != "" {
		return status(v2.Code_ILLEGAL_TOPIC, "%s", msg), nil
	}
	if msg := badGroup(group); msg != "" {
		return status(v2.Code_ILLEGAL_CONSUMER_GROUP, "%s", msg), nil
	}
	now := s.b.Clock().Now()
	// Polling time: the request's, else what the deadline leaves after half the request timeout; clamped.
	remaining := s.opts.MaxPolling + 10*time.Second
	if dl, ok := ctx.Deadline(); ok {
		remaining = time.Until(dl)
	}
	var polling time.Duration
	if req.GetLongPollingTimeout() != nil {
		polling = req.GetLongPollingTimeout().AsDuration()
	} else {
		polling = remaining - set.GetRequestTimeout().AsDuration()/2
	}
	polling = min(max(polling, s.opts.MinPolling), s.opts.MaxPolling)
	if polling > remaining {
		if remaining < s.opts.MinPolling {
			return status(v2.Code_ILLEGAL_POLLING_TIME, "The deadline time remaining is not enough for polling, please check network condition"), nil
		}
		polling = remaining
	}
	invisible := req.GetInvisibleDuration().AsDuration()
	if req.GetAutoRenew() {
		invisible = s.opts.AutoRenewInvisible
	} else if invisible < s.opts.MinInvisible {
		return status(v2.Code_ILLEGAL_INVISIBLE_TIME, "the invisibleTime is too small. min is %d", s.opts.MinInvisible.Milliseconds()), nil
	} else if invisible > s.opts.MaxInvisible {
		return status(v2.Code_ILLEGAL_INVISIBLE_TIME, "the invisibleTime is too large. max is %d", s.opts.MaxInvisible.Milliseconds()), nil
	}
	f, err := compileFilter(req.GetFilterExpression())
	if err != nil {
		return status(v2.Code_ILLEGAL_FILTER_EXPRESSION, "%v", err), nil
	}
	t, ok := s.b.Topic(topic)
	if !ok {
		return status(v2.Code_TOPIC_NOT_FOUND, "topic %s not found", topic), nil
	}
	if t.Perm&mqmeta.PermRead == 0 {
		return status(v2.Code_FORBIDDEN, "the topic[%s] consuming message is forbidden", topic), nil
	}
	g := s.groupConfig(group)
	if !g.ConsumeEnable && g.GroupName != "" {
		return status(v2.Code_FORBIDDEN, "the consumer group[%s] is not allowed to consume", group), nil
	}
	batch := int(req.GetBatchSize())
	if batch <= 0 {
		batch = 32
	}
	rq := receiveReq{group: group, topic: topic, filter: f, batch: min(batch, maxReceiveBatch), invisible: invisible,
		fifo: g.ConsumeMessageOrderly, maxAttempts: int32(g.RetryMaxTimes + 1)}
	if req.GetAutoRenew() {
		rq.renewFor = clientIDOf(ctx)
	}
	end := now.Add(polling)
	for {
		arrived := s.notify.wait(topic)
		retried := s.notify.wait(mqmeta.RetryTopic(group))
		ds, wake, err := s.pop.receive(ctx, rq)
		if len(ds) > 0 {
			out := make([]*v2.Message, len(ds))
			for i, d := range ds {
				out[i] = s.toV2(d.m, d.handle, d.attempt, invisible.Milliseconds())
			}
			return statusOK, out
		}
		if err != nil {
			if errors.Is(err, errTopicGone) {
				return status(v2.Code_TOPIC_NOT_FOUND, "topic %s not found", topic), nil
			}
			return status(v2.Code_INTERNAL_SERVER_ERROR, "%v", err), nil
		}
		now = s.b.Clock().Now()
		if !now.Before(end) {
			return status(v2.Code_MESSAGE_NOT_FOUND, "no new message"), nil
		}
		until := end
		if !wake.IsZero() && wake.Before(until) {
			until = wake
		}
		timer := s.b.Clock().NewTimer(until.Sub(now) + time.Millisecond)
		select {
		case <-arrived:
		case <-retried:
		case <-timer.C():
		case <-ctx.Done():
			timer.Stop()
			return status(v2.Code_MESSAGE_NOT_FOUND, "no new message"), nil
		case <-s.stop:
			timer.Stop()
			return status(v2.Code_MESSAGE_NOT_FOUND, "no new message"), nil
		}
		timer.Stop()
	}
}

// maxReceiveBatch caps one receive's messages (Apache's pop takes at most 32); maxReceiveBytes their bodies, so a
// receive's memory is bounded whatever the batch size asked.
const (
	maxReceiveBatch = 32
	maxReceiveBytes = 8 << 20
)

func handleStatus(err error) *v2.Status {
	switch {
	case err == nil:
		return statusOK
	case errors.Is(err, errHandleExpired), errors.Is(err, errHandleStale):
		return status(v2.Code_INVALID_RECEIPT_HANDLE, "%v", err)
	}
	return status(v2.Code_INTERNAL_SERVER_ERROR, "%v", err)
}

// AckMessage acknowledges received messages by receipt handle.
func (s *Server) AckMessage(ctx context.Context, req *v2.AckMessageRequest) (*v2.AckMessageResponse, error) {
	group := req.GetGroup().GetName()
	if msg := badTopic(req.GetTopic().GetName()); msg != "" {
		return &v2.AckMessageResponse{Status: status(v2.Code_ILLEGAL_TOPIC, "%s", msg)}, nil
	}
	if msg := badGroup(group); msg != "" {
		return &v2.AckMessageResponse{Status: status(v2.Code_ILLEGAL_CONSUMER_GROUP, "%s", msg)}, nil
	}
	resp := &v2.AckMessageResponse{}
	codes := map[v2.Code]bool{}
	for _, e := range req.GetEntries() {
		st := status(v2.Code_INVALID_RECEIPT_HANDLE, "receipt handle is invalid")
		if h, ok := decodeHandle(group, e.GetReceiptHandle()); ok {
			st = handleStatus(s.pop.ack(h))
			if st.Code == v2.Code_OK {
				s.notify.arrived(req.GetTopic().GetName(), 0) // a FIFO queue may be free now
			}
		}
		codes[st.Code] = true
		resp.Entries = append(resp.Entries, &v2.AckMessageResultEntry{MessageId: e.GetMessageId(), ReceiptHandle: e.GetReceiptHandle(), Status: st})
	}
	resp.Status = combined(codes, "ack message result is empty")
	return resp, nil
}

func combined(codes map[v2.Code]bool, empty string) *v2.Status {
	switch len(codes) {
	case 0:
		return status(v2.Code_INTERNAL_SERVER_ERROR, "%s", empty)
	case 1:
		for c := range codes {
			return status(c, "")
		}
	}
	return status(v2.Code_MULTIPLE_RESULTS, "")
}

// ChangeInvisibleDuration sets a received message's remaining invisible time (a push consumer's nack uses it for
// its retry backoff) and returns its new receipt handle.
func (s *Server) ChangeInvisibleDuration(ctx context.Context, req *v2.ChangeInvisibleDurationRequest) (*v2.ChangeInvisibleDurationResponse, error) {
	group := req.GetGroup().GetName()
	if msg := badTopic(req.GetTopic().GetName()); msg != "" {
		return &v2.ChangeInvisibleDurationResponse{Status: status(v2.Code_ILLEGAL_TOPIC, "%s", msg)}, nil
	}
	if msg := badGroup(group); msg != "" {
		return &v2.ChangeInvisibleDurationResponse{Status: status(v2.Code_ILLEGAL_CONSUMER_GROUP, "%s", msg)}, nil
	}
	d := req.GetInvisibleDuration().AsDuration()
	if d < 0 || d > s.opts.MaxInvisible {
		return &v2.ChangeInvisibleDurationResponse{Status: status(v2.Code_ILLEGAL_INVISIBLE_TIME, "the invisibleTime is too large. max is %d", s.opts.MaxInvisible.Milliseconds())}, nil
	}
	h, ok := decodeHandle(group, req.GetReceiptHandle())
	if !ok {
		return &v2.ChangeInvisibleDurationResponse{Status: status(v2.Code_INVALID_RECEIPT_HANDLE, "receipt handle is invalid")}, nil
	}
	nh, err := s.pop.change(h, d)
	if err != nil {
		return &v2.ChangeInvisibleDurationResponse{Status: handleStatus(err)}, nil
	}
	s.notify.arrived(req.GetTopic().GetName(), 0) // waiting receives recompute when something lapses
	return &v2.ChangeInvisibleDurationResponse{Status: statusOK, ReceiptHandle: nh}, nil
}

// ForwardMessageToDeadLetterQueue moves a received message to the group's %DLQ% topic (a push consumer gives up
// after its max attempts) and acknowledges it.
func (s *Server) ForwardMessageToDeadLetterQueue(ctx context.Context, req *v2.ForwardMessageToDeadLetterQueueRequest) (*v2.ForwardMessageToDeadLetterQueueResponse, error) {
	group := req.GetGroup().GetName()
	if msg := badTopic(req.GetTopic().GetName()); msg != "" {
		return &v2.ForwardMessageToDeadLetterQueueResponse{Status: status(v2.Code_ILLEGAL_TOPIC, "%s", msg)}, nil
	}
	if msg := badGroup(group); msg != "" {
		return &v2.ForwardMessageToDeadLetterQueueResponse{Status: status(v2.Code_ILLEGAL_CONSUMER_GROUP, "%s", msg)}, nil
	}
	h, ok := decodeHandle(group, req.GetReceiptHandle())
	if !ok {
		return &v2.ForwardMessageToDeadLetterQueueResponse{Status: status(v2.Code_INVALID_RECEIPT_HANDLE, "receipt handle is invalid")}, nil
	}
	if err := s.pop.forward(ctx, h); err != nil {
		return &v2.ForwardMessageToDeadLetterQueueResponse{Status: handleStatus(err)}, nil
	}
	s.notify.arrived(req.GetTopic().GetName(), 0)
	return &v2.ForwardMessageToDeadLetterQueueResponse{Status: statusOK}, nil
}
