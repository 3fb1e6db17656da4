package delivery

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httputil"
	"net/textproto"
	"net/url"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"

	cloudevents "github.com/cloudevents/sdk-go/v2"
	"github.com/cloudevents/sdk-go/v2/event"
	"github.com/cloudevents/sdk-go/v2/types"

	"github.com/tide-run/tide/internal/h1"
	"github.com/tide-run/tide/internal/tracing"
)

// The lean HTTP/1.1 client. A delivery through http.Transport costs a hand-off to the connection's read and write
// goroutines, a header map built and copied, and the response's header map parsed (docs/BENCHMARKS.md, "Issue 18,
// eventing half": net/http's client is about half of the delivery's HTTP exchange). Here the delivering goroutine
// writes the request and reads the response itself on a pooled keep-alive connection: the request head is written
// straight from the event, the response head is parsed in place by internal/h1 (the gateway's parser), and an
// http.Header is built only for a response that may carry a reply event.
//
// What goes on the wire is what http.Transport writes for the same delivery (lean_test.go compares them byte for
// byte): "POST <request-uri> HTTP/1.1", Host, User-Agent: Go-http-client/1.1, Content-Length, the headers sorted by
// name with their values trimmed, Accept-Encoding: gzip when the transport asks for compression (a gzip body is
// then decompressed, as the transport does), the body. Reuse follows the transport's rules: a connection goes back
// to the pool only after its response was read to the end and did not say Connection: close.
//
// The lean path takes a request only when it can do all of that: plain http (no TLS, no HTTP/2), no proxy for the
// host (decided once per host), a Host header and request target of plain ASCII, a CloudEvents 1.0 context (or the
// structured format), header names that are tokens and values without control characters (http.Transport refuses
// the others, and then reports its own error). Anything else, and every Sender whose client is not a plain
// *http.Transport (a cookie jar, an overall timeout, another RoundTripper that is not an Interceptor), takes the
// net/http path, decided per request before anything is sent. A response head internal/h1 refuses (a bare LF, an
// obs-fold, ...) is read again by net/http's parser from the same bytes, so the lean path accepts what
// http.Transport accepts (FuzzLeanResponse compares them).
//
// Stale connections: http.Transport's read goroutine notices a keep-alive connection the server closed while it
// sat idle and drops it; here a connection taken from the pool is probed (a non-blocking MSG_PEEK) instead. A POST
// is sent again on another connection only when none of it was written (as the transport does for a request whose
// body can be replayed); once written, a connection failing before the response is the attempt's error, retried
// (or not) by the delivery's own retry policy, as with http.Transport.

// leanClient is a Sender's pool of keep-alive connections per destination host.
type leanClient struct {
	dial        func(ctx context.Context, network, addr string) (net.Conn, error)
	proxy       func(*http.Request) (*url.URL, error)
	gzip        bool // the transport asks for gzip (DisableCompression false)
	maxIdle     int
	idleTimeout time.Duration
	hosts       sync.Map // URL host -> *hostPool
}

// newLeanClient returns a lean client standing in for tr, or nil when tr is configured in a way the lean path
// does not reproduce.
func newLeanClient(tr *http.Transport) *leanClient {
	if tr.DisableKeepAlives || tr.MaxConnsPerHost > 0 || tr.ResponseHeaderTimeout > 0 ||
		tr.Protocols != nil && !tr.Protocols.HTTP1() ||
		tr.MaxResponseHeaderBytes > 0 && tr.MaxResponseHeaderBytes < h1.MaxResponseHead {
		return nil
	}
	lc := &leanClient{dial: tr.DialContext, proxy: tr.Proxy, gzip: !tr.DisableCompression, maxIdle: tr.MaxIdleConnsPerHost,
		idleTimeout: tr.IdleConnTimeout}
	if lc.dial == nil {
		if tr.Dial != nil { //nolint:staticcheck // honoured as http.Transport honours it
			d := tr.Dial //nolint:staticcheck
			lc.dial = func(_ context.Context, network, addr string) (net.Conn, error) { return d(network, addr) }
		} else {
			var d net.Dialer
			lc.dial = d.DialContext
		}
	}
	if lc.maxIdle <= 0 {
		lc.maxIdle = http.DefaultMaxIdleConnsPerHost
	}
	return lc
}

