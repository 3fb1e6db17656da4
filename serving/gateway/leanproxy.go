package gateway

import (
	"bufio"
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httputil"
	"net/url"
	"os"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"go.opentelemetry.io/otel/trace"
	"k8s.io/apimachinery/pkg/types"

	"github.com/tide-run/tide/internal/h1"
	"github.com/tide-run/tide/internal/tracing"
)

// The lean path's request: what leanserver.go hands here is a complete request head still in the connection's
// read buffer. The code below decides whether the lean path takes it (anything unusual goes to net/http, see
// Server), proxies it over the instance's keep-alive pool and writes the answer. Its behaviour is the gateway
// handler's for the same request: the same routing, throttling, stats, metrics, forwarding headers, hop-by-hop
// removal, timeout answers, retry of refused and stale connections, response framing (Date added, Content-Type
// sniffed when absent, as net/http's server does), trailers and streaming.

// leanResult says what the lean path did with a request.
type leanResult int

const (
	leanDone    leanResult = iota // answered; the connection takes its next request
	leanClose                     // answered or cut short; the connection closes
	leanHandOff                   // nothing consumed, nothing written: net/http takes the connection
)

// leanReq is a parsed request head. Its slices point into the connection's read buffer and are valid until the
// head is consumed.
type leanReq struct {
	head     []byte // request line through the empty line
	line     []byte // request line, without CRLF
	target   []byte // request target (origin-form)
	host     []byte // the Host header's value
	ua       []byte // User-Agent (first value), for the span
	isHead   bool   // method HEAD
	close    bool   // Connection: close
	hasXFP   bool
	hasXFH   bool
	hasFwd   bool
	xfp, xfh []byte
	xff      [][]byte // X-Forwarded-For values, in order (reused)
	tp, ts   []byte   // traceparent, tracestate (first values)
}

// Header names the lean path looks at.
const (
	hdrOther = iota
	hdrHost
	hdrContentLength
	hdrTransferEncoding
	hdrExpect
	hdrUpgrade
	hdrTE
	hdrTrailer
	hdrConnection
	hdrKeepAlive
	hdrProxyConnection
	hdrProxyAuthenticate
	hdrProxyAuthorization
	hdrXFF
	hdrXFP
	hdrXFH
	hdrForwarded
	hdrTraceparent
	hdrTracestate
	hdrContentType
	hdrDate
	hdrUserAgent
)

func classify(name []byte) int {
	switch len(name) {
	case 2:
		if h1.FoldEq(name, "te") {
			return hdrTE
		}
	case 4:
		if h1.FoldEq(name, "host") {
			return hdrHost
		}
		if h1.FoldEq(name, "date") {
			return hdrDate
		}
	case 6:
		if h1.FoldEq(name, "expect") {
			return hdrExpect
		}
	case 7:
		if h1.FoldEq(name, "upgrade") {
			return hdrUpgrade
		}
		if h1.FoldEq(name, "trailer") {
			return hdrTrailer
		}
	case 9:
		if h1.FoldEq(name, "forwarded") {
			return hdrForwarded
		}
	case 10:
		if h1.FoldEq(name, "connection") {
			return hdrConnection
		}
		if h1.FoldEq(name, "keep-alive") {
			return hdrKeepAlive
		}
		if h1.FoldEq(name, "tracestate") {
			return hdrTracestate
		}
		if h1.FoldEq(name, "user-agent") {
			return hdrUserAgent
		}
	case 11:
		if h1.FoldEq(name, "traceparent") {
			return hdrTraceparent
		}
	case 12:
		if h1.FoldEq(name, "content-type") {
			return hdrContentType
		}
	case 14:
		if h1.FoldEq(name, "content-length") {
			return hdrContentLength
		}
	case 15:
		if h1.FoldEq(name, "x-forwarded-for") {
			return hdrXFF
		}
	case 16:
		if h1.FoldEq(name, "proxy-connection") {
			return hdrProxyConnection
		}
		if h1.FoldEq(name, "x-forwarded-host") {
			return hdrXFH
		}
	case 17:
		if h1.FoldEq(name, "transfer-encoding") {
			return hdrTransferEncoding
		}
		if h1.FoldEq(name, "x-forwarded-proto") {
			return hdrXFP
		}
	case 18:
		if h1.FoldEq(name, "proxy-authenticate") {
			return hdrProxyAuthenticate
		}
	case 19:
		if h1.FoldEq(name, "proxy-authorization") {
			return hdrProxyAuthorization
		}
	}
	return hdrOther
}

