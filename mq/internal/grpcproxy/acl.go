package grpcproxy

import (
	"context"
	"errors"
	"net"
	"net/netip"
	"strings"

	v2 "github.com/apache/rocketmq-clients/golang/v5/protocol/v2"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/peer"
	grpcstatus "google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/reflect/protoregistry"

	"github.com/tide-run/tide/mq/acl"
)

// RocketMQ ACL 1.0 on the gRPC port, as Apache's proxy checks it (its AuthenticationInterceptor with
// PlainAccessValidator): every request message, including each message of a stream, is decided before it reaches
// a handler, with the credentials of the call's metadata (mq/acl.CheckGRPC) and the resources the message touches
// (aclResources). A refused call never reaches the broker.
//
// What a refused client sees: a unary call's response carries the v2 status UNAUTHORIZED (credentials refused:
// missing, unknown, bad signature, malformed header) or FORBIDDEN (the account lacks the right), with Apache's
// AclException text as the message (the Go client reports "CODE: FORBIDDEN, MESSAGE: No permission for
// topic:orders"); ReceiveMessage and PullMessage send one response with that status and end. Telemetry ends with
// the gRPC status PERMISSION_DENIED and the text (Apache's proxy closes it with PERMISSION_DENIED too): the 5.x
// clients wait for their settings on that stream at start, and a status message inside the stream would leave
// them waiting for ever, while a failed stream makes their Start return the error.
//
// Apache's ACL 1.0 proxy answers every refusal with a bare gRPC PERMISSION_DENIED and no text; ACL 2.0 (5.3+)
// answers v2 UNAUTHORIZED with the text for both kinds. tide answers with the text and splits the two kinds as the
// v2 Code enum documents them, so a client can tell a wrong secret from a missing permission.

// aclServerOptions install the check when the endpoint has an ACL.
func (s *Server) aclServerOptions() []grpc.ServerOption {
	if s.opts.ACL == nil {
		return nil
	}
	return []grpc.ServerOption{grpc.ChainUnaryInterceptor(s.aclUnary), grpc.ChainStreamInterceptor(s.aclStream)}
}

// aclCheck decides one request message of a call.
func (s *Server) aclCheck(ctx context.Context, msg any) *acl.Error {
	req := acl.GRPCRequest{Remote: peerAddr(ctx)}
	md, _ := metadata.FromIncomingContext(ctx)
	if v := md.Get(acl.GRPCAuthorization); len(v) > 0 {
		req.Authorization = v[0]
	}
	if v := md.Get(acl.GRPCDateTime); len(v) > 0 {
		req.DateTime = v[0]
	}
	req.Resources, req.Err = aclResources(msg)
	err := s.opts.ACL.Policy().CheckGRPC(req)
	if err == nil {
		return nil
	}
	var ae *acl.Error
	if !errors.As(err, &ae) {
		ae = &acl.Error{Msg: err.Error()}
	}
	// Warn lines go through the broker's rate-limited log (mq.New wraps the logger), so a hostile client cannot
	// flood it.
	s.log.Warn("gRPC request refused by ACL", "remote", req.Remote.String(), "client", clientIDOf(ctx),
		"request", messageName(msg), "reason", ae.Msg)
	return ae
}

func (s *Server) aclUnary(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
	ae := s.aclCheck(ctx, req)
	if ae == nil {
		return handler(ctx, req)
	}
	if resp := deniedResponse(info.FullMethod, ae); resp != nil {
		return resp, nil
	}
	return nil, grpcstatus.Error(codes.PermissionDenied, ae.Msg)
}

func (s *Server) aclStream(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, handler grpc.StreamHandler) error {
	cs := &checkedStream{ServerStream: ss, s: s, method: info.FullMethod}
	err := handler(srv, cs)
	switch {
	case cs.denied == nil:
		return err
	case cs.answered:
		return nil // the denial went out as the stream's status response
	default:
		return grpcstatus.Error(codes.PermissionDenied, cs.denied.Msg)
	}
}

