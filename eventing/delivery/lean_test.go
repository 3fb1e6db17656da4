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
	"net/http/httptest"
	"net/url"
	"reflect"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	cloudevents "github.com/cloudevents/sdk-go/v2"
	"go.opentelemetry.io/otel/trace"

	"github.com/tide-run/tide/internal/h1"
)

// netHTTPSender is a Sender with the lean path off: every request goes through http.Transport, the reference the
// lean path is compared with.
func netHTTPSender() *Sender {
	s := New(Options{})
	s.lean = nil
	return s
}

// leanIdle is how many connections the lean pool of target holds: non-zero after a delivery only when the lean
// path carried it.
func leanIdle(s *Sender, target *url.URL) int {
	if s.lean == nil {
		return 0
	}
	v, ok := s.lean.hosts.Load(target.Host)
	if !ok {
		return 0
	}
	p := v.(*hostPool)
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.idle)
}

// rawServer is a real TCP server that hands each request's raw bytes (head and Content-Length body) to answer,
// which writes the raw response; answer returning false closes the connection.
type rawServer struct {
	l     net.Listener
	conns atomic.Int32
	mu    sync.Mutex
	reqs  [][]byte
}

func startRaw(t *testing.T, answer func(n int, req []byte, c net.Conn) bool) *rawServer {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	rs := &rawServer{l: l}
	var wg sync.WaitGroup
	var open []net.Conn // closed at cleanup: the clients keep their connections alive
	t.Cleanup(func() {
		l.Close()
		rs.mu.Lock()
		for _, c := range open {
			c.Close()
		}
		rs.mu.Unlock()
		wg.Wait()
	})
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			rs.conns.Add(1)
			rs.mu.Lock()
			open = append(open, c)
			rs.mu.Unlock()
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer c.Close()
				br := bufio.NewReader(c)
				for {
					req, err := readRawRequest(br)
					if err != nil {
						return
					}
					rs.mu.Lock()
					rs.reqs = append(rs.reqs, req)
					n := len(rs.reqs)
					rs.mu.Unlock()
					if !answer(n, req, c) {
						return
					}
				}
			}()
		}
	}()
	return rs
}

func (rs *rawServer) url() *url.URL {
	return &url.URL{Scheme: "http", Host: rs.l.Addr().String(), Path: "/"}
}

func (rs *rawServer) requests() [][]byte {
	rs.mu.Lock()
	defer rs.mu.Unlock()
	return append([][]byte(nil), rs.reqs...)
}

// readRawRequest reads one request's bytes as they arrived: the head and a Content-Length body.
func readRawRequest(br *bufio.Reader) ([]byte, error) {
	var raw []byte
	cl := 0
	for {
		line, err := br.ReadSlice('\n')
		if err != nil {
			return nil, err
		}
		raw = append(raw, line...)
		if l := strings.ToLower(string(line)); strings.HasPrefix(l, "content-length:") {
			cl, _ = strconv.Atoi(strings.TrimSpace(l[len("content-length:"):]))
		}
		if string(line) == "\r\n" {
			break
		}
	}
	body := make([]byte, cl)
	if _, err := io.ReadFull(br, body); err != nil {
		return nil, err
	}
	return append(raw, body...), nil
}

func answerWith(resp string) func(int, []byte, net.Conn) bool {
	return func(_ int, _ []byte, c net.Conn) bool { _, err := io.WriteString(c, resp); return err == nil }
}

