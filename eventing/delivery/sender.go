package delivery

import (
	"bytes"
	"cmp"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"strings"
	"time"

	cloudevents "github.com/cloudevents/sdk-go/v2"
	"github.com/cloudevents/sdk-go/v2/binding"
	cehttp "github.com/cloudevents/sdk-go/v2/protocol/http"
	"go.opentelemetry.io/otel/trace"
	"k8s.io/utils/clock"

	"github.com/tide-run/tide/internal/tracing"
)

// Sentinel errors carried in Result.Err (wrapped with detail).
var (
	// ErrNotRetryable: the destination answered with a status the data-plane spec says not to retry (400, 401, 403,
	// other 4xx, 3xx).
	ErrNotRetryable = errors.New("destination rejected the event")
	// ErrRetriesExhausted: every attempt failed with a retryable status or a transport error.
	ErrRetriesExhausted = errors.New("retries exhausted")
	// ErrDeadLetterFailed: the dead-letter sink did not accept the event either.
	ErrDeadLetterFailed = errors.New("dead-letter sink failed")
	// ErrNoTarget: Send was called without a destination URL.
	ErrNoTarget = errors.New("no destination URL")
	// ErrBadReply: the request asked for a reply (Prefer: reply) and the destination answered 2xx (other than 202)
	// with a body that is neither empty nor a valid CloudEvent. Knative's broker counts that as a failed delivery
	// (its filter answers 502 Bad Gateway upstream), so the attempt is retried and dead-lettered like a 502.
	ErrBadReply = errors.New("response is neither empty nor a valid CloudEvent")
)

// BadReplyStatus is the status a bad reply (ErrBadReply) is treated as: it decides retrying (retryable, like any
// 5xx) and is what the dead-letter sink sees in knativeerrorcode. Knative's broker filter answers this code when
// its subscriber's 2xx response is not empty and not a CloudEvent.
const BadReplyStatus = http.StatusBadGateway

// Extension names stamped on events sent to a dead-letter sink (Knative's names).
const (
	ExtErrorDest = "knativeerrordest"
	ExtErrorCode = "knativeerrorcode"
	ExtErrorData = "knativeerrordata"
	// MaxErrorData caps knativeerrordata (base64 characters), as Knative does.
	MaxErrorData = 1024
)

// maxReplyBody caps how much of a 200 response is read when looking for a reply event.
const maxReplyBody = 4 << 20

// Outcome is how a Send ended.
type Outcome int

const (
	// Failed: neither the destination nor a dead-letter sink accepted the event; the caller still owns it.
	Failed Outcome = iota
	// Delivered: the destination answered 2xx.
	Delivered
	// DeadLettered: the destination failed for good and the dead-letter sink answered 2xx.
	DeadLettered
)

func (o Outcome) String() string {
	switch o {
	case Delivered:
		return "Delivered"
	case DeadLettered:
		return "DeadLettered"
	default:
		return "Failed"
	}
}

// Result describes one Send.
type Result struct {
	Outcome Outcome
	// Reply is the event a destination answered with (2xx other than 202, carrying a CloudEvent, to a request sent
	// with Spec.PreferReply); nil otherwise. 202 is never a reply.
	Reply *cloudevents.Event
	// StatusCode is the destination's last HTTP status, 0 when no response arrived. A bad reply keeps the status the
	// destination sent (e.g. 200); Err then wraps ErrBadReply.
	StatusCode int
	// Attempts counts requests made to the destination (not the dead-letter sink).
	Attempts int
	// BadReplies counts attempts answered with a bad reply (ErrBadReply); each counts as a failed attempt.
	BadReplies int
	// Err explains why the destination did not accept the event; nil when Delivered.
	Err error
}

// Options configure a Sender. Zero values get the documented defaults.
type Options struct {
	// Client sends the requests; default NewClient(). Share one across Senders to share connections.
	Client *http.Client
	// Clock times the backoff waits; default the real clock. Tests pass a fake clock.
	Clock clock.Clock
	// Logger receives one debug line per failed attempt; default slog.Default(). A component attribute is added.
	Logger *slog.Logger
	// TracerProvider records a client span per attempt (HTTP semantic conventions) and sends its W3C traceparent
	// with the request. Nil: no spans; a traceparent already in the caller's context is still sent.
	TracerProvider trace.TracerProvider
}