// hopByHop reports the headers removeHopHeaders removes (RFC 9110 section 7.6.1), TE included: the lean path
// takes no request with TE, and a response's TE means nothing.
func hopByHop(k int) bool {
	switch k {
	case hdrConnection, hdrKeepAlive, hdrProxyConnection, hdrProxyAuthenticate, hdrProxyAuthorization, hdrTE,
		hdrTrailer, hdrTransferEncoding, hdrUpgrade:
		return true
	}
	return false
}

var (
	targetChars [256]bool // origin-form bytes the lean path forwards verbatim (RFC 3986 pchar, '/', '?'; '%' checked)
	hostChars   [256]bool // the bytes of the host names routes answer on, and a port
)

func init() {
	for c := 0; c < 256; c++ {
		alnum := 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9'
		targetChars[c] = alnum || strings.IndexByte("-._~!$&'()*+,;=:@/?%", byte(c)) >= 0
		hostChars[c] = alnum || strings.IndexByte(".-_:[]", byte(c)) >= 0
	}
}

func isHex(c byte) bool { return '0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F' }

// parse reads head into r and reports whether the lean path takes the request.
func (r *leanReq) parse(head []byte) bool {
	*r = leanReq{xff: r.xff[:0], head: head}
	line, rest := h1.NextLine(head)
	r.line = line
	switch {
	case len(line) > 4 && string(line[:4]) == "GET ":
		line = line[4:]
	case len(line) > 5 && string(line[:5]) == "HEAD ":
		line, r.isHead = line[5:], true
	default:
		return false // other methods are not replayable on a stale connection; net/http's path has the rules
	}
	const proto = " HTTP/1.1"
	if len(line) <= len(proto) || string(line[len(line)-len(proto):]) != proto {
		return false
	}
	target := line[:len(line)-len(proto)]
	r.target = target
	if target[0] != '/' {
		return false // absolute-form, asterisk: net/http's
	}
	for i := 0; i < len(target); i++ {
		c := target[i]
		if !targetChars[c] {
			return false
		}
		if c == '%' && (i+2 >= len(target) || !isHex(target[i+1]) || !isHex(target[i+2])) {
			return false
		}
	}
	hosts := 0
	for len(rest) > 2 { // rest ends with the empty line's CRLF
		line, rest = h1.NextLine(rest)
		name, value, ok := h1.SplitField(line)
		if !ok {
			return false
		}
		switch classify(name) {
		case hdrHost:
			hosts++
			r.host = value
		case hdrContentLength, hdrTransferEncoding, hdrExpect, hdrUpgrade, hdrTE, hdrTrailer:
			return false // a body, 100-continue, a protocol switch, trailers: net/http's path
		case hdrConnection:
			for len(value) > 0 {
				var tok []byte
				if i := h1.IndexByte(value, ','); i >= 0 {
					tok, value = h1.TrimOWS(value[:i]), value[i+1:]
				} else {
					tok, value = h1.TrimOWS(value), nil
				}
				switch {
				case len(tok) == 0, h1.FoldEq(tok, "keep-alive"):
				case h1.FoldEq(tok, "close"):
					r.close = true
				default:
					return false // upgrade, or headers named hop-by-hop: net/http's path
				}
			}
		case hdrXFP:
			if !r.hasXFP {
				r.hasXFP, r.xfp = true, value
			}
		case hdrXFH:
			if !r.hasXFH {
				r.hasXFH, r.xfh = true, value
			}
		case hdrForwarded:
			if !r.hasFwd {
				r.hasFwd = true
				if len(value) == 0 {
					return false // present but empty: the handler replaces it; rare, net/http's path
				}
			}
		case hdrXFF:
			r.xff = append(r.xff, value)
		case hdrTraceparent:
			if r.tp == nil {
				r.tp = value
			}
		case hdrTracestate:
			if r.ts == nil {
				r.ts = value
			}
		case hdrUserAgent:
			if r.ua == nil {
				r.ua = value
			}
		}
	}
	if hosts != 1 || len(r.host) == 0 || r.hasXFP && len(r.xfp) == 0 || r.hasXFH && len(r.xfh) == 0 {
		return false // net/http answers 400 to a missing or repeated Host; empty X-Forwarded-*: replaced there
	}
	for _, c := range r.host {
		if !hostChars[c] {
			return false
		}
	}
	return true
}