// TestLeanRequestMatchesNetHTTP: for every shape of delivery the request the lean path writes is, byte for byte,
// the one http.Transport writes (request line, Host, User-Agent, Content-Length, sorted headers, Accept-Encoding,
// body), and a real net/http server reads the same header set from both.
func TestLeanRequestMatchesNetHTTP(t *testing.T) {
	rs := startRaw(t, answerWith("HTTP/1.1 202 Accepted\r\nContent-Length: 0\r\n\r\n"))
	noData := cloudevents.NewEvent()
	noData.SetID("no-data")
	noData.SetSource("/s")
	noData.SetType("t")
	full := testEvent()
	full.SetSubject("subj")
	full.SetDataSchema("http://schema.example/x")
	full.SetTime(time.Date(2026, 12, 8, 1, 2, 3, 456, time.UTC))
	full.SetExtension("knativearrivaltime", time.Date(2026, 12, 8, 1, 2, 3, 0, time.UTC))
	full.SetExtension("partitionkey", "k")
	full.SetExtension("count", 42)
	full.SetExtension("flag", true)
	full.SetExtension("traceparent", "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01")
	spaced := testEvent()
	spaced.SetExtension("padded", "  v  ")
	spaced.SetSubject("\tsubject with tab and ünïcode ")
	tid, _ := trace.TraceIDFromHex("4bf92f3577b34da6a3ce929d0e0e4736")
	sid, _ := trace.SpanIDFromHex("00f067aa0ba902b7")
	ts, _ := trace.ParseTraceState("vendor=a,other=b")
	traced := trace.ContextWithRemoteSpanContext(context.Background(), trace.NewSpanContext(trace.SpanContextConfig{
		TraceID: tid, SpanID: sid, TraceFlags: trace.FlagsSampled, TraceState: ts}))
	base := rs.url()
	withQuery := *base
	withQuery.Path, withQuery.RawQuery = "/a/b c", "x=1&y=%20"
	cases := []struct {
		name   string
		ctx    context.Context
		target *url.URL
		ev     cloudevents.Event
		spec   Spec
	}{
		{"binary", context.Background(), base, testEvent(), Spec{}},
		{"binary, no data", context.Background(), base, noData, Spec{}},
		{"binary, every attribute and extensions", context.Background(), base, full, Spec{}},
		{"binary, values to trim", context.Background(), base, spaced, Spec{}},
		{"structured", context.Background(), base, full, Spec{Format: FormatJSON}},
		{"prefer reply", context.Background(), base, testEvent(), Spec{PreferReply: true}},
		{"traced", traced, base, full, Spec{PreferReply: true}},
		{"path and query", context.Background(), &withQuery, testEvent(), Spec{}},
		{"another path, with a timeout", context.Background(), &url.URL{Scheme: "http", Host: base.Host, Path: "/p"}, testEvent(), Spec{Timeout: time.Second}},
	}
	lean, ref := New(Options{}), netHTTPSender()
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var got [2][]byte
			for i, s := range []*Sender{lean, ref} {
				before := len(rs.requests())
				if res := s.Send(c.ctx, c.target, c.ev, c.spec); res.Outcome != Delivered {
					t.Fatalf("%+v", res)
				}
				reqs := rs.requests()
				if len(reqs) != before+1 {
					t.Fatalf("%d requests arrived, want 1", len(reqs)-before)
				}
				got[i] = reqs[len(reqs)-1]
			}
			if leanIdle(lean, c.target) == 0 {
				t.Fatal("the lean path did not carry the delivery")
			}
			if !bytes.Equal(got[0], got[1]) {
				t.Fatalf("lean request\n%q\nnet/http request\n%q", got[0], got[1])
			}
			lr, err1 := http.ReadRequest(bufio.NewReader(bytes.NewReader(got[0])))
			nr, err2 := http.ReadRequest(bufio.NewReader(bytes.NewReader(got[1])))
			if err1 != nil || err2 != nil || !reflect.DeepEqual(lr.Header, nr.Header) || lr.Host != nr.Host || lr.RequestURI != nr.RequestURI {
				t.Fatalf("a net/http server reads them differently: %v %v\n%v\n%v", err1, err2, lr, nr)
			}
		})
	}
}