// Sender delivers events. It holds no per-event state and is safe for concurrent use.
type Sender struct {
	client *http.Client
	// rt, when set, is the client's transport, which requests go to directly instead of through client.Do: Do
	// copies every request's headers for a redirect it would follow (and a Sender never follows one: a 3xx is the
	// destination's answer), and wraps each request in redirect bookkeeping. Set when the client has no cookie jar
	// and no overall timeout, the only other things Do adds.
	rt http.RoundTripper
	// lean, when set, sends plain-http deliveries itself (lean.go); it stands in for rt, an *http.Transport.
	lean *leanClient
	// intercepts, when set, names the destinations the client's RoundTripper answers itself (Interceptor).
	intercepts func(*url.URL) bool
	clock      clock.Clock
	log        *slog.Logger
	tracer     trace.Tracer
}

// Interceptor is implemented by a Client's RoundTripper that wraps an *http.Transport and answers some requests
// itself (the eventing runtime's in-process Broker short-cut). The Sender's lean path (lean.go) then stands in for
// Base on every destination Intercepts reports false for; the others go through the RoundTripper.
type Interceptor interface {
	http.RoundTripper
	// Base is the wrapped transport, which gets every request Intercepts reports false for, unchanged; nil: none.
	Base() *http.Transport
	// Intercepts reports a destination the RoundTripper answers itself.
	Intercepts(target *url.URL) bool
}