// lookupBytes is lookup for a Host header in the read buffer, without allocating.
func (g *Gateway) lookupBytes(host []byte) *hostRoute {
	if i := lastIndexByte(host, ':'); i >= 0 && host[len(host)-1] != ']' {
		host = host[:i]
	}
	hosts := *g.hosts.Load()
	if h, ok := hosts[string(host)]; ok {
		return h
	}
	var lower [256]byte
	if len(host) > len(lower) {
		return nil
	}
	for i, c := range host {
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		lower[i] = c
	}
	return hosts[string(lower[:len(host)])]
}

func lastIndexByte(b []byte, c byte) int {
	for i := len(b) - 1; i >= 0; i-- {
		if b[i] == c {
			return i
		}
	}
	return -1
}

// leanServe answers one request head, or hands it to net/http.
func (g *Gateway) leanServe(lc *leanConn, head []byte) leanResult {
	req := &lc.req
	if !req.parse(head) {
		return leanHandOff
	}
	h := g.lookupBytes(req.host)
	if h == nil || h.clusterLocal && !lc.loopback {
		return leanHandOff // the fallback, or the refusal: the handler's
	}
	return h.pick().leanServe(lc, req)
}

// errStale is an attempt on a reused keep-alive connection that failed before a response byte arrived: the
// instance closed it while idle, and the request goes again on a new connection (as http.Transport does).
var errStale = errors.New("stale keep-alive connection")

// errClientGone: the client closed its connection while the instance worked on its request.
var errClientGone = errors.New("client went away")

// leanServe proxies req to an instance of r that has a free slot now; with none (the activator would queue the
// request), or with the per-request timers of responseStartTimeoutSeconds/idleTimeoutSeconds, it hands the request
// to net/http, whose handler does all of that. With tracing on it records the span serve records (tracing.go).
func (r *revision) leanServe(lc *leanConn, req *leanReq) leanResult {
	if r.h2c.Load() {
		return leanHandOff
	}
	traced := !tracing.Off(r.g.tracer)
	timeout := time.Duration(r.timeout.Load())
	if rs, idle := time.Duration(r.responseStart.Load()), time.Duration(r.idle.Load()); (rs > 0 && rs < timeout) || idle > 0 {
		return leanHandOff
	}
	stats := r.g.opts.Stats
	started := false
	var (
		start     time.Time
		span      trace.Span
		waitStart time.Time
	)
	for attempt := 0; ; attempt++ {
		if traced {
			waitStart = time.Now()
		}
		b := r.thr.TryAcquire()
		if b == nil {
			if started {
				stats.RequestEnd(r.key, r.g.clock.Now()) // net/http's path counts it again from here
				if span != nil {
					span.End() // this attempt's; net/http's path records the request's own span
				}
			}
			return leanHandOff
		}
		be := b.(*backend)
		if be.pool == nil {
			r.thr.Release(b)
			return leanHandOff
		}
		if !started {
			started = true
			start = time.Now()
			if stats != nil {
				stats.RequestStart(r.key, r.g.clock.Now())
			} else {
				stats = nopStats{}
			}
			if traced {
				span, lc.inject = r.leanSpan(lc, req)
			} else {
				lc.inject = nil
			}
		}
		if span != nil && span.IsRecording() {
			r.acquired(span, b, waitStart)
		}
		res, status, refusedConn := r.leanExchange(lc, req, be, start)
		r.thr.Release(b)
		if !refusedConn {
			stats.RequestEnd(r.key, r.g.clock.Now())
			if span != nil {
				tracing.EndServer(span, status)
			}
			return res
		}
		r.g.log.Warn("instance refused a connection; removing it from rotation", "revision", r.key.String(), "addr", be.addr)
		r.remove(be.Backend)
		if attempt == maxRefusedAttempts-1 {
			res := r.leanAnswerError(lc, req, start, http.StatusBadGateway, "every instance refused the connection")
			stats.RequestEnd(r.key, r.g.clock.Now())
			if span != nil {
				tracing.EndServer(span, http.StatusBadGateway)
			}
			return res
		}
	}
}