// TestLeanResponses: every framing of a response gives the lean path the attempt net/http gives (status, body kept
// as error data or reply, reply event, errors), and the connection is reused exactly when the response allows it.
func TestLeanResponses(t *testing.T) {
	replyHead := "Ce-Id: r1\r\nCe-Source: /r\r\nCe-Specversion: 1.0\r\nCe-Type: t\r\nContent-Type: application/json\r\n"
	cases := []struct {
		name   string
		resp   string
		reply  bool // Prefer: reply
		reuse  bool // the lean path keeps the connection
		closes bool // the server closes after answering
	}{
		{name: "content-length", resp: "HTTP/1.1 500 Internal Server Error\r\nContent-Type: text/plain\r\nContent-Length: 4\r\n\r\nboom", reuse: true},
		{name: "content-length reply", resp: "HTTP/1.1 200 OK\r\n" + replyHead + "Content-Length: 7\r\n\r\n{\"a\":1}", reply: true, reuse: true},
		{name: "chunked reply with trailers", resp: "HTTP/1.1 200 OK\r\n" + replyHead + "Transfer-Encoding: chunked\r\nTrailer: X-Sum\r\n\r\n" +
			"3\r\n{\"a\r\n4;ext=1\r\n\":1}\r\n0\r\nX-Sum: 42\r\n\r\n", reply: true, reuse: true},
		{name: "chunked error data", resp: "HTTP/1.1 503 Service Unavailable\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n", reuse: true},
		{name: "1xx before the answer", resp: "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early Hints\r\nLink: </a>\r\n\r\nHTTP/1.1 202 Accepted\r\nContent-Length: 0\r\n\r\n", reuse: true},
		{name: "connection close", resp: "HTTP/1.1 202 Accepted\r\nConnection: close\r\nContent-Length: 0\r\n\r\n", closes: true},
		{name: "HTTP/1.0 until the close", resp: "HTTP/1.0 200 OK\r\n" + replyHead + "\r\n{\"a\":1}", reply: true, closes: true},
		{name: "204 reply in headers", resp: "HTTP/1.1 204 No Content\r\n" + replyHead + "\r\n", reply: true, reuse: true},
		{name: "304", resp: "HTTP/1.1 304 Not Modified\r\nETag: \"x\"\r\n\r\n", reuse: true},
		{name: "bad reply", resp: "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 3\r\n\r\nnot", reply: true, reuse: true},
		{name: "gzip reply", resp: "HTTP/1.1 200 OK\r\n" + replyHead + "Content-Encoding: gzip\r\nContent-Length: " + strconv.Itoa(len(gzipped7)) + "\r\n\r\n" + gzipped7, reply: true},
		{name: "bad chunk size", resp: "HTTP/1.1 200 OK\r\n" + replyHead + "Transfer-Encoding: chunked\r\n\r\nzz\r\n{\"a\":1}\r\n0\r\n\r\n", reply: true, closes: true},
		{name: "bad chunk size, no reply wanted", resp: "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nx\r\n0\r\n\r\n", closes: true},
		{name: "truncated body", resp: "HTTP/1.1 500 Oops\r\nContent-Length: 10\r\n\r\nabc", closes: true},
		{name: "malformed head", resp: "HTTP/1.1 200 OK\r\nX: a\r\n folded\r\nContent-Length: 0\r\n\r\n", closes: true},
		{name: "header Ce- alone", resp: "HTTP/1.1 200 OK\r\n" + replyHead + "Ce-: x\r\nContent-Length: 0\r\n\r\n", reply: true, reuse: true},
		{name: "101", resp: "HTTP/1.1 101 Switching Protocols\r\nUpgrade: x\r\n\r\n", closes: true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			rs := startRaw(t, func(_ int, _ []byte, conn net.Conn) bool {
				_, err := io.WriteString(conn, c.resp)
				return err == nil && !c.closes
			})
			target, ev := rs.url(), testEvent()
			spec := Spec{PreferReply: c.reply, Timeout: 5 * time.Second}
			var as [2]attempt
			for i, s := range []*Sender{New(Options{}), netHTTPSender()} {
				as[i] = s.once(context.Background(), target, &ev, nil, spec, 0)
				if i == 0 && (leanIdle(s, target) == 1) != c.reuse {
					t.Errorf("lean path kept the connection: %v, want %v", leanIdle(s, target) == 1, c.reuse)
				}
			}
			l, n := as[0], as[1]
			if l.status != n.status || !bytes.Equal(l.body, n.body) || (l.err == nil) != (n.err == nil) ||
				(l.badReply == nil) != (n.badReply == nil) || (l.reply == nil) != (n.reply == nil) ||
				l.reply != nil && !reflect.DeepEqual(l.reply, n.reply) {
				t.Fatalf("lean: status %d body %q err %v bad %v reply %v\nnet/http: status %d body %q err %v bad %v reply %v",
					l.status, l.body, l.err, l.badReply, l.reply, n.status, n.body, n.err, n.badReply, n.reply)
			}
			if c.reply && l.status == 200 && l.err == nil && l.badReply == nil && l.reply == nil {
				t.Fatal("no reply read")
			}
		})
	}
}

