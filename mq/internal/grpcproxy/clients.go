package grpcproxy

import (
	"context"
	"errors"
	"io"
	"net"
	"strconv"
	"sync"
	"time"

	v2 "github.com/apache/rocketmq-clients/golang/v5/protocol/v2"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/durationpb"

	"github.com/tide-run/tide/mq/internal/broker"
	"github.com/tide-run/tide/mq/mqmeta"
)

// client is one 5.x SDK instance, known by the id in its metadata: the settings it sent on its Telemetry stream and
// that stream, on which the server sends commands (transaction checks).
type client struct {
	id       string
	mu       sync.Mutex // guards settings, stream, lastSeen
	settings *v2.Settings
	stream   v2.MessagingService_TelemetryServer
	sendMu   sync.Mutex // one Send at a time on stream
	lastSeen time.Time
}

type clientTable struct {
	mu      sync.Mutex
	clients map[string]*client
}

func newClientTable() *clientTable { return &clientTable{clients: map[string]*client{}} }

func (t *clientTable) get(id string, create bool) *client {
	t.mu.Lock()
	defer t.mu.Unlock()
	c := t.clients[id]
	if c == nil && create {
		// Seen now: a client whose Telemetry stream has just opened has no stream recorded until its Settings
		// arrive, and with a zero lastSeen expire would forget it in between; the Settings would then land on an
		// object no longer in the table and every later request of the client be refused ("cannot find client
		// settings"), as the interop matrix once saw under load.
		c = &client{id: id, lastSeen: time.Now()}
		t.clients[id] = c
	}
	return c
}

func (t *clientTable) remove(id string) *client {
	t.mu.Lock()
	defer t.mu.Unlock()
	c := t.clients[id]
	delete(t.clients, id)
	return c
}

// producersOf returns the connected producers that publish topic (transaction checks ask one of them).
func (t *clientTable) producersOf(topic string) []*client {
	t.mu.Lock()
	defer t.mu.Unlock()
	var out []*client
	for _, c := range t.clients {
		c.mu.Lock()
		ok := c.stream != nil && c.settings != nil && c.settings.GetPublishing() != nil
		if ok {
			ok = false
			for _, r := range c.settings.GetPublishing().GetTopics() {
				if r.GetName() == topic {
					ok = true
				}
			}
		}
		c.mu.Unlock()
		if ok {
			out = append(out, c)
		}
	}
	return out
}

// expire forgets clients without a Telemetry stream that were not heard from since before (their settings would
// otherwise stay forever: clients that crash never send NotifyClientTermination).
func (t *clientTable) expire(before time.Time) {
	t.mu.Lock()
	defer t.mu.Unlock()
	for id, c := range t.clients {
		c.mu.Lock()
		gone := c.stream == nil && c.lastSeen.Before(before)
		c.mu.Unlock()
		if gone {
			delete(t.clients, id)
		}
	}
}

func (c *client) send(cmd *v2.TelemetryCommand) error {
	c.mu.Lock()
	st := c.stream
	c.mu.Unlock()
	if st == nil {
		return errors.New("no telemetry stream")
	}
	c.sendMu.Lock()
	defer c.sendMu.Unlock()
	return st.Send(cmd)
}

// settingsFor answers a client's settings with the server's part filled in, as Apache's proxy does: the producer's
// retry policy and publishing limits, or the consumer group's retry policy, FIFO flag and polling settings.
func (s *Server) settingsFor(in *v2.Settings) *v2.Settings {
	out := proto.Clone(in).(*v2.Settings)
	out.Metric = &v2.Metric{On: false}
	switch {
	case out.GetPublishing() != nil:
		out.BackoffPolicy = &v2.RetryPolicy{MaxAttempts: 3, Strategy: &v2.RetryPolicy_ExponentialBackoff{
			ExponentialBackoff: &v2.ExponentialBackoff{Initial: durationpb.New(10 * time.Millisecond),
				Max: durationpb.New(time.Second), Multiplier: 2}}}
		out.GetPublishing().ValidateMessageType = true
		out.GetPublishing().MaxBodySize = int32(s.b.MaxMessageSize())
	case out.GetSubscription() != nil:
		sub := out.GetSubscription()
		g := s.groupConfig(sub.GetGroup().GetName())
		sub.ReceiveBatchSize = proto.Int32(32)
		sub.LongPollingTimeout = durationpb.New(s.opts.MaxPolling)
		sub.Fifo = proto.Bool(g.ConsumeMessageOrderly)
		out.BackoffPolicy = retryPolicy(g)
	}
	return out
}