type nopStats struct{}

func (nopStats) RequestStart(_ types.NamespacedName, _ time.Time) {}
func (nopStats) RequestEnd(_ types.NamespacedName, _ time.Time)   {}

// leanSpan starts the request's server span from the parsed head, as startSpan does from an *http.Request, and
// returns the headers the instance gets instead of the client's traceparent/tracestate.
func (r *revision) leanSpan(lc *leanConn, req *leanReq) (trace.Span, http.Header) {
	path := "/"
	if u, err := url.ParseRequestURI(string(req.target)); err == nil {
		path = u.Path
	}
	h := http.Header{}
	if req.tp != nil {
		h["Traceparent"] = []string{string(req.tp)}
	}
	if req.ts != nil {
		h["Tracestate"] = []string{string(req.ts)}
	}
	if req.ua != nil {
		h["User-Agent"] = []string{string(req.ua)}
	}
	method := http.MethodGet
	if req.isHead {
		method = http.MethodHead
	}
	hr := &http.Request{Method: method, URL: &url.URL{Path: path}, Host: string(req.host), Header: h,
		RemoteAddr: lc.remote, Proto: "HTTP/1.1", ProtoMajor: 1, ProtoMinor: 1}
	_, span := r.startSpan(context.Background(), hr)
	return span, h
}

// leanExchange sends req to be and writes the answer. refusedConn: the instance refused the connection, nothing
// was sent or written, and the caller tries another instance.
func (r *revision) leanExchange(lc *leanConn, req *leanReq, be *backend, start time.Time) (res leanResult, status int, refusedConn bool) {
	deadline := start.Add(time.Duration(r.timeout.Load()))
	var (
		pc   *poolConn
		resp *leanResp
		err  error
	)
	for {
		pc, err = be.pool.getLean()
		if err != nil {
			if refused(err) {
				return leanHandOff, 0, true
			}
			return r.leanAnswerError(lc, req, start, http.StatusBadGateway, "upstream error: "+err.Error()), http.StatusBadGateway, false
		}
		resp, err = lc.roundTrip(pc, req, deadline)
		if err == nil {
			break
		}
		pc.c.Close()
		if errors.Is(err, errStale) {
			continue
		}
		if errors.Is(err, errClientGone) { // nothing to answer; counted as net/http's path counts it (499)
			r.requests.Add(1)
			r.finish(499, start)
			return leanClose, 499, false
		}
		if errors.Is(err, os.ErrDeadlineExceeded) {
			return r.leanAnswerError(lc, req, start, http.StatusGatewayTimeout, "request timeout"), http.StatusGatewayTimeout, false
		}
		return r.leanAnswerError(lc, req, start, http.StatusBadGateway, "upstream error: "+err.Error()), http.StatusBadGateway, false
	}
	// Committed: the request is consumed and answered here.
	_, _ = lc.br.Discard(len(req.head))
	r.requests.Add(1)
	lc.s.leanAnswered.Add(1) // before a byte of the answer goes out, so a test that got it sees the count
	status, res, reusable := lc.copyResponse(pc, req, resp, r.g.bufs)
	if reusable {
		_ = pc.c.SetDeadline(time.Time{})
	}
	be.pool.put(pc, reusable)
	r.finish(status, start)
	return res, status, false
}

// finish records an answered request as serve does.
func (r *revision) finish(status int, start time.Time) {
	if status >= 500 {
		r.errors.Add(1)
	}
	if m := r.g.metrics.Load(); m != nil {
		m.observe(r, status, start)
	}
}