// gzipped7 is `{"a":1}` gzip-compressed.
var gzipped7 = func() string {
	var b bytes.Buffer
	zw := gzip.NewWriter(&b)
	_, _ = zw.Write([]byte(`{"a":1}`))
	_ = zw.Close()
	return b.String()
}()

// TestLeanStaleConnection: a kept-alive connection the server closed while idle is not used (the next delivery
// goes on a new connection, once); a connection the server closes after reading the request, without answering,
// fails the attempt without a silent resend, as http.Transport does for a POST.
func TestLeanStaleConnection(t *testing.T) {
	t.Run("closed while idle", func(t *testing.T) {
		closed := make(chan struct{}, 4)
		rs := startRaw(t, func(_ int, _ []byte, c net.Conn) bool {
			_, _ = io.WriteString(c, "HTTP/1.1 202 Accepted\r\nContent-Length: 0\r\n\r\n")
			c.Close()
			closed <- struct{}{}
			return false
		})
		s := New(Options{})
		for i := range 3 {
			res := s.Send(context.Background(), rs.url(), testEvent(), Spec{})
			if res.Outcome != Delivered || res.Attempts != 1 {
				t.Fatalf("delivery %d: %+v", i, res)
			}
			<-closed
			waitFor(t, func() bool { p, _ := s.lean.hosts.Load(rs.url().Host); return p.(*hostPool).idle[0].probe.peerClosed() })
		}
		if n, reqs := rs.conns.Load(), len(rs.requests()); n != 3 || reqs != 3 {
			t.Fatalf("%d connections, %d requests; want 3 and 3", n, reqs)
		}
	})
	t.Run("closed after reading the request", func(t *testing.T) {
		for _, s := range []*Sender{New(Options{}), netHTTPSender()} {
			rs := startRaw(t, func(n int, _ []byte, c net.Conn) bool {
				if n == 1 {
					_, err := io.WriteString(c, "HTTP/1.1 202 Accepted\r\nContent-Length: 0\r\n\r\n")
					return err == nil
				}
				return false // the second request is read, then the connection closes unanswered
			})
			if res := s.Send(context.Background(), rs.url(), testEvent(), Spec{}); res.Outcome != Delivered {
				t.Fatal(res)
			}
			res := s.Send(context.Background(), rs.url(), testEvent(), Spec{})
			if res.Outcome != Failed || res.Attempts != 1 || len(rs.requests()) != 2 || rs.conns.Load() != 1 {
				t.Fatalf("lean=%v: %+v after %d requests on %d connections; want a failed attempt, 2 requests, 1 connection",
					s.lean != nil, res, len(rs.requests()), rs.conns.Load())
			}
		}
	})
}