// groupConfig is a group's config, created with defaults if the group is new (as autoCreateSubscriptionGroup).
func (s *Server) groupConfig(name string) mqmeta.GroupConfig {
	g, ok := s.b.Group(name)
	if !ok {
		var err error
		if g, err = s.b.EnsureGroup(name); err != nil {
			s.log.Warn("creating consumer group failed", "group", name, "err", err)
		}
	}
	if g.RetryMaxTimes <= 0 {
		g.RetryMaxTimes = mqmeta.DefaultRetryMaxTimes
	}
	return g
}

// retryPolicy is a group's policy for 5.x consumers: retryMaxTimes+1 deliveries, backing off along the delay
// levels (Apache's default customized policy).
func retryPolicy(g mqmeta.GroupConfig) *v2.RetryPolicy {
	next := make([]*durationpb.Duration, len(broker.DefaultDelayLevels))
	for i, d := range broker.DefaultDelayLevels {
		next[i] = durationpb.New(d)
	}
	return &v2.RetryPolicy{MaxAttempts: int32(g.RetryMaxTimes + 1),
		Strategy: &v2.RetryPolicy_CustomizedBackoff{CustomizedBackoff: &v2.CustomizedBackoff{Next: next}}}
}

// maxAttempts is a group's delivery limit.
func (s *Server) maxAttempts(group string) int32 {
	return int32(s.groupConfig(group).RetryMaxTimes + 1)
}

// Telemetry is the client's command stream: it sends Settings (answered with the server's), thread stacks and
// message verification results; the server sends Settings and transaction checks.
func (s *Server) Telemetry(stream v2.MessagingService_TelemetryServer) error {
	id := clientIDOf(stream.Context())
	if id == "" {
		return errClientID
	}
	c := s.clients.get(id, true)
	defer func() {
		c.mu.Lock()
		if c.stream == stream {
			c.stream = nil
			c.lastSeen = time.Now()
		}
		c.mu.Unlock()
	}()
	for {
		cmd, err := stream.Recv()
		if err != nil {
			if errors.Is(err, io.EOF) {
				return nil
			}
			return err
		}
		switch x := cmd.GetCommand().(type) {
		case *v2.TelemetryCommand_Settings:
			set := x.Settings
			if set.GetPublishing() == nil && set.GetSubscription() == nil {
				return errNoPubSub
			}
			if sub := set.GetSubscription(); sub != nil {
				if msg := badGroup(sub.GetGroup().GetName()); msg != "" {
					return errBadGroup(msg)
				}
			}
			c.mu.Lock()
			c.settings = set
			c.stream = stream
			c.lastSeen = time.Now()
			c.mu.Unlock()
			if err := c.send(&v2.TelemetryCommand{Status: statusOK, Command: &v2.TelemetryCommand_Settings{Settings: s.settingsFor(set)}}); err != nil {
				return err
			}
		case *v2.TelemetryCommand_ThreadStackTrace:
			s.pending.answer(x.ThreadStackTrace.GetNonce(), cmd)
		case *v2.TelemetryCommand_VerifyMessageResult:
			s.pending.answer(x.VerifyMessageResult.GetNonce(), cmd)
		default:
			// Other commands (metrics toggles, lite subscriptions) need no answer.
		}
	}
}