// leanAnswerError answers a request the lean path failed to proxy, as proxyError and http.Error do.
func (r *revision) leanAnswerError(lc *leanConn, req *leanReq, start time.Time, status int, msg string) leanResult {
	_, _ = lc.br.Discard(len(req.head))
	r.requests.Add(1)
	lc.s.leanAnswered.Add(1)
	if status == http.StatusBadGateway {
		r.g.log.Debug("proxy error", "revision", r.key.String(), "error", msg)
	}
	w := lc.bw
	writeStatusLine(w, status)
	w.WriteString("Content-Type: text/plain; charset=utf-8\r\nX-Content-Type-Options: nosniff\r\nDate: ")
	w.Write(lc.s.date())
	w.WriteString("\r\nContent-Length: ")
	w.WriteString(strconv.Itoa(len(msg) + 1))
	if req.close {
		w.WriteString("\r\nConnection: close")
	}
	w.WriteString("\r\n\r\n")
	if !req.isHead {
		w.WriteString(msg)
		w.WriteString("\n")
	}
	r.finish(status, start)
	if req.close {
		return leanClose
	}
	return leanDone // leanConn.serve flushes it
}

func writeStatusLine(w *bufio.Writer, status int) {
	if status == http.StatusOK {
		w.WriteString("HTTP/1.1 200 OK\r\n")
		return
	}
	w.WriteString("HTTP/1.1 ")
	var b [3]byte
	w.Write(strconv.AppendInt(b[:0], int64(status), 10))
	w.WriteByte(' ')
	if t := http.StatusText(status); t != "" {
		w.WriteString(t)
	} else {
		w.WriteString("status code ")
		w.WriteString(strconv.Itoa(status))
	}
	w.WriteString("\r\n")
}

// getLean takes an idle connection or dials one; the lean path bounds the exchange with the connection's deadline.
func (p *connPool) getLean() (*poolConn, error) {
	p.mu.Lock()
	if n := len(p.idle); n > 0 {
		pc := p.idle[n-1]
		p.idle[n-1] = nil
		p.idle = p.idle[:n-1]
		p.mu.Unlock()
		pc.reused = true
		return pc, nil
	}
	p.mu.Unlock()
	c, err := p.dial(context.Background(), "tcp", p.addr)
	if err != nil {
		return nil, err
	}
	return &poolConn{c: c, br: bufio.NewReaderSize(c, 4<<10), bw: bufio.NewWriterSize(c, 4<<10)}, nil
}

// roundTrip writes the outgoing request on pc and reads the response head (skipping 1xx). errStale: pc was reused
// and failed before any response byte.
func (lc *leanConn) roundTrip(pc *poolConn, req *leanReq, deadline time.Time) (*leanResp, error) {
	_ = pc.c.SetDeadline(deadline)
	lc.writeOutgoing(pc.bw, req)
	err := pc.bw.Flush()
	if err == nil {
		lc.armWatch(pc)
		_, err = pc.br.Peek(1)
		lc.disarmWatch()
		if lc.clientGone {
			return nil, errClientGone
		}
	}
	if err != nil {
		if pc.reused && !errors.Is(err, os.ErrDeadlineExceeded) {
			return nil, errStale
		}
		return nil, err
	}
	resp := &lc.resp
	for n := 0; ; n++ {
		if err := resp.Read(pc.br, &lc.rhead); err != nil {
			return nil, err
		}
		switch {
		case resp.Status == http.StatusSwitchingProtocols:
			return nil, errors.New("101 Switching Protocols answered a request that asked for no upgrade")
		case resp.Status >= 100 && resp.Status < 200:
			if n == max1xxResponses {
				return nil, errTooMany1xx
			}
			continue // informational: dropped, as http.Transport does
		}
		return resp, nil
	}
}

