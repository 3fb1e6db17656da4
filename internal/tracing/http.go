package tracing

import (
	"context"
	"net"
	"net/http"
	"net/url"
	"strconv"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	semconv "go.opentelemetry.io/otel/semconv/v1.40.0"
	"go.opentelemetry.io/otel/trace"
	"go.opentelemetry.io/otel/trace/noop"
)

// StartServer starts the server span of an incoming HTTP request, the child of the request's traceparent when it
// has one (else of whatever span ctx already holds, else a new trace). The name follows HTTP semantic
// conventions: "{method} {route}" when route is known, else "{method}". Attributes: http.request.method,
// url.path, url.scheme, server.address, server.port, client.address, user_agent.original,
// network.protocol.version, http.route.
func StartServer(ctx context.Context, tr trace.Tracer, r *http.Request, route string, attrs ...attribute.KeyValue) (context.Context, trace.Span) {
	ctx = ExtractHTTP(ctx, r.Header)
	if Off(tr) {
		return ctx, noop.Span{}
	}
	name := r.Method
	if route != "" {
		name += " " + route
	}
	scheme := "http"
	if r.TLS != nil {
		scheme = "https"
	}
	all := make([]attribute.KeyValue, 0, 9+len(attrs)+2) // + EndServer's

	all = append(all, semconv.HTTPRequestMethodKey.String(r.Method), semconv.URLPath(r.URL.Path), semconv.URLScheme(scheme))
	if host, port := splitHostPort(r.Host); host != "" {
		all = append(all, semconv.ServerAddress(host))
		if port > 0 {
			all = append(all, semconv.ServerPort(port))
		}
	}
	if h, _, err := net.SplitHostPort(r.RemoteAddr); err == nil {
		all = append(all, semconv.ClientAddress(h))
	}
	if ua := r.UserAgent(); ua != "" {
		all = append(all, semconv.UserAgentOriginal(ua))
	}
	if r.ProtoMajor > 0 {
		all = append(all, semconv.NetworkProtocolVersion(protocolVersion(r.ProtoMajor, r.ProtoMinor)))
	}
	if route != "" {
		all = append(all, semconv.HTTPRoute(route))
	}
	all = append(all, attrs...)
	return StartSpan(ctx, tr, name, trace.SpanKindServer, all)
}

// protocolVersion is "major.minor", without building the common ones.
func protocolVersion(major, minor int) string {
	switch {
	case major == 1 && minor == 1:
		return "1.1"
	case major == 2 && minor == 0:
		return "2.0"
	case major == 1 && minor == 0:
		return "1.0"
	}
	return strconv.Itoa(major) + "." + strconv.Itoa(minor)
}

// EndServer records the response status on a server span and ends it: 5xx is an error (HTTP conventions for
// servers), 4xx is not.
func EndServer(span trace.Span, status int) {
	if !span.IsRecording() {
		return // a no-op span, or the caller's own (tracing off): not ours to end
	}
	if status == 0 {
		status = http.StatusOK
	}
	span.SetAttributes(semconv.HTTPResponseStatusCode(status))
	if status >= 500 {
		span.SetAttributes(semconv.ErrorTypeKey.String(strconv.Itoa(status)))
		span.SetStatus(codes.Error, http.StatusText(status))
	}
	span.End()
}

// StartClient starts the client span of an outgoing request to u and returns ctx holding it; the caller injects
// it (InjectHTTP) into the request it builds. resend > 0 is the attempt's resend count (retries).
func StartClient(ctx context.Context, tr trace.Tracer, method string, u *url.URL, resend int, attrs ...attribute.KeyValue) (context.Context, trace.Span) {
	if Off(tr) {
		return ctx, noop.Span{}
	}
	all := make([]attribute.KeyValue, 0, 5+len(attrs)+2) // + EndClient's
	all = append(all, semconv.HTTPRequestMethodKey.String(method))
	if u != nil {
		all = append(all, semconv.URLFull(u.Redacted()))
		if host, port := splitHostPort(u.Host); host != "" {
			all = append(all, semconv.ServerAddress(host))
			if port == 0 {
				port = 80
				if u.Scheme == "https" {
					port = 443
				}
			}
			all = append(all, semconv.ServerPort(port))
		}
	}
	if resend > 0 {
		all = append(all, semconv.HTTPRequestResendCount(resend))
	}
	all = append(all, attrs...)
	return StartSpan(ctx, tr, method, trace.SpanKindClient, all)
}

// EndClient records a client attempt's outcome and ends its span: a transport error or a status >= 400 is an
// error (HTTP conventions for clients).
func EndClient(span trace.Span, status int, err error) {
	if !span.IsRecording() {
		return // a no-op span, or the caller's own (tracing off): not ours to end
	}
	switch {
	case err != nil:
		span.SetAttributes(semconv.ErrorTypeKey.String(errorType(err)))
		span.SetStatus(codes.Error, err.Error())
	case status > 0:
		span.SetAttributes(semconv.HTTPResponseStatusCode(status))
		if status >= 400 {
			span.SetAttributes(semconv.ErrorTypeKey.String(strconv.Itoa(status)))
			span.SetStatus(codes.Error, http.StatusText(status))
		}
	}
	span.End()
}

func errorType(err error) string {
	var ne net.Error
	switch {
	case err == context.DeadlineExceeded:
		return "timeout"
	case err == context.Canceled:
		return "canceled"
	case asNetErr(err, &ne) && ne.Timeout():
		return "timeout"
	}
	return "_OTHER"
}

func asNetErr(err error, target *net.Error) bool {
	for e := err; e != nil; {
		if n, ok := e.(net.Error); ok {
			*target = n
			return true
		}
		u, ok := e.(interface{ Unwrap() error })
		if !ok {
			return false
		}
		e = u.Unwrap()
	}
	return false
}

func splitHostPort(hostport string) (string, int) {
	host, p, err := net.SplitHostPort(hostport)
	if err != nil {
		return hostport, 0
	}
	port, _ := strconv.Atoi(p)
	return host, port
}

// Messaging attribute helpers (OpenTelemetry messaging semantic conventions, RocketMQ flavour).

// RocketMQ returns the attributes every RocketMQ span carries: messaging.system=rocketmq,
// messaging.destination.name and messaging.operation.type/name.
func RocketMQ(op string, topic string) []attribute.KeyValue {
	return AppendRocketMQ(make([]attribute.KeyValue, 0, 4), op, topic)
}

// AppendRocketMQ appends RocketMQ's attributes to dst (a hot path sizes dst once for all of a span's
// attributes).
func AppendRocketMQ(dst []attribute.KeyValue, op string, topic string) []attribute.KeyValue {
	var typ attribute.KeyValue
	switch op {
	case "send":
		typ = semconv.MessagingOperationTypeSend
	case "receive":
		typ = semconv.MessagingOperationTypeReceive
	default:
		typ = semconv.MessagingOperationTypeProcess
	}
	return append(dst, semconv.MessagingSystemRocketMQ, semconv.MessagingDestinationName(topic),
		typ, semconv.MessagingOperationName(op))
}