// hostPool holds one destination's idle connections. Invariant: mu guards idle and sweeping; a connection is
// either in idle or owned by exactly one attempt.
type hostPool struct {
	lc     *leanClient
	host   string // the Host header
	addr   string // what is dialed
	direct bool   // false: net/http takes every request to this host (a proxy applies, or an unusual host)

	mu       sync.Mutex
	idle     []*leanConn // oldest first; taken from the end
	sweeping bool        // a timer will close the connections idle too long
}

// leanConn is one kept-alive connection and its buffers.
type leanConn struct {
	c       net.Conn
	cw      countingWriter
	br      *bufio.Reader
	bw      *bufio.Writer
	resp    h1.Response
	scratch []byte
	reused  bool
	idleAt  time.Time
	probe   prober
}

// countingWriter counts the bytes that reached the connection: a write failing with none of them written is one
// http.Transport sends again on another connection (its nothingWrittenError).
type countingWriter struct {
	c net.Conn
	n int64
}

func (w *countingWriter) Write(b []byte) (int, error) {
	n, err := w.c.Write(b)
	w.n += int64(n)
	return n, err
}

// pool returns target's pool. Whether a proxy applies is asked once per host: ProxyFromEnvironment reads the
// environment once per process.
func (lc *leanClient) pool(target *url.URL) *hostPool {
	if p, ok := lc.hosts.Load(target.Host); ok {
		return p.(*hostPool)
	}
	p := &hostPool{lc: lc, host: trimColon(target.Host)}
	p.direct = plainHost(p.host)
	if p.direct && lc.proxy != nil {
		pu, err := lc.proxy(&http.Request{Method: http.MethodPost, URL: &url.URL{Scheme: "http", Host: target.Host}, Header: http.Header{}})
		p.direct = err == nil && pu == nil
	}
	if port := target.Port(); port != "" {
		p.addr = net.JoinHostPort(target.Hostname(), port)
	} else {
		p.addr = net.JoinHostPort(target.Hostname(), "80")
	}
	got, _ := lc.hosts.LoadOrStore(target.Host, p)
	return got.(*hostPool)
}

// trimColon drops the empty port of "host:", as http.NewRequest does for the Host header.
func trimColon(h string) string {
	if n := len(h); n > 0 && h[n-1] == ':' {
		return h[:n-1]
	}
	return h
}

// plainHost reports a Host header http.Transport writes unchanged (ASCII host name or IP literal, a port; no zone,
// no user info, nothing to punycode).
func plainHost(h string) bool {
	if h == "" {
		return false
	}
	for i := 0; i < len(h); i++ {
		c := h[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '.' || c == '-' || c == '_' ||
			c == ':' || c == '[' || c == ']') {
			return false
		}
	}
	return true
}

// get takes an idle connection that is still open, or dials one.
func (p *hostPool) get(ctx context.Context, deadline time.Time) (*leanConn, error) {
	now := time.Now()
	for {
		p.mu.Lock()
		n := len(p.idle)
		if n == 0 {
			p.mu.Unlock()
			break
		}
		c := p.idle[n-1]
		p.idle[n-1] = nil
		p.idle = p.idle[:n-1]
		p.mu.Unlock()
		if p.lc.idleTimeout > 0 && now.Sub(c.idleAt) > p.lc.idleTimeout || c.br.Buffered() > 0 || c.probe.peerClosed() {
			c.c.Close() // closed by the server while idle, unsolicited bytes, or idle too long: as the transport drops it
			continue
		}
		c.reused = true
		return c, nil
	}
	dctx := ctx
	if !deadline.IsZero() {
		var cancel context.CancelFunc
		dctx, cancel = context.WithDeadline(ctx, deadline)
		defer cancel()
	}
	conn, err := p.lc.dial(dctx, "tcp", p.addr)
	if err != nil {
		return nil, err
	}
	c := &leanConn{c: conn}
	c.cw.c = conn
	c.br = bufio.NewReaderSize(conn, 4<<10)
	c.bw = bufio.NewWriterSize(&c.cw, 4<<10)
	c.probe = newProber(conn)
	return c, nil
}

// put returns c to the pool when reusable and closes it otherwise.
func (p *hostPool) put(c *leanConn, reusable bool) {
	if reusable {
		// The attempt's deadline is cleared: it would otherwise make the next reuse's probe fail (a raw read
		// checks the deadline first) and drop a healthy connection.
		_ = c.c.SetDeadline(time.Time{})
		c.idleAt = time.Now()
		p.mu.Lock()
		if len(p.idle) < p.lc.maxIdle {
			p.idle = append(p.idle, c)
			arm := p.lc.idleTimeout > 0 && !p.sweeping
			p.sweeping = p.sweeping || arm
			p.mu.Unlock()
			if arm {
				time.AfterFunc(p.lc.idleTimeout, p.sweep)
			}
			return
		}
		p.mu.Unlock()
	}
	c.c.Close()
}