// Heartbeat keeps a client known; its settings must have arrived on Telemetry first, as Apache requires.
func (s *Server) Heartbeat(ctx context.Context, req *v2.HeartbeatRequest) (*v2.HeartbeatResponse, error) {
	id := clientIDOf(ctx)
	c := s.clients.get(id, false)
	if id == "" || c == nil {
		return &v2.HeartbeatResponse{Status: status(v2.Code_UNRECOGNIZED_CLIENT_TYPE, "cannot find client settings for this client")}, nil
	}
	c.mu.Lock()
	c.lastSeen = time.Now()
	set := c.settings
	c.mu.Unlock()
	if set == nil {
		return &v2.HeartbeatResponse{Status: status(v2.Code_UNRECOGNIZED_CLIENT_TYPE, "cannot find client settings for this client")}, nil
	}
	switch set.GetClientType() {
	case v2.ClientType_PRODUCER:
	case v2.ClientType_PUSH_CONSUMER, v2.ClientType_SIMPLE_CONSUMER:
		if msg := badGroup(req.GetGroup().GetName()); msg != "" {
			return &v2.HeartbeatResponse{Status: status(v2.Code_ILLEGAL_CONSUMER_GROUP, "%s", msg)}, nil
		}
	default:
		return &v2.HeartbeatResponse{Status: status(v2.Code_UNRECOGNIZED_CLIENT_TYPE, "%s", set.GetClientType().String())}, nil
	}
	return &v2.HeartbeatResponse{Status: statusOK}, nil
}

// NotifyClientTermination forgets a client (its in-flight messages become visible when their time lapses).
func (s *Server) NotifyClientTermination(ctx context.Context, req *v2.NotifyClientTerminationRequest) (*v2.NotifyClientTerminationResponse, error) {
	c := s.clients.remove(clientIDOf(ctx))
	if c == nil || c.settings == nil {
		return &v2.NotifyClientTerminationResponse{Status: status(v2.Code_UNRECOGNIZED_CLIENT_TYPE, "cannot find client settings for this client")}, nil
	}
	return &v2.NotifyClientTerminationResponse{Status: statusOK}, nil
}

// QueryRoute answers a topic's queues, all on this endpoint, with the message types the topic accepts.
func (s *Server) QueryRoute(ctx context.Context, req *v2.QueryRouteRequest) (*v2.QueryRouteResponse, error) {
	topic := req.GetTopic().GetName()
	if msg := badTopic(topic); msg != "" {
		return &v2.QueryRouteResponse{Status: status(v2.Code_ILLEGAL_TOPIC, "%s", msg)}, nil
	}
	t, ok := s.b.Topic(topic)
	if !ok {
		return &v2.QueryRouteResponse{Status: status(v2.Code_TOPIC_NOT_FOUND, "topic %s not found: create it first (tide mq topic create %s --type NORMAL|FIFO|DELAY|TRANSACTION)", topic, topic)}, nil
	}
	br := s.brokerRef()
	types := acceptTypes(t.MessageType())
	n := max(t.ReadQueueNums, t.WriteQueueNums)
	qs := make([]*v2.MessageQueue, 0, n)
	for i := 0; i < n; i++ {
		perm := 0
		if i < t.ReadQueueNums && t.Perm&mqmeta.PermRead != 0 {
			perm |= mqmeta.PermRead
		}
		if i < t.WriteQueueNums && t.Perm&mqmeta.PermWrite != 0 {
			perm |= mqmeta.PermWrite
		}
		qs = append(qs, &v2.MessageQueue{Topic: req.GetTopic(), Id: int32(i), Permission: permission(perm), Broker: br,
			AcceptMessageTypes: types})
	}
	return &v2.QueryRouteResponse{Status: statusOK, MessageQueues: qs}, nil
}