// NewTransport returns an HTTP transport tuned for many small requests to a few destinations: large idle pools per
// host (the default of 2 forces dials under concurrency) and HTTP/2 when the destination speaks it over TLS.
func NewTransport() *http.Transport {
	return &http.Transport{
		Proxy:                 http.ProxyFromEnvironment,
		DialContext:           (&net.Dialer{Timeout: 10 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
		ForceAttemptHTTP2:     true,
		MaxIdleConns:          1024,
		MaxIdleConnsPerHost:   256,
		IdleConnTimeout:       90 * time.Second,
		TLSHandshakeTimeout:   10 * time.Second,
		ExpectContinueTimeout: time.Second,
	}
}

// NewClient returns an http.Client on NewTransport. It has no overall timeout (Spec.Timeout bounds each attempt)
// and does not follow redirects: a 3xx is the destination's answer (not retried), never a silent GET elsewhere
// that would count as a delivery.
func NewClient() *http.Client {
	return &http.Client{
		Transport:     NewTransport(),
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
}

// New returns a Sender.
func New(opts Options) *Sender {
	s := &Sender{client: opts.Client, clock: opts.Clock, log: opts.Logger,
		tracer: tracing.Tracer(opts.TracerProvider, "github.com/tide-run/tide/eventing/delivery")}
	if s.client == nil {
		s.client = NewClient()
	}
	if s.client.Jar == nil && s.client.Timeout == 0 {
		s.rt = s.client.Transport
		if s.rt == nil {
			s.rt = http.DefaultTransport
		}
		switch rt := s.rt.(type) {
		case *http.Transport:
			s.lean = newLeanClient(rt)
		case Interceptor:
			if tr := rt.Base(); tr != nil {
				s.lean, s.intercepts = newLeanClient(tr), rt.Intercepts
			}
		}
	}
	if s.clock == nil {
		s.clock = clock.RealClock{}
	}
	if s.log == nil {
		s.log = slog.Default()
	}
	s.log = s.log.With("component", "delivery")
	return s
}

// attempt is what one HTTP exchange produced.
type attempt struct {
	status int
	body   []byte // up to the cap: the reply candidate on a 2xx asked for a reply, the error data otherwise
	header http.Header
	err    error
	// reply is the CloudEvent in the response, when the request asked for one and the response carries one.
	reply *cloudevents.Event
	// badReply (wrapping ErrBadReply) is set when the request asked for a reply and the 2xx response body is
	// neither empty nor a valid CloudEvent: the attempt then failed, as if the destination had answered
	// BadReplyStatus.
	badReply error
}

func (a attempt) ok() bool {
	return a.err == nil && a.badReply == nil && a.status >= 200 && a.status < 300
}

// errorCode is the status the attempt counts as for retrying and for knativeerrorcode.
func (a attempt) errorCode() int {
	if a.badReply != nil {
		return BadReplyStatus
	}
	return a.status
}

// retryable reports whether the data-plane spec says to try again after this attempt.
func (a attempt) retryable() bool {
	if a.err != nil || a.badReply != nil {
		return true
	}
	switch {
	case a.status >= 500, a.status == 404, a.status == 408, a.status == 409, a.status == 429:
		return true
	case a.status >= 300 && a.status < 500:
		return false
	case a.status >= 200 && a.status < 300:
		return false
	}
	return true // 1xx and codes outside any class: unknown, retried
}

// Send delivers ev to target per spec and reports the outcome. It returns early (Failed, with ctx's error) when ctx
// ends. It never modifies ev.
func (s *Sender) Send(ctx context.Context, target *url.URL, ev cloudevents.Event, spec Spec) Result {
	if target == nil {
		return Result{Outcome: Failed, Err: ErrNoTarget}
	}
	var res Result
	last, n, err := s.sendWithRetries(ctx, target, &ev, spec, &res.BadReplies)
	res.Attempts, res.StatusCode = n, last.status
	if err == nil {
		res.Outcome = Delivered
		res.Reply = last.reply
		return res
	}
	res.Err = err
	if spec.DeadLetter == nil || ctx.Err() != nil {
		return res
	}
	dl := ev.Clone()
	dl.SetExtension(ExtErrorDest, target.String())
	if code := last.errorCode(); code != 0 {
		dl.SetExtension(ExtErrorCode, code)
	}
	if len(last.body) > 0 {
		dl.SetExtension(ExtErrorData, errorData(last.body))
	}
	dlSpec := spec
	dlSpec.PreferReply = false
	if _, _, dlErr := s.sendWithRetries(ctx, spec.DeadLetter, &dl, dlSpec, nil); dlErr != nil {
		res.Err = fmt.Errorf("%w (%w: %w)", err, ErrDeadLetterFailed, dlErr)
		return res
	}
	res.Outcome = DeadLettered
	return res
}

// errorData base64-encodes a response body, capped at MaxErrorData characters (only as many bytes as fit are read).
func errorData(body []byte) string {
	if max := base64.StdEncoding.DecodedLen(MaxErrorData); len(body) > max {
		body = body[:max]
	}
	return base64.StdEncoding.EncodeToString(body)
}

// sendWithRetries makes up to spec.Retry+1 attempts. It returns the last attempt, the number made, and nil on 2xx
// (with an acceptable body, see ErrBadReply). badReplies, when not nil, counts the attempts that got a bad reply.
func (s *Sender) sendWithRetries(ctx context.Context, target *url.URL, ev *cloudevents.Event, spec Spec, badReplies *int) (attempt, int, error) {
	var body []byte
	if spec.Format == FormatJSON {
		b, err := json.Marshal(ev)
		if err != nil {
			return attempt{}, 0, fmt.Errorf("%w: encoding event: %w", ErrNotRetryable, err)
		}
		body = b
	}
	for n := 0; ; n++ {
		a := s.once(ctx, target, ev, body, spec, n)
		if a.ok() {
			return a, n + 1, nil
		}
		if a.badReply != nil && badReplies != nil {
			*badReplies++
		}
		if ctx.Err() != nil {
			return a, n + 1, fmt.Errorf("delivery to %s interrupted: %w", target.Redacted(), ctx.Err())
		}
		s.log.Debug("delivery attempt failed", "target", target.Redacted(), "attempt", n+1, "status", a.status,
			"err", cmp.Or(a.err, a.badReply))
		if !a.retryable() {
			return a, n + 1, fmt.Errorf("%w: %s answered %d", ErrNotRetryable, target.Redacted(), a.status)
		}
		if n >= int(spec.Retry) {
			if err := cmp.Or(a.err, a.badReply); err != nil {
				return a, n + 1, fmt.Errorf("%w after %d attempts to %s: %w", ErrRetriesExhausted, n+1, target.Redacted(), err)
			}
			return a, n + 1, fmt.Errorf("%w after %d attempts to %s: last status %d", ErrRetriesExhausted, n+1, target.Redacted(), a.status)
		}
		if wait := spec.backoff(n); wait > 0 {
			t := s.clock.NewTimer(wait)
			select {
			case <-t.C():
			case <-ctx.Done():
				t.Stop()
				return a, n + 1, fmt.Errorf("delivery to %s interrupted: %w", target.Redacted(), ctx.Err())
			}
		}
	}
}

// once makes one HTTP request. Bodies are read (capped) and closed so the connection goes back to the pool.
func (s *Sender) once(ctx context.Context, target *url.URL, ev *cloudevents.Event, structured []byte, spec Spec, resend int) (a attempt) {
	ctx, span := tracing.StartClient(ctx, s.tracer, http.MethodPost, target, resend)
	defer func() { tracing.EndClient(span, a.status, cmp.Or(a.err, a.badReply)) }()
	if s.lean != nil && target.Scheme == "http" && target.User == nil && target.Opaque == "" &&
		(s.intercepts == nil || !s.intercepts(target)) {
		if p := s.lean.pool(target); p.direct {
			if la, ok := s.onceLean(ctx, p, target, ev, structured, spec); ok {
				return la
			}
		}
	}
	if spec.Timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, spec.Timeout)
		defer cancel()
	}
	// The request is built from a copy of the parsed target rather than by formatting and re-parsing its string
	// form for every attempt; what goes on the wire is the same.
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, "", nil)
	if err != nil {
		return attempt{err: err}
	}
	u := *target
	req.URL, req.Host = &u, strings.TrimSuffix(u.Host, ":") // as http.NewRequest does for an empty port
	if structured != nil {
		req.Header.Set("Content-Type", cloudevents.ApplicationCloudEventsJSON)
		req.Body = io.NopCloser(bytes.NewReader(structured))
		req.ContentLength = int64(len(structured))
		req.GetBody = func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(structured)), nil }
	} else if err := writeBinary(req, ev); err != nil {
		return attempt{err: fmt.Errorf("encoding event: %w", err)}
	}
	if spec.PreferReply {
		req.Header.Set("Prefer", "reply")
	}
	// W3C Trace Context: the attempt's span (or, without a tracer, the caller's span) is the parent of whatever
	// the destination does.
	tracing.InjectHTTP(ctx, req.Header)
	var resp *http.Response
	if s.rt != nil {
		resp, err = s.rt.RoundTrip(req)
		if err != nil {
			err = &url.Error{Op: "Post", URL: target.Redacted(), Err: err} // as Do reports it
		}
	} else {
		resp, err = s.client.Do(req)
	}
	if err != nil {
		return attempt{err: err}
	}
	defer resp.Body.Close()
	return s.readResponse(ctx, resp, spec)
}

