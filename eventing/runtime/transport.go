package runtime

import (
	"bytes"
	"context"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
)

// localTransport short-cuts deliveries to a Broker of this platform: a request whose URL is a Broker address on
// our gateway is served by the ingress handler in-process, without a TCP hop. It is the same handler the gateway
// runs, so validation, TTL, arrival time and the 202-after-stored answer are identical. Anything else goes to base.
type localTransport struct {
	base http.RoundTripper
	r    *Runtime
}

func (t *localTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	if ns, name, ok := t.r.localBroker(req.URL); ok && req.Method == http.MethodPost {
		t.r.mu.Lock()
		ing := t.r.ingress
		t.r.mu.Unlock()
		if ing != nil {
			in := req.Clone(req.Context())
			in.URL = &url.URL{Path: "/" + ns + "/" + name}
			in.RequestURI = in.URL.Path
			if in.Body == nil {
				in.Body = http.NoBody
			}
			rec := &recorder{header: http.Header{}}
			ing.ServeHTTP(rec, in)
			_ = in.Body.Close()
			return rec.response(req), nil
		}
	}
	return t.base.RoundTrip(req)
}

// Base and Intercepts make localTransport a delivery.Interceptor: the Sender's lean HTTP/1.1 client carries every
// delivery that is not to a local Broker, as base would.
func (t *localTransport) Base() *http.Transport {
	tr, _ := t.base.(*http.Transport)
	return tr
}

// Intercepts reports a delivery RoundTrip short-cuts to the ingress.
func (t *localTransport) Intercepts(u *url.URL) bool {
	_, _, ok := t.r.localBroker(u)
	return ok
}

// localBroker reports whether u addresses a ready Broker on this platform's gateway.
func (r *Runtime) localBroker(u *url.URL) (namespace, name string, ok bool) {
	gw, err := url.Parse(r.opts.GatewayURL())
	if err != nil || gw.Host == "" || !strings.EqualFold(u.Host, gw.Host) || u.Scheme != gw.Scheme {
		return "", "", false
	}
	parts := strings.Split(strings.Trim(u.Path, "/"), "/")
	if len(parts) != 2 {
		return "", "", false
	}
	if _, ok := r.brokerTopic(parts[0], parts[1]); !ok {
		return "", "", false
	}
	return parts[0], parts[1], true
}

// recorder is a minimal http.ResponseWriter that keeps the answer in memory.
type recorder struct {
	header http.Header
	code   int
	body   bytes.Buffer
}

func (w *recorder) Header() http.Header { return w.header }
func (w *recorder) WriteHeader(code int) {
	if w.code == 0 {
		w.code = code
	}
}
func (w *recorder) Write(b []byte) (int, error) {
	if w.code == 0 {
		w.code = http.StatusOK
	}
	return w.body.Write(b)
}

func (w *recorder) response(req *http.Request) *http.Response {
	if w.code == 0 {
		w.code = http.StatusOK
	}
	return &http.Response{
		Status: strconv.Itoa(w.code) + " " + http.StatusText(w.code), StatusCode: w.code,
		Proto: "HTTP/1.1", ProtoMajor: 1, ProtoMinor: 1,
		Header: w.header, Body: io.NopCloser(bytes.NewReader(w.body.Bytes())), ContentLength: int64(w.body.Len()),
		Request: req,
	}
}

// dialLocalhost wraps dial so that "localhost" and "*.localhost" (RFC 6761: always the loopback host; Knative
// Service URLs in tide are http://<name>.<ns>.localhost:<gateway port>) connect to the gateway's address when the
// port is the gateway's, and to 127.0.0.1 otherwise. The request keeps its Host, which the gateway routes by. Go's
// resolver does not map *.localhost to loopback by itself.
func (r *Runtime) dialLocalhost(dial func(ctx context.Context, network, addr string) (net.Conn, error)) func(ctx context.Context, network, addr string) (net.Conn, error) {
	return func(ctx context.Context, network, addr string) (net.Conn, error) {
		host, port, err := net.SplitHostPort(addr)
		if err == nil && (strings.EqualFold(host, "localhost") || strings.HasSuffix(strings.ToLower(host), ".localhost")) {
			target := "127.0.0.1"
			if gw, err := url.Parse(r.opts.GatewayURL()); err == nil && gw.Port() == port {
				if h := gw.Hostname(); h != "" && !net.ParseIP(h).IsUnspecified() {
					target = h
				}
			}
			addr = net.JoinHostPort(target, port)
		}
		return dial(ctx, network, addr)
	}
}