// QueryAssignment gives a push consumer the broker as one assignment (queue id -1: receive from every queue), as
// Apache's proxy does for POP consumption.
func (s *Server) QueryAssignment(ctx context.Context, req *v2.QueryAssignmentRequest) (*v2.QueryAssignmentResponse, error) {
	topic := req.GetTopic().GetName()
	if msg := badTopic(topic); msg != "" {
		return &v2.QueryAssignmentResponse{Status: status(v2.Code_ILLEGAL_TOPIC, "%s", msg)}, nil
	}
	if msg := badGroup(req.GetGroup().GetName()); msg != "" {
		return &v2.QueryAssignmentResponse{Status: status(v2.Code_ILLEGAL_CONSUMER_GROUP, "%s", msg)}, nil
	}
	t, ok := s.b.Topic(topic)
	if !ok {
		return &v2.QueryAssignmentResponse{Status: status(v2.Code_TOPIC_NOT_FOUND, "topic %s not found", topic)}, nil
	}
	if t.Perm&mqmeta.PermRead == 0 {
		return &v2.QueryAssignmentResponse{Status: statusOK}, nil
	}
	return &v2.QueryAssignmentResponse{Status: statusOK, Assignments: []*v2.Assignment{{MessageQueue: &v2.MessageQueue{
		Topic: req.GetTopic(), Id: -1, Permission: permission(t.Perm), Broker: s.brokerRef(),
		AcceptMessageTypes: acceptTypes(t.MessageType())}}}}, nil
}

func (s *Server) brokerRef() *v2.Broker {
	host, port, _ := net.SplitHostPort(s.addr)
	p, _ := strconv.Atoi(port)
	scheme := v2.AddressScheme_IPv4
	if ip := net.ParseIP(host); ip != nil && ip.To4() == nil {
		scheme = v2.AddressScheme_IPv6
	}
	return &v2.Broker{Name: s.b.BrokerName(), Id: 0, Endpoints: &v2.Endpoints{Scheme: scheme,
		Addresses: []*v2.Address{{Host: host, Port: int32(p)}}}}
}

func permission(perm int) v2.Permission {
	switch {
	case perm&mqmeta.PermRead != 0 && perm&mqmeta.PermWrite != 0:
		return v2.Permission_READ_WRITE
	case perm&mqmeta.PermRead != 0:
		return v2.Permission_READ
	case perm&mqmeta.PermWrite != 0:
		return v2.Permission_WRITE
	}
	return v2.Permission_NONE
}

func acceptTypes(t string) []v2.MessageType {
	switch t {
	case mqmeta.MessageTypeNormal:
		return []v2.MessageType{v2.MessageType_NORMAL}
	case mqmeta.MessageTypeFIFO:
		return []v2.MessageType{v2.MessageType_FIFO}
	case mqmeta.MessageTypeDelay:
		return []v2.MessageType{v2.MessageType_DELAY}
	case mqmeta.MessageTypeTransaction:
		return []v2.MessageType{v2.MessageType_TRANSACTION}
	case mqmeta.MessageTypeMixed:
		return []v2.MessageType{v2.MessageType_NORMAL, v2.MessageType_FIFO, v2.MessageType_DELAY, v2.MessageType_TRANSACTION}
	}
	return []v2.MessageType{v2.MessageType_MESSAGE_TYPE_UNSPECIFIED}
}

// badTopic checks a topic name as Apache's GrpcValidator does; system topics may not be used.
func badTopic(name string) string {
	if err := mqmeta.ValidateTopic(name); err != nil {
		return err.Error()
	}
	if mqmeta.IsSystemTopic(name) && !mqmeta.IsRetryTopic(name) && !mqmeta.IsDLQTopic(name) {
		return "cannot access system topic"
	}
	return ""
}

// badGroup checks a consumer group name.
func badGroup(name string) string {
	if name == "" {
		return "consumer group is empty"
	}
	if err := mqmeta.ValidateTopic(name); err != nil {
		return "consumer group " + name + ": " + err.Error()[len("topic "):]
	}
	if name[0] == '%' {
		return "cannot use system consumer group"
	}
	return ""
}