// sweep closes the connections idle longer than the transport's IdleConnTimeout (oldest first) and runs again
// while any are left, so a destination no longer delivered to does not keep its connections open.
func (p *hostPool) sweep() {
	now := time.Now()
	p.mu.Lock()
	n := 0
	for n < len(p.idle) && now.Sub(p.idle[n].idleAt) >= p.lc.idleTimeout {
		n++
	}
	old := append([]*leanConn(nil), p.idle[:n]...)
	copy(p.idle, p.idle[n:])
	clear(p.idle[len(p.idle)-n:])
	p.idle = p.idle[:len(p.idle)-n]
	var next time.Duration
	if len(p.idle) > 0 {
		next = p.lc.idleTimeout - now.Sub(p.idle[0].idleAt)
	}
	p.sweeping = len(p.idle) > 0
	p.mu.Unlock()
	for _, c := range old {
		c.c.Close()
	}
	if next > 0 || p.sweeping {
		time.AfterFunc(max(next, time.Millisecond), p.sweep)
	}
}

// field is one request header line.
type field struct{ name, value string }

// errNotLean: the request is one the lean path does not take; nothing was sent.
var errNotLean = errors.New("not for the lean path")

// appendFields appends the delivery's headers (before tracing) and returns the body: structured JSON, or the
// binary-mode attributes of a CloudEvents 1.0 context exactly as writeV1Headers sets them (an extension replaces an
// attribute header of the same name; a nil extension removes it). errNotLean for another specversion.
func appendFields(fs []field, ev *event.Event, structured []byte, spec Spec) ([]field, []byte, error) {
	body := structured
	if structured != nil {
		fs = append(fs, field{hdrContentType, cloudevents.ApplicationCloudEventsJSON})
	} else {
		c, ok := ev.Context.(*event.EventContextV1)
		if !ok {
			return fs, nil, errNotLean
		}
		if c.ID != "" {
			fs = append(fs, field{hdrID, c.ID})
		}
		if s := c.Source.String(); s != "" {
			fs = append(fs, field{hdrSource, s})
		}
		fs = append(fs, field{hdrSpecVersion, event.CloudEventsVersionV1})
		if c.Type != "" {
			fs = append(fs, field{hdrType, c.Type})
		}
		if c.DataContentType != nil && *c.DataContentType != "" {
			fs = append(fs, field{hdrContentType, *c.DataContentType})
		}
		if c.DataSchema != nil {
			if s := c.DataSchema.String(); s != "" {
				fs = append(fs, field{hdrDataSchema, s})
			}
		}
		if c.Subject != nil && *c.Subject != "" {
			fs = append(fs, field{hdrSubject, *c.Subject})
		}
		if c.Time != nil && !c.Time.Time.IsZero() {
			fs = append(fs, field{hdrTime, types.FormatTime(c.Time.Time)})
		}
		attrs := len(fs)
		for k, v := range c.Extensions {
			name := extHeader(k)
			i := 0
			for i < attrs && fs[i].name != name {
				i++
			}
			if v == nil {
				if i < attrs {
					fs = append(fs[:i], fs[i+1:]...)
					attrs--
				}
				continue
			}
			s, err := types.Format(v)
			if err != nil {
				return fs, nil, fmt.Errorf("encoding event: %w", err)
			}
			if i < attrs {
				fs[i].value = s
			} else {
				fs = append(fs, field{name, s})
			}
		}
		body = ev.Data()
	}
	if spec.PreferReply {
		fs = append(fs, field{"Prefer", "reply"})
	}
	return fs, body, nil
}

// sortFields sorts by name, as http.Header.Write orders the lines (names are unique here).
func sortFields(fs []field) {
	for i := 1; i < len(fs); i++ {
		for j := i; j > 0 && fs[j].name < fs[j-1].name; j-- {
			fs[j], fs[j-1] = fs[j-1], fs[j]
		}
	}
}

// validName and trimValue: http.Transport refuses a request with a header name that is not a token or a value
// with control characters (the net/http path then reports its error), and writes values trimmed of surrounding
// whitespace.
func validName(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if !h1.IsToken(s[i]) {
			return false
		}
	}
	return true
}