// writeOutgoing writes the request the instance gets: the request line and headers as the client sent them,
// hop-by-hop headers removed, and the forwarding headers setForwardedInto and appendXFFInto add.
func (lc *leanConn) writeOutgoing(w *bufio.Writer, req *leanReq) {
	w.Write(req.line)
	w.WriteString("\r\n")
	_, rest := h1.NextLine(req.head)
	for len(rest) > 2 {
		var line []byte
		line, rest = h1.NextLine(rest)
		name, _, _ := h1.SplitField(line)
		if k := classify(name); hopByHop(k) || k == hdrXFF || lc.inject != nil && (k == hdrTraceparent || k == hdrTracestate) {
			continue
		}
		w.Write(line)
		w.WriteString("\r\n")
	}
	if lc.inject != nil { // the span's context replaces the client's (startSpan)
		for _, k := range [2]string{"Traceparent", "Tracestate"} {
			for _, v := range lc.inject[k] {
				w.WriteString(k)
				w.WriteString(": ")
				w.WriteString(v)
				w.WriteString("\r\n")
			}
		}
	}
	proto := req.xfp
	if !req.hasXFP {
		w.WriteString("X-Forwarded-Proto: http\r\n")
	}
	fhost := req.xfh
	if !req.hasXFH {
		fhost = req.host
		w.WriteString("X-Forwarded-Host: ")
		w.Write(fhost)
		w.WriteString("\r\n")
	}
	client := lc.client
	if !req.hasFwd {
		w.WriteString("Forwarded: ")
		if len(req.xff) == 0 && client != "" && !strings.ContainsAny(client, ":, \t") {
			w.WriteString("for=")
			w.WriteString(client)
			w.WriteString(";host=")
			w.Write(fhost)
			w.WriteString(";proto=")
			if req.hasXFP {
				w.Write(proto)
			} else {
				w.WriteString("http")
			}
		} else {
			p := "http"
			if req.hasXFP {
				p = string(proto)
			}
			w.WriteString(forwardedValue(joinXFF(req.xff, client), string(fhost), p))
		}
		w.WriteString("\r\n")
	}
	if client != lc.remote { // RemoteAddr was host:port
		w.WriteString("X-Forwarded-For: ")
		for _, v := range req.xff {
			w.Write(v)
			w.WriteString(", ")
		}
		w.WriteString(client)
		w.WriteString("\r\n")
	}
	w.WriteString("\r\n")
}

func joinXFF(prior [][]byte, client string) string {
	var b strings.Builder
	for _, v := range prior {
		b.Write(v)
		b.WriteString(", ")
	}
	b.WriteString(client)
	return b.String()
}

// leanResp is an instance's response head, copied out of the connection's buffer (internal/h1 parses it).
type leanResp = h1.Response

// copyResponse writes resp's head and body to the client. status is what the client got; reusable says the
// instance's connection may serve another request (the body was read to its end).
func (lc *leanConn) copyResponse(pc *poolConn, req *leanReq, resp *leanResp, bufs *bufferPool) (status int, res leanResult, reusable bool) {
	status = resp.Status
	noBody := req.isHead || status == http.StatusNoContent || status == http.StatusNotModified
	res = leanDone
	if req.close {
		res = leanClose
	}
	w := lc.bw
	if noBody || resp.ContentLength >= 0 {
		// Known length (or none): the body is read straight out of the instance connection's buffer.
		var sniff []byte
		if !noBody && !resp.HasContentType && resp.ContentLength > 0 {
			if _, err := pc.br.Peek(1); err != nil {
				return status, leanClose, false // cut before the body: nothing was written yet, close (as abort)
			}
			sniff, _ = pc.br.Peek(int(min(int64(pc.br.Buffered()), resp.ContentLength, 512)))
		}
		lc.writeResponseHead(req, resp, noBody, sniff)
		if noBody {
			return status, res, !resp.Close
		}
		remaining := resp.ContentLength
		var bp *[]byte
		defer func() {
			if bp != nil {
				bufs.put(bp)
			}
		}()
		for remaining > 0 {
			var n int
			var err error
			if pc.br.Buffered() == 0 && remaining >= int64(pc.br.Size()) {
				if bp == nil {
					bp = bufs.get()
				}
				buf := *bp
				n, err = pc.br.Read(buf[:min(int64(len(buf)), remaining)])
				if n > 0 {
					if _, werr := w.Write(buf[:n]); werr != nil {
						return status, leanClose, false
					}
				}
			} else {
				if _, err = pc.br.Peek(1); err == nil {
					n = int(min(int64(pc.br.Buffered()), remaining))
					b, _ := pc.br.Peek(n)
					if _, werr := w.Write(b); werr != nil {
						return status, leanClose, false
					}
					_, _ = pc.br.Discard(n)
				}
			}
			remaining -= int64(n)
			if err != nil && remaining > 0 {
				_ = w.Flush()
				return status, leanClose, false // cut short: the client sees the connection close early
			}
			if resp.EventStream && w.Flush() != nil {
				return status, leanClose, false
			}
		}
		return status, res, !resp.Close // the last bytes go out in leanConn.serve, after the slot is released
	}
	// Chunked or delimited by the close: streamed to the client in chunks, flushed as they come.
	var body io.Reader = pc.br
	if resp.Chunked {
		body = httputil.NewChunkedReader(pc.br)
	}
	bp := bufs.get()
	defer bufs.put(bp)
	buf := *bp
	n, err := body.Read(buf)
	var sniff []byte
	if !resp.HasContentType && n > 0 {
		sniff = buf[:min(n, 512)]
	}
	lc.writeResponseHead(req, resp, false, sniff)
	for {
		if n > 0 {
			writeChunk(w, buf[:n])
			if w.Flush() != nil {
				return status, leanClose, false
			}
		}
		if err == io.EOF {
			break
		}
		if err != nil {
			lc.s.g.log.Debug("response cut: reading the instance's body failed", "addr", pc.c.RemoteAddr().String(), "err", err)
			_ = w.Flush()
			return status, leanClose, false // cut: no last chunk, the client sees the body end early
		}
		n, err = body.Read(buf)
	}
	w.WriteString("0\r\n")
	if resp.Chunked {
		if !lc.copyTrailers(pc.br) {
			return status, leanClose, false
		}
	}
	w.WriteString("\r\n")
	return status, res, resp.Chunked && !resp.Close
}