// readResponse reads resp's status, headers and body (capped) into an attempt, and the reply when the request
// asked for one. The caller closes the body.
func (s *Sender) readResponse(ctx context.Context, resp *http.Response, spec Spec) (a attempt) {
	a = attempt{status: resp.StatusCode, header: resp.Header}
	// Only a request that asked for a reply looks at a 2xx body, and never for a 202 (the data-plane spec: a 202
	// MUST NOT be processed as a reply). Without Prefer: reply the spec says to treat the event as accepted
	// whatever the body holds.
	wantsReply := spec.PreferReply && a.ok() && resp.StatusCode != http.StatusAccepted
	if resp.ContentLength == 0 {
		// The common answer (202, no body): nothing to read, and the connection is reusable as it is. An empty body
		// can still be a binary-mode reply (all attributes in headers, no data).
		if wantsReply {
			a.reply, a.badReply = parseReply(ctx, a.header, nil)
		}
		return a
	}
	limit := int64(base64.StdEncoding.DecodedLen(MaxErrorData))
	if wantsReply {
		limit = maxReplyBody + 1 // one byte more tells an oversize reply from one exactly at the cap
	}
	var err error
	a.body, err = io.ReadAll(io.LimitReader(resp.Body, limit))
	switch {
	case !wantsReply:
		// A broken body only matters when it was to carry a reply; on errors it is just less error data.
	case err != nil:
		a.badReply = fmt.Errorf("%w: reading the response body: %w", ErrBadReply, err)
	case len(a.body) > maxReplyBody:
		a.badReply = fmt.Errorf("%w: response body larger than %d bytes", ErrBadReply, maxReplyBody)
	default:
		a.reply, a.badReply = parseReply(ctx, a.header, a.body)
	}
	// Drain a little more so small oversize bodies do not cost the connection.
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	return a
}

// parseReply reads the answer to a request sent with Prefer: reply (binary or structured mode). It returns
// (nil, nil) for an empty body that is not an event, the event when the response is a valid CloudEvent, and an
// error wrapping ErrBadReply otherwise: a non-empty body that is not a CloudEvent, one that does not decode, or an
// event that fails validation (Knative's broker would reject that reply at its ingress).
func parseReply(ctx context.Context, header http.Header, body []byte) (*cloudevents.Event, error) {
	if _, ok := header["Ce-"]; ok {
		// sdk-go's binary reader indexes past the prefix of a header named just "Ce-" and panics (found by
		// FuzzLeanResponse): a subscriber's answer must not crash the dispatcher.
		return nil, fmt.Errorf("%w: a header named %q, without an attribute name", ErrBadReply, "Ce-")
	}
	msg := cehttp.NewMessage(header, io.NopCloser(bytes.NewReader(body)))
	if msg.ReadEncoding() == binding.EncodingUnknown {
		if len(body) == 0 {
			return nil, nil
		}
		return nil, fmt.Errorf("%w: %d bytes of Content-Type %q without ce-specversion", ErrBadReply, len(body), header.Get("Content-Type"))
	}
	ev, err := binding.ToEvent(ctx, msg)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrBadReply, err)
	}
	if err := ev.Validate(); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrBadReply, err)
	}
	return ev, nil
}