// TestLeanNothingWrittenIsResent: a reused connection the server reset, where the write fails before any byte of
// the request left, is replaced by a new one and the request sent there (http.Transport's nothingWrittenError
// rule for a request whose body can be replayed): one attempt, delivered. The reuse probe is switched off for the
// idle connection so that the write meets the reset (with the probe on, the connection is never written to).
func TestLeanNothingWrittenIsResent(t *testing.T) {
	reset := make(chan struct{}, 1)
	rs := startRaw(t, func(n int, _ []byte, c net.Conn) bool {
		_, _ = io.WriteString(c, "HTTP/1.1 202 Accepted\r\nContent-Length: 0\r\n\r\n")
		if n == 1 {
			_ = c.(*net.TCPConn).SetLinger(0) // close with RST
			c.Close()
			reset <- struct{}{}
			return false
		}
		return true
	})
	s := New(Options{})
	if res := s.Send(context.Background(), rs.url(), testEvent(), Spec{}); res.Outcome != Delivered {
		t.Fatal(res)
	}
	<-reset
	v, _ := s.lean.hosts.Load(rs.url().Host)
	p := v.(*hostPool)
	p.mu.Lock()
	idle := p.idle[0]
	p.mu.Unlock()
	waitFor(t, idle.probe.peerClosed) // the reset has arrived
	idle.probe = prober{}
	res := s.Send(context.Background(), rs.url(), testEvent(), Spec{})
	if res.Outcome != Delivered || res.Attempts != 1 || rs.conns.Load() != 2 || len(rs.requests()) != 2 {
		t.Fatalf("%+v over %d connections, %d requests; want delivered in 1 attempt over 2 connections", res, rs.conns.Load(), len(rs.requests()))
	}
}

// TestLeanTimeout: Spec.Timeout bounds an attempt on the lean path through the connection's deadline, whether the
// server stalls before the head or in the body, and the error reads as net/http's (context deadline exceeded).
func TestLeanTimeout(t *testing.T) {
	release := make(chan struct{})
	defer close(release)
	rs := startRaw(t, func(n int, req []byte, c net.Conn) bool {
		if bytes.Contains(req, []byte("/body")) {
			_, _ = io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc")
		}
		<-release
		return false
	})
	for _, path := range []string{"/head", "/body"} {
		target := rs.url()
		target.Path = path
		start := time.Now()
		res := New(Options{}).Send(context.Background(), target, testEvent(), Spec{Timeout: 100 * time.Millisecond, PreferReply: true})
		if el := time.Since(start); el > 3*time.Second {
			t.Fatalf("%s: took %v", path, el)
		}
		if res.Outcome != Failed || res.Attempts != 1 {
			t.Fatalf("%s: %+v", path, res)
		}
		if path == "/head" && !errors.Is(res.Err, context.DeadlineExceeded) {
			t.Fatalf("%s: %v, want context deadline exceeded", path, res.Err)
		}
		if path == "/body" && !errors.Is(res.Err, ErrBadReply) {
			t.Fatalf("%s: %v, want a bad reply (the body's read timed out)", path, res.Err)
		}
	}
	// The caller's context ending cuts an attempt in flight too.
	ctx, cancel := context.WithCancel(context.Background())
	time.AfterFunc(50*time.Millisecond, cancel)
	res := New(Options{}).Send(ctx, rs.url(), testEvent(), Spec{})
	if res.Outcome != Failed || !errors.Is(res.Err, context.Canceled) {
		t.Fatalf("%+v", res)
	}
}

// TestLeanHostileServer: a response head larger than the bound is a clear error, and a body of any size costs the
// client at most the kept bytes and a bounded drain before the connection is dropped.
func TestLeanHostileServer(t *testing.T) {
	const huge = 64 << 20
	var written atomic.Int64
	rs := startRaw(t, func(_ int, req []byte, c net.Conn) bool {
		if bytes.Contains(req, []byte("/head")) {
			_, _ = io.WriteString(c, "HTTP/1.1 200 OK\r\nX-Big: "+strings.Repeat("b", 2<<20)+"\r\n\r\n")
			return false
		}
		_, _ = io.WriteString(c, "HTTP/1.1 500 Internal Server Error\r\nContent-Length: "+strconv.Itoa(huge)+"\r\n\r\n")
		chunk := bytes.Repeat([]byte("x"), 64<<10)
		for written.Load() < huge {
			n, err := c.Write(chunk)
			written.Add(int64(n))
			if err != nil {
				break
			}
		}
		return false
	})
	s := New(Options{})
	target := rs.url()
	target.Path = "/head"
	res := s.Send(context.Background(), target, testEvent(), Spec{})
	if res.Outcome != Failed || res.Err == nil || !strings.Contains(res.Err.Error(), "response head too large") {
		t.Fatalf("%+v", res)
	}
	ev := testEvent()
	a := s.once(context.Background(), rs.url(), &ev, nil, Spec{Timeout: 10 * time.Second}, 0)
	if a.status != 500 || len(a.body) != maxErrorDataBytes || leanIdle(s, rs.url()) != 0 {
		t.Fatalf("status %d, %d bytes kept, %d idle", a.status, len(a.body), leanIdle(s, rs.url()))
	}
	if w := written.Load(); w >= huge {
		t.Fatalf("the whole %d-byte body was read", w)
	}
}