func writeChunk(w *bufio.Writer, b []byte) {
	var hex [16]byte
	w.Write(strconv.AppendInt(hex[:0], int64(len(b)), 16))
	w.WriteString("\r\n")
	w.Write(b)
	w.WriteString("\r\n")
}

// copyTrailers copies the trailer section after a last chunk to the client, without hop-by-hop fields and
// framing ones; false when it is malformed or too large.
func (lc *leanConn) copyTrailers(br *bufio.Reader) bool {
	return h1.ReadTrailers(br, func(line, name []byte) {
		if k := classify(name); !hopByHop(k) && k != hdrContentLength {
			lc.bw.Write(line)
		}
	}) == nil
}

// writeResponseHead writes the status line and the instance's headers, less hop-by-hop ones, with the framing
// of the body as it goes to the client; Date and a sniffed Content-Type are added when absent, as net/http's
// server adds them to what the handler copied.
func (lc *leanConn) writeResponseHead(req *leanReq, resp *leanResp, noBody bool, sniff []byte) {
	w := lc.bw
	writeStatusLine(w, resp.Status)
	for rest := resp.Fields; len(rest) > 2; {
		var line []byte
		line, rest = h1.NextLine(rest)
		name, _, _ := h1.SplitField(line)
		k := classify(name)
		if hopByHop(k) || k == hdrContentLength && !noBody || len(resp.Conn) > 0 && resp.NamedByConnection(name) {
			continue
		}
		w.Write(line)
		w.WriteString("\r\n")
	}
	if !noBody {
		if resp.ContentLength >= 0 {
			w.WriteString("Content-Length: ")
			var b [20]byte
			w.Write(strconv.AppendInt(b[:0], resp.ContentLength, 10))
			w.WriteString("\r\n")
		} else {
			w.WriteString("Transfer-Encoding: chunked\r\n")
		}
	}
	if !resp.HasDate {
		w.WriteString("Date: ")
		w.Write(lc.s.date())
		w.WriteString("\r\n")
	}
	if len(sniff) > 0 {
		w.WriteString("Content-Type: ")
		w.WriteString(http.DetectContentType(sniff))
		w.WriteString("\r\n")
	}
	if req.close {
		w.WriteString("Connection: close\r\n")
	}
	w.WriteString("\r\n")
}

// dateCache is the Date header's value, formatted once a second.
type dateCache struct {
	v atomic.Pointer[cachedDate]
}

type cachedDate struct {
	sec int64
	b   []byte
}

func (d *dateCache) get() []byte {
	now := time.Now()
	if c := d.v.Load(); c != nil && c.sec == now.Unix() {
		return c.b
	}
	c := &cachedDate{sec: now.Unix(), b: now.UTC().AppendFormat(nil, http.TimeFormat)}
	d.v.Store(c)
	return c.b
}