// checkedStream decides each message the client sends on a stream.
type checkedStream struct {
	grpc.ServerStream
	s      *Server
	method string

	denied   *acl.Error // set once; the handler sees an error from RecvMsg and returns
	answered bool       // the denial was sent as a response message (receive streams)
}

var errDenied = errors.New("grpcproxy: refused by ACL")

func (c *checkedStream) RecvMsg(m any) error {
	if err := c.ServerStream.RecvMsg(m); err != nil {
		return err
	}
	ae := c.s.aclCheck(c.Context(), m)
	if ae == nil {
		return nil
	}
	c.denied = ae
	switch m.(type) {
	case *v2.ReceiveMessageRequest:
		c.answered = c.ServerStream.SendMsg(&v2.ReceiveMessageResponse{
			Content: &v2.ReceiveMessageResponse_Status{Status: aclStatus(ae)}}) == nil
	case *v2.PullMessageRequest:
		c.answered = c.ServerStream.SendMsg(&v2.PullMessageResponse{
			Content: &v2.PullMessageResponse_Status{Status: aclStatus(ae)}}) == nil
	}
	return errDenied
}

func aclStatus(ae *acl.Error) *v2.Status {
	if ae.Forbidden {
		return &v2.Status{Code: v2.Code_FORBIDDEN, Message: ae.Msg}
	}
	return &v2.Status{Code: v2.Code_UNAUTHORIZED, Message: ae.Msg}
}

// deniedResponse is the method's response message with only its status set (every unary v2 response has a
// top-level "status" field), or nil for a method this endpoint does not know.
func deniedResponse(fullMethod string, ae *acl.Error) proto.Message {
	sd := v2.File_apache_rocketmq_v2_service_proto.Services().ByName("MessagingService")
	name, ok := strings.CutPrefix(fullMethod, "/"+string(sd.FullName())+"/")
	if !ok {
		return nil
	}
	md := sd.Methods().ByName(protoreflect.Name(name))
	if md == nil {
		return nil
	}
	mt, err := protoregistry.GlobalTypes.FindMessageByName(md.Output().FullName())
	if err != nil {
		return nil
	}
	resp := mt.New()
	f := resp.Descriptor().Fields().ByName("status")
	st := aclStatus(ae).ProtoReflect()
	if f == nil || f.Message() == nil || f.Message().FullName() != st.Descriptor().FullName() {
		return nil
	}
	resp.Set(f, protoreflect.ValueOfMessage(st))
	return resp.Interface()
}