func validValue(s string) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < ' ' && c != '\t' || c == 0x7f {
			return false
		}
	}
	return true
}

func trimValue(s string) string {
	for len(s) > 0 && (s[0] == ' ' || s[0] == '\t') {
		s = s[1:]
	}
	for len(s) > 0 && (s[len(s)-1] == ' ' || s[len(s)-1] == '\t') {
		s = s[:len(s)-1]
	}
	return s
}

// validTarget reports a request target without control characters or spaces (http.Transport refuses those).
func validTarget(s string) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c <= ' ' || c == 0x7f {
			return false
		}
	}
	return true
}

// writeRequest writes the request head and body as http.Transport would.
func (p *hostPool) writeRequest(w *bufio.Writer, ruri string, fs []field, body []byte) {
	w.WriteString("POST ")
	w.WriteString(ruri)
	w.WriteString(" HTTP/1.1\r\nHost: ")
	w.WriteString(p.host)
	w.WriteString("\r\nUser-Agent: Go-http-client/1.1\r\nContent-Length: ")
	w.Write(strconv.AppendInt(w.AvailableBuffer(), int64(len(body)), 10)) // in place: no allocation
	w.WriteString("\r\n")
	for _, f := range fs {
		w.WriteString(f.name)
		w.WriteString(": ")
		w.WriteString(trimValue(f.value))
		w.WriteString("\r\n")
	}
	if p.lc.gzip {
		w.WriteString("Accept-Encoding: gzip\r\n")
	}
	w.WriteString("\r\n")
	w.Write(body)
}

// aLongTimeAgo is a deadline in the past: setting it makes blocked reads and writes on a connection fail at once.
var aLongTimeAgo = time.Unix(1, 0)

// max1xxResponses bounds the informational responses skipped before the final one (http.Transport's bound).
const max1xxResponses = 5

// onceLean makes one attempt on the lean path. ok is false when the request is not for the lean path; nothing was
// sent then and the caller takes the net/http path.
func (s *Sender) onceLean(ctx context.Context, p *hostPool, target *url.URL, ev *event.Event, structured []byte, spec Spec) (a attempt, ok bool) {
	var buf [20]field
	fs, body, err := appendFields(buf[:0], ev, structured, spec)
	if errors.Is(err, errNotLean) {
		return attempt{}, false
	}
	if err != nil {
		return attempt{err: err}, true
	}
	if tp, ts, ok := tracing.TraceHeaders(ctx); ok {
		fs = append(fs, field{"Traceparent", tp})
		if ts != "" {
			fs = append(fs, field{"Tracestate", ts})
		}
	}
	for _, f := range fs {
		if !validName(f.name) || !validValue(f.value) {
			return attempt{}, false
		}
	}
	sortFields(fs)
	ruri := target.RequestURI()
	if !validTarget(ruri) {
		return attempt{}, false
	}

	var deadline time.Time
	if spec.Timeout > 0 {
		deadline = time.Now().Add(spec.Timeout)
	}
	if d, ok := ctx.Deadline(); ok && (deadline.IsZero() || d.Before(deadline)) {
		deadline = d
	}
	wrap := func(err error) attempt {
		if errors.Is(err, os.ErrDeadlineExceeded) || ctx.Err() != nil {
			// The connection's deadline stands for the attempt's context, as net/http reports it.
			err = cmpErr(ctx.Err(), context.DeadlineExceeded)
		}
		return attempt{err: &url.Error{Op: "Post", URL: target.Redacted(), Err: err}}
	}
	for {
		c, err := p.get(ctx, deadline)
		if err != nil {
			return wrap(err), true
		}
		_ = c.c.SetDeadline(deadline)
		var stop func() bool
		if ctx.Done() != nil {
			conn := c.c
			stop = context.AfterFunc(ctx, func() { _ = conn.SetDeadline(aLongTimeAgo) })
		}
		written := c.cw.n
		p.writeRequest(c.bw, ruri, fs, body)
		err = c.bw.Flush()
		if err != nil {
			c.bw.Reset(&c.cw)
			if stop != nil {
				stop()
			}
			c.c.Close()
			if c.reused && c.cw.n == written && ctx.Err() == nil && !errors.Is(err, os.ErrDeadlineExceeded) {
				continue // nothing of it reached the server: another connection, as http.Transport does
			}
			return wrap(err), true
		}
		a, reusable := s.readLean(ctx, c, spec)
		if stop != nil && !stop() {
			reusable = false // the context ended: its hook has cut (or is cutting) the connection
		}
		if a.err != nil {
			a = wrap(a.err)
		}
		p.put(c, reusable)
		return a, true
	}
}