// TestLeanFallback: what the lean path does not do goes through net/http: https, a proxy, a client that is not a
// plain transport, a CloudEvents 0.3 event, a header value http.Transport refuses (its error is kept).
func TestLeanFallback(t *testing.T) {
	tlsSrv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(202) }))
	defer tlsSrv.Close()
	tu, _ := url.Parse(tlsSrv.URL)
	if res := New(Options{Client: tlsSrv.Client()}).Send(context.Background(), tu, testEvent(), Spec{}); res.Outcome != Delivered {
		t.Fatalf("https: %+v", res)
	}

	rec := newRecorder(t, 202)
	var proxied atomic.Int32
	proxy := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Host == "" {
			t.Errorf("proxy got origin-form %s", r.URL)
		}
		proxied.Add(1)
		w.WriteHeader(202)
	}))
	defer proxy.Close()
	pu, _ := url.Parse(proxy.URL)
	tr := NewTransport()
	tr.Proxy = http.ProxyURL(pu)
	s := New(Options{Client: &http.Client{Transport: tr}})
	if res := s.Send(context.Background(), rec.url(), testEvent(), Spec{}); res.Outcome != Delivered || proxied.Load() != 1 || rec.count() != 0 {
		t.Fatalf("proxy: %+v, %d proxied, %d direct", res, proxied.Load(), rec.count())
	}

	if s := New(Options{Client: &http.Client{Timeout: time.Minute}}); s.lean != nil {
		t.Fatal("a client with an overall timeout has the lean path")
	}
	wrapped := New(Options{Client: &http.Client{Transport: roundTripFunc(http.DefaultTransport.RoundTrip)}})
	if wrapped.lean != nil {
		t.Fatal("a wrapping RoundTripper has the lean path")
	}

	s = New(Options{})
	old := testEvent()
	old.SetSpecVersion("0.3")
	if res := s.Send(context.Background(), rec.url(), old, Spec{}); res.Outcome != Delivered || leanIdle(s, rec.url()) != 0 {
		t.Fatalf("0.3: %+v, lean idle %d", res, leanIdle(s, rec.url()))
	}
	bad := testEvent()
	bad.SetExtension("evil", "a\r\nX-Injected: 1")
	res := s.Send(context.Background(), rec.url(), bad, Spec{})
	if res.Outcome != Failed || res.Err == nil || !strings.Contains(res.Err.Error(), "invalid header field value") {
		t.Fatalf("bad value: %+v", res)
	}
	if n := rec.count(); n != 1 {
		t.Fatalf("%d requests reached the server; want 1 (the 0.3 event)", n)
	}
}

type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

// TestLeanIdleTimeout: connections idle longer than the transport's IdleConnTimeout are closed by the pool's
// sweep, so a destination no longer delivered to does not keep them open.
func TestLeanIdleTimeout(t *testing.T) {
	rs := startRaw(t, answerWith("HTTP/1.1 202 Accepted\r\nContent-Length: 0\r\n\r\n"))
	tr := NewTransport()
	tr.IdleConnTimeout = 50 * time.Millisecond
	s := New(Options{Client: &http.Client{Transport: tr}})
	if res := s.Send(context.Background(), rs.url(), testEvent(), Spec{}); res.Outcome != Delivered {
		t.Fatal(res)
	}
	if leanIdle(s, rs.url()) != 1 {
		t.Fatal("no idle connection after a delivery")
	}
	waitFor(t, func() bool { return leanIdle(s, rs.url()) == 0 })
}