// aclResources lists what a request message touches, as Apache's PlainAccessResource.parse (5.1-5.3.0) reads a
// gRPC request, plus the RPCs it did not know then (PullMessage, the offset RPCs, RecallMessage,
// SyncLiteSubscription), mapped as the remoting port maps their 4.x counterparts. Names are the resources' names
// (tide has no namespaces: it serves the name a client sends, so it checks that name). errMsg, when not empty, is
// a request Apache refuses whoever sends it.
func aclResources(msg any) (res []acl.ResourcePerm, errMsg string) {
	add := func(name string, perm acl.Perm) {
		if name == "" {
			return
		}
		for i := range res {
			if res[i].Resource == name {
				res[i].Perm = perm // Apache's map keeps the last
				return
			}
		}
		res = append(res, acl.ResourcePerm{Resource: name, Perm: perm})
	}
	group := func(r *v2.Resource) {
		if n := r.GetName(); n != "" {
			add(acl.RetryTopic(n), acl.Sub)
		}
	}
	topic := func(r *v2.Resource, perm acl.Perm) { add(r.GetName(), perm) }
	switch m := msg.(type) {
	case *v2.QueryRouteRequest:
		topic(m.GetTopic(), acl.Any)
	case *v2.HeartbeatRequest:
		if m.GetClientType() == v2.ClientType_PUSH_CONSUMER || m.GetClientType() == v2.ClientType_SIMPLE_CONSUMER {
			if m.GetGroup() == nil {
				return nil, "Consumer heartbeat doesn't have group"
			}
			group(m.GetGroup())
		}
	case *v2.SendMessageRequest:
		if len(m.GetMessages()) == 0 {
			return nil, "SendMessageRequest, messageCount is zero"
		}
		first := m.GetMessages()[0].GetTopic()
		for _, pm := range m.GetMessages() {
			if !proto.Equal(pm.GetTopic(), first) {
				return nil, "SendMessageRequest, messages' topic is not consistent"
			}
		}
		topic(first, acl.Pub)
	case *v2.ReceiveMessageRequest:
		group(m.GetGroup())
		topic(m.GetMessageQueue().GetTopic(), acl.Sub)
	case *v2.AckMessageRequest:
		group(m.GetGroup())
		topic(m.GetTopic(), acl.Sub)
	case *v2.ForwardMessageToDeadLetterQueueRequest:
		group(m.GetGroup())
		topic(m.GetTopic(), acl.Sub)
	case *v2.ChangeInvisibleDurationRequest:
		group(m.GetGroup())
		topic(m.GetTopic(), acl.Sub)
	case *v2.EndTransactionRequest:
		topic(m.GetTopic(), acl.Pub)
	case *v2.TelemetryCommand:
		set := m.GetSettings()
		if set == nil {
			break // the client's answers to the endpoint's commands: a valid signature is enough
		}
		if set.GetPublishing() == nil && set.GetSubscription() == nil {
			return nil, "settings command doesn't have publishing or subscription"
		}
		for _, t := range set.GetPublishing().GetTopics() {
			topic(t, acl.Pub)
		}
		if sub := set.GetSubscription(); sub != nil {
			group(sub.GetGroup())
			for _, e := range sub.GetSubscriptions() {
				topic(e.GetTopic(), acl.Sub)
			}
		}
	case *v2.NotifyClientTerminationRequest:
		group(m.GetGroup())
	case *v2.QueryAssignmentRequest:
		group(m.GetGroup())
		topic(m.GetTopic(), acl.Sub)
	// Not in Apache's ACL 1.0 proxy (these RPCs came later); as their remoting counterparts.
	case *v2.PullMessageRequest:
		group(m.GetGroup())
		topic(m.GetMessageQueue().GetTopic(), acl.Sub)
	case *v2.UpdateOffsetRequest:
		group(m.GetGroup())
		topic(m.GetMessageQueue().GetTopic(), acl.Sub)
	case *v2.GetOffsetRequest:
		group(m.GetGroup())
		topic(m.GetMessageQueue().GetTopic(), acl.Sub)
	case *v2.QueryOffsetRequest:
		topic(m.GetMessageQueue().GetTopic(), acl.Sub)
	case *v2.RecallMessageRequest:
		topic(m.GetTopic(), acl.Pub)
	case *v2.SyncLiteSubscriptionRequest:
		group(m.GetGroup())
		topic(m.GetTopic(), acl.Sub)
	}
	return res, ""
}

func messageName(msg any) string {
	if m, ok := msg.(proto.Message); ok {
		return string(m.ProtoReflect().Descriptor().Name())
	}
	return "?"
}

// peerAddr is the caller's IP (unmapped), or the zero Addr (which matches only "*" whitelist patterns).
func peerAddr(ctx context.Context) netip.Addr {
	p, ok := peer.FromContext(ctx)
	if !ok {
		return netip.Addr{}
	}
	if ta, ok := p.Addr.(*net.TCPAddr); ok {
		ip, _ := netip.AddrFromSlice(ta.IP)
		return ip.Unmap()
	}
	if ap, err := netip.ParseAddrPort(p.Addr.String()); err == nil {
		return ap.Addr().Unmap()
	}
	return netip.Addr{}
}