func cmpErr(a, b error) error {
	if a != nil {
		return a
	}
	return b
}

// readLean reads the response to a delivery on c: the status, the head as an http.Header only when it may carry
// a reply, the body (capped) as the net/http path reads it. reusable: read to its end, no Connection: close.
func (s *Sender) readLean(ctx context.Context, c *leanConn, spec Spec) (a attempt, reusable bool) {
	r := &c.resp
	for n := 0; ; n++ {
		if err := r.Read(c.br, &c.scratch); err != nil {
			if errors.Is(err, h1.ErrMalformedResponse) || !errors.Is(err, h1.ErrResponseHeadTooLarge) && isParseError(err) {
				return s.readFallback(ctx, c, spec, n), false
			}
			return attempt{err: fmt.Errorf("reading the response: %w", err)}, false
		}
		if r.Status == http.StatusSwitchingProtocols {
			// http.Transport hands a 101 to its caller (status 101, no body): an unknown answer, retried; the
			// connection is not the client's to reuse.
			return attempt{status: r.Status}, false
		}
		if r.Status >= 200 {
			break
		}
		if n == max1xxResponses {
			return attempt{err: errors.New("too many 1xx informational responses")}, false
		}
	}
	if cap(c.scratch) > 64<<10 {
		defer func() { c.scratch = nil }() // an outsized head is not kept for the connection's lifetime
	}
	a = attempt{status: r.Status}
	wantsReply := spec.PreferReply && a.ok() && r.Status != http.StatusAccepted
	noBody := r.Status == http.StatusNoContent || r.Status == http.StatusNotModified || r.ContentLength == 0
	gz := false
	if s.lean.gzip && !noBody {
		gz = gzipped(r)
	}
	if wantsReply || gz {
		a.header = responseHeader(r)
		if gz { // what http.Transport hands its caller for a body it decompresses
			delete(a.header, "Content-Encoding")
			delete(a.header, "Content-Length")
		}
	}
	if noBody {
		if wantsReply {
			a.reply, a.badReply = parseReply(ctx, a.header, nil)
		}
		return a, !r.Close
	}
	var body io.Reader
	var chunked io.Reader
	var cl *lengthReader
	switch {
	case r.Chunked:
		chunked = &chunkedBody{r: httputil.NewChunkedReader(c.br), br: c.br}
		body = chunked
	case r.ContentLength > 0:
		cl = &lengthReader{r: c.br, n: r.ContentLength}
		body = cl
	default:
		body = c.br // delimited by the close: never reusable
	}
	raw := body
	if gz {
		body = &lazyGzip{r: raw}
	}
	limit := int64(maxErrorDataBytes)
	if wantsReply {
		limit = maxReplyBody + 1
	}
	var err error
	a.body, err = io.ReadAll(io.LimitReader(body, limit))
	switch {
	case !wantsReply:
	case err != nil:
		a.badReply = fmt.Errorf("%w: reading the response body: %w", ErrBadReply, err)
	case len(a.body) > maxReplyBody:
		a.badReply = fmt.Errorf("%w: response body larger than %d bytes", ErrBadReply, maxReplyBody)
	default:
		a.reply, a.badReply = parseReply(ctx, a.header, a.body)
	}
	if err != nil {
		return a, false
	}
	// Drain a little more so small oversize bodies do not cost the connection; reusable only when the framing
	// ended cleanly (with a chunked body's trailer section read).
	_, _ = io.Copy(io.Discard, io.LimitReader(raw, 64<<10))
	switch {
	case r.Close || gz:
		return a, false
	case cl != nil:
		return a, cl.n == 0 && cl.err == nil
	case chunked != nil:
		var one [1]byte
		n, err := chunked.Read(one[:])
		return a, n == 0 && err == io.EOF // the trailer section read too
	}
	return a, false
}

// maxErrorDataBytes is how much of a response body is kept as knativeerrordata (before base64).
const maxErrorDataBytes = (MaxErrorData / 4) * 3