// TestLeanReuseAfterDeadline: a connection whose attempt had a Spec.Timeout stays reusable after that deadline
// passed while it sat idle.
func TestLeanReuseAfterDeadline(t *testing.T) {
	rs := startRaw(t, answerWith("HTTP/1.1 202 Accepted\r\nContent-Length: 0\r\n\r\n"))
	s := New(Options{})
	for range 2 {
		if res := s.Send(context.Background(), rs.url(), testEvent(), Spec{Timeout: 10 * time.Millisecond}); res.Outcome != Delivered {
			t.Fatal(res)
		}
		time.Sleep(20 * time.Millisecond) // past the first attempt's deadline
	}
	if n := rs.conns.Load(); n != 1 {
		t.Fatalf("%d connections; want 1", n)
	}
}

func ExampleNew_lean() {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(202) }))
	defer srv.Close()
	u, _ := url.Parse(srv.URL)
	res := New(Options{}).Send(context.Background(), u, testEvent(), Spec{})
	fmt.Println(res.Outcome)
	// Output: Delivered
}

// FuzzLeanResponse feeds arbitrary bytes as the answer to a delivery, with and without Prefer: reply: the lean
// path's reading (internal/h1, its body readers, gzip) must give the attempt net/http's reading gives (the same
// status, kept body, reply, and whether it failed), and never panic. Differences allowed: a trailer section
// internal/h1 refuses (net/http folds obs-fold trailers) and the head bound (1 MiB against net/http's 10 MB).
func FuzzLeanResponse(f *testing.F) {
	reply := "Ce-Id: r1\r\nCe-Source: /r\r\nCe-Specversion: 1.0\r\nCe-Type: t\r\n"
	for _, s := range []string{
		"HTTP/1.1 202 Accepted\r\nContent-Length: 0\r\n\r\n",
		"HTTP/1.1 200 OK\r\n" + reply + "Content-Length: 7\r\n\r\n{\"a\":1}",
		"HTTP/1.1 200 OK\r\n" + reply + "Transfer-Encoding: chunked\r\n\r\n3\r\n{\"a\r\n4\r\n\":1}\r\n0\r\nX-T: 1\r\n\r\n",
		"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 503 Busy\r\nContent-Length: 4\r\n\r\nbusy",
		"HTTP/1.0 200 OK\r\n\r\nuntil close",
		"HTTP/1.1 204 No Content\r\n" + reply + "\r\n",
		"HTTP/1.1 200 OK\r\nContent-Encoding: gzip\r\nContent-Length: " + strconv.Itoa(len(gzipped7)) + "\r\n\r\n" + gzipped7,
		"HTTP/1.1 200 OK\nContent-Type: text/plain\n\nbare",
		"HTTP/1.1 200 OK\r\nX: a\r\n b\r\nContent-Length: 0\r\n\r\n",
		"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
		"HTTP/1.1 101 Switching Protocols\r\n\r\n",
	} {
		f.Add(s, true)
		f.Add(s, false)
	}
	s := New(Options{})
	f.Fuzz(func(t *testing.T, raw string, preferReply bool) {
		spec := Spec{PreferReply: preferReply}
		l, _ := s.readLean(context.Background(), &leanConn{br: bufio.NewReader(strings.NewReader(raw))}, spec)
		n := s.readFallback(context.Background(), &leanConn{br: bufio.NewReader(strings.NewReader(raw))}, spec, 0)
		if errors.Is(l.badReply, h1.ErrBadTrailers) || l.err != nil && errors.Is(l.err, h1.ErrResponseHeadTooLarge) {
			return
		}
		if l.status != n.status || !bytes.Equal(l.body, n.body) || (l.err == nil) != (n.err == nil) ||
			(l.badReply == nil) != (n.badReply == nil) || (l.reply == nil) != (n.reply == nil) ||
			l.reply != nil && !reflect.DeepEqual(l.reply, n.reply) {
			t.Fatalf("%q:\nlean: status %d body %q err %v bad %v reply %v\nnet/http: status %d body %q err %v bad %v reply %v",
				raw, l.status, l.body, l.err, l.badReply, l.reply, n.status, n.body, n.err, n.badReply, n.reply)
		}
	})
}
