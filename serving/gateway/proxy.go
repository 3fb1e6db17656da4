package gateway

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"syscall"
)

// hopHeaders are removed from both directions of a proxied exchange (RFC 9110 section 7.6.1).
var hopHeaders = []string{
	"Connection", "Proxy-Connection", "Keep-Alive", "Proxy-Authenticate", "Proxy-Authorization",
	"Te", "Trailer", "Transfer-Encoding", "Upgrade",
}

func removeHopHeaders(h http.Header) {
	if c, ok := h["Connection"]; ok {
		for _, v := range c {
			for f := range strings.SplitSeq(v, ",") {
				if f = strings.TrimSpace(f); f != "" {
					h.Del(f)
				}
			}
		}
	}
	for _, k := range hopHeaders {
		if _, ok := h[k]; ok {
			if k == "Te" && h.Get("Te") == "trailers" {
				continue // gRPC needs it end to end
			}
			delete(h, k)
		}
	}
}

// isUpgrade reports a protocol switch (WebSocket); those go through httputil.ReverseProxy, which tunnels them.
func isUpgrade(r *http.Request) bool {
	for _, v := range r.Header["Connection"] {
		for f := range strings.SplitSeq(v, ",") {
			if strings.EqualFold(strings.TrimSpace(f), "upgrade") {
				return true
			}
		}
	}
	return false
}

// outgoing turns the server's request into the one sent to an instance. It reuses the request instead of cloning
// it (the gateway owns it and never reads it again) — the hot path — and is called once per request, before any
// attempt, so retries do not repeat header edits. req must already be a private shallow copy (WithContext). pc
// provides the storage for the copied URL and the added header values, so they cost no allocations of their own.
func outgoing(req *http.Request, pc *proxyCall) *http.Request {
	out := req
	pc.url = *req.URL
	pc.url.Scheme = "http"
	out.URL = &pc.url
	out.RequestURI = ""
	out.Close = false // a client's Connection: close must not close the pooled backend connection
	if out.ContentLength == 0 {
		out.Body = nil
	} else if out.Body != nil {
		// The transport closes the body when an attempt fails; keep the server's body open so a refused
		// connection can be retried on another instance (nothing has been read from it then).
		out.Body = noClose{out.Body}
	}
	removeHopHeaders(out.Header)
	if _, ok := out.Header["User-Agent"]; !ok {
		out.Header["User-Agent"] = nil // do not let the transport add Go's default
	}
	client := clientAddr(out)
	setForwardedInto(out, client, &pc.hdr)
	if client != out.RemoteAddr { // RemoteAddr parsed as host:port
		appendXFFInto(out, client, &pc.hdr)
	}
	return out
}

// proxyCall is the per-request state of a plain (non-upgrade) proxied request, allocated once per request.
type proxyCall struct {
	sw  statusWriter
	url url.URL
	hdr headerScratch
}

type noClose struct{ io.Reader }

func (noClose) Close() error { return nil }

// refused reports an attempt that never reached the instance: the connection was refused, so nothing was sent
// and the instance is not listening (it exited or is shutting down).
func refused(err error) bool {
	var op *net.OpError
	return errors.As(err, &op) && op.Op == "dial" && errors.Is(err, syscall.ECONNREFUSED)
}

// forward sends out to the instance and copies the response to w. It returns retry=true, having written nothing,
// when the instance refused the connection.
func (be *backend) forward(w http.ResponseWriter, out *http.Request, rev *revision, tm *timeouts) (retry bool) {
	out.URL.Host = be.addr
	var (
		resp *http.Response
		pc   *poolConn
		err  error
	)
	if be.pool != nil && tm == nil && fastEligible(out) {
		resp, pc, err = be.pool.roundTrip(out)
	} else {
		resp, err = be.transport.RoundTrip(out)
	}
	if err != nil {
		if refused(err) && out.Context().Err() == nil {
			return true
		}
		rev.proxyError(w, out, err)
		return false
	}
	eof := false
	if pc != nil {
		// The connection goes back to the pool only when the body was read to its end; on every other exit
		// (client gone, the response cut short, a panic) it is closed, which also ends the body (Body.Close would
		// read the rest of it first).
		defer func() { be.pool.release(pc, eof && !resp.Close) }()
	} else {
		defer resp.Body.Close()
	}
	tm.headers()
	removeHopHeaders(resp.Header)
	dst := w.Header()
	for k, vv := range resp.Header {
		dst[k] = vv
	}
	w.WriteHeader(resp.StatusCode)
	// Stream unknown-length and event-stream bodies as they come; buffer the rest through the server's writer.
	flush := resp.ContentLength == -1 || strings.HasPrefix(resp.Header.Get("Content-Type"), "text/event-stream")
	bp := rev.g.bufs.get()
	defer rev.g.bufs.put(bp)
	buf := *bp
	var fl http.Flusher
	if flush {
		fl, _ = w.(http.Flusher)
	}
	for {
		n, rerr := resp.Body.Read(buf)
		if n > 0 {
			tm.progress()
			if _, werr := w.Write(buf[:n]); werr != nil {
				return false // client gone
			}
			if fl != nil {
				fl.Flush()
			}
		}
		if rerr == io.EOF {
			eof = true
			break
		}
		if rerr != nil {
			// Headers are out: the only signal left is cutting the response short.
			via := "transport"
			if pc != nil {
				via = "pool"
			}
			rev.g.log.Debug("response cut: reading the instance's body failed", "revision", rev.key.String(),
				"addr", be.addr, "method", out.Method, "path", out.URL.Path, "via", via, "err", rerr,
				"cause", context.Cause(out.Context()))
			panic(http.ErrAbortHandler)
		}
	}
	for k, vv := range resp.Trailer {
		dst[http.TrailerPrefix+k] = vv
	}
	return false
}

// appendXFF adds the client address to X-Forwarded-For, as every proxy hop does.
func appendXFF(out *http.Request) {
	client, _, err := net.SplitHostPort(out.RemoteAddr)
	if err != nil {
		return
	}
	appendXFFInto(out, client, new(headerScratch))
}

func appendXFFInto(out *http.Request, client string, s *headerScratch) {
	if prior := out.Header["X-Forwarded-For"]; len(prior) > 0 {
		out.Header["X-Forwarded-For"] = s.one(scratchXFF, strings.Join(prior, ", ")+", "+client)
		return
	}
	out.Header["X-Forwarded-For"] = s.one(scratchXFF, client)
}