// chunkedBody is a chunked body that, like net/http's, ends only after its trailer section was read: a malformed
// one is the body's read error.
type chunkedBody struct {
	r   io.Reader
	br  *bufio.Reader
	err error
}

func (b *chunkedBody) Read(p []byte) (int, error) {
	if b.err != nil {
		return 0, b.err
	}
	n, err := b.r.Read(p)
	if err == io.EOF {
		if terr := h1.ReadTrailers(b.br, nil); terr != nil {
			err = terr
		}
	}
	if err != nil {
		b.err = err
	}
	return n, err
}

// lengthReader reads a Content-Length body: io.ErrUnexpectedEOF when the connection ends before it, as net/http.
type lengthReader struct {
	r   *bufio.Reader
	n   int64
	err error
}

func (l *lengthReader) Read(b []byte) (int, error) {
	if l.n <= 0 {
		return 0, io.EOF
	}
	if l.err != nil {
		return 0, l.err
	}
	if int64(len(b)) > l.n {
		b = b[:l.n]
	}
	n, err := l.r.Read(b)
	l.n -= int64(n)
	if err == io.EOF && l.n > 0 {
		err = io.ErrUnexpectedEOF
	}
	if err != nil && l.n > 0 {
		l.err = err
		return n, err
	}
	return n, nil
}

// lazyGzip decompresses on the first read, as http.Transport's gzipReader: a broken gzip header is a body read
// error, not a failed request.
type lazyGzip struct {
	r  io.Reader
	zr *gzip.Reader
}

func (g *lazyGzip) Read(b []byte) (int, error) {
	if g.zr == nil {
		zr, err := gzip.NewReader(g.r)
		if err != nil {
			return 0, err
		}
		g.zr = zr
	}
	return g.zr.Read(b)
}

// gzipped reports a response whose Content-Encoding is gzip (http.Transport decompresses it when it asked).
func gzipped(r *h1.Response) bool {
	for rest := r.Fields; len(rest) > 2; {
		var line []byte
		line, rest = h1.NextLine(rest)
		name, value, _ := h1.SplitField(line)
		if h1.FoldEq(name, "content-encoding") {
			return h1.FoldEq(value, "gzip")
		}
	}
	return false
}

// responseHeader builds the http.Header net/http would give for r's fields (canonical names, values in order).
func responseHeader(r *h1.Response) http.Header {
	h := make(http.Header, 8)
	for rest := r.Fields; len(rest) > 2; {
		var line []byte
		line, rest = h1.NextLine(rest)
		name, value, _ := h1.SplitField(line)
		k := textproto.CanonicalMIMEHeaderKey(string(name))
		h[k] = append(h[k], string(value))
	}
	return h
}

// isParseError reports an error of Response.Read about the head's content rather than the connection's.
func isParseError(err error) bool {
	var ne net.Error
	return !errors.Is(err, io.ErrUnexpectedEOF) && !errors.Is(err, io.EOF) && !errors.As(err, &ne) && !errors.Is(err, os.ErrDeadlineExceeded)
}

// readFallback reads a response head internal/h1 refuses (a bare LF, an obs-fold, anything net/http reads more
// leniently or refuses with its own error) with net/http's parser, from the bytes already read (still in c.scratch)
// and the rest of the connection: the lean path then accepts exactly what http.Transport accepts. The connection
// is not reused after it. skipped counts the 1xx responses already skipped.
func (s *Sender) readFallback(ctx context.Context, c *leanConn, spec Spec, skipped int) attempt {
	br := bufio.NewReader(io.MultiReader(bytes.NewReader(c.scratch), c.br))
	for {
		resp, err := http.ReadResponse(br, nil)
		if err != nil {
			return attempt{err: fmt.Errorf("reading the response: %w", err)}
		}
		if resp.StatusCode < 200 && resp.StatusCode != http.StatusSwitchingProtocols {
			if skipped++; skipped > max1xxResponses {
				return attempt{err: errors.New("too many 1xx informational responses")}
			}
			continue
		}
		if s.lean.gzip && resp.ContentLength != 0 && strings.EqualFold(resp.Header.Get("Content-Encoding"), "gzip") {
			resp.Body = struct {
				io.Reader
				io.Closer
			}{&lazyGzip{r: resp.Body}, resp.Body}
			resp.Header.Del("Content-Encoding")
			resp.Header.Del("Content-Length")
			resp.ContentLength = -1
		}
		a := s.readResponse(ctx, resp, spec)
		_ = resp.Body.Close()
		return a
	}
}
