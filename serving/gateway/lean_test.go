package gateway

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"k8s.io/apimachinery/pkg/types"
)

// The lean HTTP/1.1 path (leanserver.go, leanproxy.go) must answer exactly as the gateway handler behind net/http
// does. Most tests here are differential: the same raw bytes go to one gateway through the Server (lean path, with
// its hand-off) and through net/http alone, and the answers must match (Date aside).

const rawHost = "raw.default.localhost"

// scriptedInstance is an HTTP/1.1 peer on a real socket that answers each request path with fixed raw bytes, so
// the tests can send what no well-behaved program sends (conflicting lengths, unknown codings, 1xx, hop-by-hop
// response headers, bodies cut short). It is registered as an instance of revision raw-00001. It is a hand-written
// peer, not a mock of anything tide runs: the conformance program (a real Go server) cannot misbehave this way.
type scriptedInstance struct {
	addr               string
	inflight, acquired atomic.Int64
	requests           atomic.Int64
}

func (d *scriptedInstance) TryAcquire() bool { d.inflight.Add(1); d.acquired.Add(1); return true }
func (d *scriptedInstance) Release()         { d.inflight.Add(-1) }
func (d *scriptedInstance) InFlight() int    { return int(d.inflight.Load()) }
func (d *scriptedInstance) HostPort() string { return d.addr }

// scripts: path -> raw response; a response ending in "\x00close" makes the instance close the connection after
// writing the rest.
var scripts = map[string]string{
	"/cl":             "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nX-A: 1\r\nContent-Length: 5\r\n\r\nhello",
	"/sniff":          "HTTP/1.1 200 OK\r\nContent-Length: 15\r\n\r\n<html>hi</html>",
	"/empty":          "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n",
	"/chunked":        "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nTrailer: X-Sum\r\nContent-Type: text/plain\r\n\r\n5\r\nhello\r\n6;ext=1\r\n world\r\n0\r\nX-Sum: 42\r\n\r\n",
	"/chunked-sniff":  "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n6\r\n%PDF-1\r\n0\r\n\r\n",
	"/close":          "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\nuntil the close\x00close",
	"/http10":         "HTTP/1.0 200 OK\r\nContent-Type: text/plain\r\n\r\nold\x00close",
	"/http10-chunked": "HTTP/1.0 200 OK\r\nContent-Type: text/plain\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nok\r\n0\r\n\r\n\x00close",
	"/hop":            "HTTP/1.1 200 OK\r\nConnection: X-Private, keep-alive\r\nX-Private: secret\r\nKeep-Alive: timeout=5\r\nProxy-Authenticate: Basic\r\nUpgrade: h2c\r\nX-Kept: yes\r\nContent-Length: 2\r\n\r\nok",
	"/1xx":            "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early Hints\r\nLink: </a>\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok",
	"/cl-and-te":      "HTTP/1.1 200 OK\r\nContent-Length: 100\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nok\r\n0\r\n\r\n",
	"/204":            "HTTP/1.1 204 No Content\r\nX-A: 1\r\n\r\n",
	"/304":            "HTTP/1.1 304 Not Modified\r\nETag: \"x\"\r\n\r\n",
	"/status-599":     "HTTP/1.1 599 Whatever\r\nContent-Length: 1\r\n\r\nx",
	"/conflicting-cl": "HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Length: 3\r\n\r\nok!",
	"/te-gzip":        "HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\nxx\x00close",
	"/bad-status":     "HTTP/1.1 2000 OK\r\nContent-Length: 0\r\n\r\n",
	"/bad-cl":         "HTTP/1.1 200 OK\r\nContent-Length: 1x\r\n\r\nx",
	"/truncated":      "HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc\x00close",
	"/big-head":       "HTTP/1.1 200 OK\r\nX-Big: " + strings.Repeat("b", 20<<10) + "\r\nContent-Length: 2\r\n\r\nok",
}

var scriptsMu sync.Mutex

// errorScripts are answered 502 by both paths, each with its own message.
var errorScripts = []string{"/conflicting-cl", "/te-gzip", "/bad-status", "/bad-cl"}

func startScripted(t *testing.T) *scriptedInstance {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	si := &scriptedInstance{addr: l.Addr().String()}
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				br := bufio.NewReader(c)
				for {
					req, err := http.ReadRequest(br)
					if err != nil {
						return
					}
					_, _ = io.Copy(io.Discard, req.Body)
					si.requests.Add(1)
					scriptsMu.Lock()
					raw, ok := scripts[req.URL.Path]
					scriptsMu.Unlock()
					if !ok {
						raw = "HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n"
					}
					raw, closeAfter := strings.CutSuffix(raw, "\x00close")
					if req.Method == http.MethodHead { // the head alone (the last one, after any 1xx)
						last := strings.LastIndex(raw, "HTTP/1.")
						raw = raw[:last+strings.Index(raw[last:], "\r\n\r\n")+4]
					}
					if _, err := io.WriteString(c, raw); err != nil || closeAfter {
						return
					}
				}
			}()
		}
	}()
	return si
}

// leanPair serves one gateway with the conformance program (host) and the scripted instance (rawHost) through the
// lean Server and through net/http alone.
func leanPair(t *testing.T) (gw *Gateway, lean *Server, leanAddr, httpAddr string, si *scriptedInstance) {
	t.Helper()
	gw = New(Options{})
	srv, lean := serveLean(t, gw, 10*time.Second)
	plain := httptest.NewServer(gw)
	t.Cleanup(plain.Close)
	p, _ := deploy(t, gw, revSpec{name: "svc-00001"})
	if err := gw.SetRoute("default", "svc", []Target{{Revision: "svc-00001", Percent: 100}}); err != nil {
		t.Fatal(err)
	}
	si = startScripted(t)
	gw.AddBackend(types.NamespacedName{Namespace: "default", Name: "raw-00001"}, si)
	if err := gw.SetRoute("default", "raw", []Target{{Revision: "raw-00001", Percent: 100}}); err != nil {
		t.Fatal(err)
	}
	p.SetScale(1)
	waitReady(t, p, 1)
	return gw, lean, strings.TrimPrefix(srv.URL, "http://"), strings.TrimPrefix(plain.URL, "http://"), si
}

// answer is one response as a client sees it, Date left out.
type answer struct {
	Status   int
	Header   http.Header
	Body     string
	Trailer  http.Header
	BodyErr  string
	Length   int64
	Chunked  bool
	Close    bool // the answer says the connection closes after it
	ConnGone bool // and it did
}

// exchange writes raw on a new connection and reads the answers to the requests in it (methods: the requests'
// methods, in order), until the connection closes or the answers are read.
func exchange(t *testing.T, addr, raw string, methods ...string) []answer {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.WriteString(c, raw); err != nil {
		t.Fatal(err)
	}
	br := bufio.NewReader(c)
	var out []answer
	for _, m := range methods {
		resp, err := http.ReadResponse(br, &http.Request{Method: m})
		if err != nil {
			break
		}
		b, err := io.ReadAll(resp.Body)
		a := answer{Status: resp.StatusCode, Header: resp.Header, Body: string(b), Trailer: resp.Trailer,
			Length: resp.ContentLength, Chunked: slices.Contains(resp.TransferEncoding, "chunked"), Close: resp.Close}
		if err != nil {
			a.BodyErr = err.Error()
		}
		a.Header.Del("Date")
		if resp.StatusCode >= 500 { // the message names the parser's complaint, which differs
			a.Body = strings.SplitN(a.Body, ":", 2)[0]
			a.Length = -2
			a.Header.Del("Content-Length")
		}
		if a.Close || err != nil {
			// Announced (or cut): the server must close it now; wait for that, nothing else may follow.
			_, rerr := br.ReadByte()
			a.ConnGone = rerr != nil
			out = append(out, a)
			break
		}
		out = append(out, a)
	}
	return out
}

func sameAnswers(t *testing.T, name string, lean, plain []answer) {
	t.Helper()
	if l, p := fmt.Sprintf("%+v", lean), fmt.Sprintf("%+v", plain); l != p {
		t.Errorf("%s:\n lean     %.600s\n net/http %.600s", name, l, p)
	}
}

// TestLeanResponsesMatchNetHTTP sends every scripted response shape through both paths, GET and HEAD, one request
// per connection and then all of them on one keep-alive connection.
func TestLeanResponsesMatchNetHTTP(t *testing.T) {
	_, lean, leanAddr, httpAddr, _ := leanPair(t)
	paths := make([]string, 0, len(scripts))
	for p := range scripts {
		paths = append(paths, p)
	}
	slices.Sort(paths)
	for _, p := range paths {
		for _, m := range []string{"GET", "HEAD"} {
			raw := fmt.Sprintf("%s %s HTTP/1.1\r\nHost: %s\r\n\r\n", m, p, rawHost)
			l, h := exchange(t, leanAddr, raw, m), exchange(t, httpAddr, raw, m)
			if len(l) != 1 {
				t.Errorf("%s %s: %d answers on the lean path", m, p, len(l))
				continue
			}
			if p == "/truncated" && m == "GET" {
				// A body cut short by the instance: both cut the connection, net/http's before the buffered
				// head went out, the lean path after what arrived. Either way the client sees the failure.
				if l[0].BodyErr == "" || !l[0].ConnGone || len(h) != 0 && h[0].BodyErr == "" {
					t.Errorf("truncated body: lean %+v, net/http %+v; want both to fail", l, h)
				}
				continue
			}
			sameAnswers(t, m+" "+p, l, h)
			if slices.Contains(errorScripts, p) && l[0].Status != http.StatusBadGateway {
				t.Errorf("%s %s: status %d, want 502", m, p, l[0].Status)
			}
		}
	}
	if lean.handedOff.Load() != 0 {
		t.Errorf("%d connections handed off; these plain requests are all the lean path's", lean.handedOff.Load())
	}
	// Keep-alive: the well-formed ones in a row on one connection (those that close it last).
	var raw strings.Builder
	var methods []string
	for _, p := range []string{"/cl", "/sniff", "/empty", "/chunked", "/hop", "/1xx", "/cl-and-te", "/204", "/304", "/big-head", "/status-599", "/close"} {
		fmt.Fprintf(&raw, "GET %s HTTP/1.1\r\nHost: %s\r\n\r\n", p, rawHost)
		methods = append(methods, "GET")
	}
	l, h := exchange(t, leanAddr, raw.String(), methods...), exchange(t, httpAddr, raw.String(), methods...)
	if len(l) != len(methods) {
		t.Errorf("pipelined: %d answers, want %d", len(l), len(methods))
	}
	sameAnswers(t, "pipelined", l, h)
}

// TestLeanRequestsMatchNetHTTP sends requests the program echoes (the headers it received) through both paths:
// hop-by-hop headers, the forwarding chain, odd but valid targets, and requests the lean path must hand over
// (bodies, Expect, HTTP/1.0, upgrades, malformed and smuggling attempts, oversized heads).
func TestLeanRequestsMatchNetHTTP(t *testing.T) {
	_, lean, leanAddr, httpAddr, _ := leanPair(t)
	h := "Host: " + host + "\r\n"
	cases := []struct {
		name, raw string
		methods   []string
		lean      bool // answered by the lean path (else handed off)
	}{
		{"hop-by-hop", "GET /headers HTTP/1.1\r\n" + h + "Connection: keep-alive\r\nKeep-Alive: 300\r\nProxy-Authorization: Basic eDp5\r\nProxy-Connection: keep-alive\r\nX-User: 1\r\nUser-Agent: ua\r\n\r\n", []string{"GET"}, true},
		{"no user agent", "GET /headers HTTP/1.1\r\n" + h + "\r\n", []string{"GET"}, true},
		{"forwarding chain", "GET /headers HTTP/1.1\r\n" + h + "X-Forwarded-For: 203.0.113.7\r\nX-Forwarded-For: 198.51.100.1, 198.51.100.2\r\nX-Forwarded-Proto: https\r\nX-Forwarded-Host: shop.example.com\r\n\r\n", []string{"GET"}, true},
		{"forwarded kept", "GET /headers HTTP/1.1\r\n" + h + "Forwarded: for=192.0.2.60;proto=http\r\n\r\n", []string{"GET"}, true},
		{"ipv6 in chain", "GET /headers HTTP/1.1\r\n" + h + "X-Forwarded-For: 2001:db8::1\r\n\r\n", []string{"GET"}, true},
		{"host case and port", "GET /headers HTTP/1.1\r\nHost: SVC.Default.Localhost:1234\r\n\r\n", []string{"GET"}, true},
		{"query and escapes", "GET /headers?a=%20b&c=d;e=f HTTP/1.1\r\n" + h + "\r\n", []string{"GET"}, true},
		{"traceparent passes", "GET /headers HTTP/1.1\r\n" + h + "Traceparent: 00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01\r\nTracestate: a=b\r\n\r\n", []string{"GET"}, true},
		{"connection close", "GET /headers HTTP/1.1\r\n" + h + "Connection: close\r\n\r\n", []string{"GET"}, true},
		{"head", "HEAD /headers HTTP/1.1\r\n" + h + "\r\n", []string{"HEAD"}, true},
		{"unknown host", "GET / HTTP/1.1\r\nHost: nobody.default.localhost\r\n\r\n", []string{"GET"}, false},
		{"post body", "POST /echo HTTP/1.1\r\n" + h + "Content-Length: 5\r\n\r\nhello", []string{"POST"}, false},
		{"post chunked", "POST /echo HTTP/1.1\r\n" + h + "Transfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n", []string{"POST"}, false},
		{"delete", "DELETE /headers HTTP/1.1\r\n" + h + "\r\n", []string{"DELETE"}, false},
		{"expect", "POST /echo HTTP/1.1\r\n" + h + "Expect: 100-continue\r\nContent-Length: 2\r\n\r\nok", []string{"POST"}, false},
		{"http/1.0", "GET /headers HTTP/1.0\r\n" + h + "\r\n", []string{"GET"}, false},
		{"absolute form", "GET http://" + host + "/headers HTTP/1.1\r\n" + h + "\r\n", []string{"GET"}, false},
		{"odd target bytes", "GET /headers?x=<y> HTTP/1.1\r\n" + h + "\r\n", []string{"GET"}, false},
		{"bad escape", "GET /%zz HTTP/1.1\r\n" + h + "\r\n", []string{"GET"}, false},
		{"connection names a header", "GET /headers HTTP/1.1\r\n" + h + "Connection: X-Secret\r\nX-Secret: 1\r\n\r\n", []string{"GET"}, false},
		{"empty forwarded proto", "GET /headers HTTP/1.1\r\n" + h + "X-Forwarded-Proto: \r\n\r\n", []string{"GET"}, false},
		// Smuggling: each is answered once, by net/http's rules, and what follows is not run as a request
		// unless net/http would run it.
		{"cl and te", "GET /headers HTTP/1.1\r\n" + h + "Content-Length: 40\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\nGET /smuggled HTTP/1.1\r\n" + h + "\r\n", []string{"GET", "GET"}, false},
		{"two lengths", "GET /headers HTTP/1.1\r\n" + h + "Content-Length: 0\r\nContent-Length: 37\r\n\r\nGET /smuggled HTTP/1.1\r\n" + h + "\r\n", []string{"GET", "GET"}, false},
		{"te twice", "GET /headers HTTP/1.1\r\n" + h + "Transfer-Encoding: chunked\r\nTransfer-Encoding: identity\r\n\r\n0\r\n\r\n", []string{"GET", "GET"}, false},
		{"space before colon", "GET /headers HTTP/1.1\r\nHost : " + host + "\r\n" + h + "\r\n", []string{"GET"}, false},
		{"obs-fold", "GET /headers HTTP/1.1\r\n" + h + "X-A: 1\r\n folded\r\n\r\n", []string{"GET"}, false},
		{"two hosts", "GET /headers HTTP/1.1\r\n" + h + "Host: other.default.localhost\r\n\r\n", []string{"GET"}, false},
		{"no host", "GET /headers HTTP/1.1\r\n\r\n", []string{"GET"}, false},
		{"bare LF", "GET /headers HTTP/1.1\n" + "Host: " + host + "\n\n", []string{"GET"}, false},
		{"control byte", "GET /headers HTTP/1.1\r\n" + h + "X-A: a\x01b\r\n\r\n", []string{"GET"}, false},
		{"NUL in target", "GET /head\x00ers HTTP/1.1\r\n" + h + "\r\n", []string{"GET"}, false},
		{"oversized head", "GET /headers HTTP/1.1\r\n" + h + "X-Big: " + strings.Repeat("a", 16<<10) + "\r\n\r\n", []string{"GET"}, false},
		{"head over net/http's limit", "GET /headers HTTP/1.1\r\n" + h + strings.Repeat("X-Big: "+strings.Repeat("a", 1000)+"\r\n", 1100) + "\r\n", []string{"GET"}, false},
		{"lean then post", "GET /headers HTTP/1.1\r\n" + h + "\r\nPOST /echo HTTP/1.1\r\n" + h + "Content-Length: 2\r\n\r\nok", []string{"GET", "POST"}, true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			answered, handed := lean.leanAnswered.Load(), lean.handedOff.Load()
			l, p := exchange(t, leanAddr, tc.raw, tc.methods...), exchange(t, httpAddr, tc.raw, tc.methods...)
			if len(l) == 0 {
				t.Fatal("no answer on the lean path")
			}
			sameAnswers(t, tc.name, l, p)
			if got := lean.leanAnswered.Load() > answered; got != tc.lean {
				t.Errorf("answered by the lean path: %v, want %v (hand-offs %d -> %d)", got, tc.lean, handed, lean.handedOff.Load())
			}
			for _, a := range l {
				if strings.Contains(a.Body, "/smuggled") {
					t.Errorf("a smuggled request ran: %+v", a)
				}
			}
		})
	}
}

// TestLeanStreamsChunks: a response streamed by the program arrives chunk by chunk, not at its end.
func TestLeanStreamsChunks(t *testing.T) {
	_, lean, leanAddr, _, _ := leanPair(t)
	c, err := net.Dial("tcp", leanAddr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	fmt.Fprintf(c, "GET /stream?chunks=3&gapms=300 HTTP/1.1\r\nHost: %s\r\n\r\n", host)
	br := bufio.NewReader(c)
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	line, err := bufio.NewReader(resp.Body).ReadString('\n')
	if err != nil || line != "chunk 0\n" {
		t.Fatalf("first line %q, %v", line, err)
	}
	if d := time.Since(start); d > 250*time.Millisecond {
		t.Fatalf("the first chunk took %v: held back until more came", d)
	}
	if rest, err := io.ReadAll(resp.Body); err != nil || string(rest) != "chunk 1\nchunk 2\n" {
		t.Fatalf("rest %q, %v", rest, err)
	}
	if lean.leanAnswered.Load() == 0 {
		t.Fatal("not answered by the lean path")
	}
}

// TestLeanUpgradeAfterPlainRequests: a connection that carried lean requests switches protocols (WebSocket's
// way) in its next request: net/http takes it over with the bytes already read, and the tunnel works.
func TestLeanUpgradeAfterPlainRequests(t *testing.T) {
	_, lean, leanAddr, _, _ := leanPair(t)
	c, err := net.Dial("tcp", leanAddr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	// The plain GET and the upgrade in one write: the second is in the lean reader's buffer when it hands off.
	fmt.Fprintf(c, "GET / HTTP/1.1\r\nHost: %s\r\n\r\nGET /upgrade HTTP/1.1\r\nHost: %s\r\nConnection: Upgrade\r\nUpgrade: echo\r\n\r\n", host, host)
	br := bufio.NewReader(c)
	resp, err := http.ReadResponse(br, nil)
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("GET: %v %v", resp, err)
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp, err = http.ReadResponse(br, nil)
	if err != nil || resp.StatusCode != http.StatusSwitchingProtocols {
		t.Fatalf("upgrade: %v %v", resp, err)
	}
	fmt.Fprint(c, "ping\n")
	if line, err := br.ReadString('\n'); err != nil || line != "ping\n" {
		t.Fatalf("echo %q %v", line, err)
	}
	if lean.leanAnswered.Load() != 1 || lean.handedOff.Load() != 1 {
		t.Fatalf("lean answered %d, handed off %d; want 1 and 1", lean.leanAnswered.Load(), lean.handedOff.Load())
	}
}

// TestLeanSlowlorisBounded: a head that trickles in is cut at the header timeout; a head completed in time is
// served; an idle keep-alive connection is not cut (as net/http without IdleTimeout).
func TestLeanSlowlorisBounded(t *testing.T) {
	gw := New(Options{})
	srv, _ := serveLean(t, gw, 300*time.Millisecond)
	addr := strings.TrimPrefix(srv.URL, "http://")
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	start := time.Now()
	_, _ = io.WriteString(c, "GET / HTTP/1.1\r\n")
	for i := 0; i < 20; i++ { // one header line every 100 ms: would take 2 s
		time.Sleep(100 * time.Millisecond)
		if _, err := fmt.Fprintf(c, "X-%d: a\r\n", i); err != nil {
			break
		}
	}
	_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
	n, err := c.Read(make([]byte, 1))
	if n != 0 || err == nil {
		t.Fatalf("read %d bytes, %v: want the connection closed", n, err)
	}
	if d := time.Since(start); d > 2*time.Second+500*time.Millisecond {
		t.Fatalf("closed after %v, want about the 300 ms timeout", d)
	}

	// In time, in two pieces: answered (the fallback's 404 for an unknown host).
	c2, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c2.Close()
	_ = c2.SetDeadline(time.Now().Add(5 * time.Second))
	_, _ = io.WriteString(c2, "GET / HTTP/1.1\r\n")
	time.Sleep(100 * time.Millisecond)
	_, _ = io.WriteString(c2, "Host: nobody.localhost\r\n\r\n")
	resp, err := http.ReadResponse(bufio.NewReader(c2), nil)
	if err != nil || resp.StatusCode != http.StatusNotFound {
		t.Fatalf("%v %v", resp, err)
	}
}

// TestLeanTimeoutAndRefused: the revision's timeout answers 504 on the lean path as on net/http's, and a refused
// connection moves the request to the live instance.
func TestLeanTimeoutAndRefused(t *testing.T) {
	gw, lean, leanAddr, _, _ := leanPair(t)
	key := types.NamespacedName{Namespace: "default", Name: "svc-00001"}
	gw.SetRevision(key, RevisionConfig{Timeout: 200 * time.Millisecond, Service: "svc", Configuration: "svc"})
	a := exchange(t, leanAddr, "GET /sleep?ms=2000 HTTP/1.1\r\nHost: "+host+"\r\n\r\n", "GET")
	if len(a) != 1 || a[0].Status != http.StatusGatewayTimeout {
		t.Fatalf("slow request: %+v, want 504", a)
	}
	gw.SetRevision(key, RevisionConfig{Timeout: 30 * time.Second, Service: "svc", Configuration: "svc"})

	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	dead := &deadBackend{addr: l.Addr().String()}
	l.Close()
	gw.AddBackend(key, dead)
	before := lean.leanAnswered.Load()
	for range 3 {
		if a := exchange(t, leanAddr, "GET / HTTP/1.1\r\nHost: "+host+"\r\n\r\n", "GET"); len(a) != 1 || a[0].Status != 200 {
			t.Fatalf("%+v", a)
		}
	}
	if dead.acquired.Load() != 1 || lean.leanAnswered.Load()-before != 3 {
		t.Fatalf("refusing instance tried %d times (want 1); lean answered %d of 3", dead.acquired.Load(), lean.leanAnswered.Load()-before)
	}
	if s, _ := gw.Stats(key); s.Ready != 1 || s.InFlight != 0 {
		t.Fatalf("stats %+v", s)
	}
}

// TestLeanShutdownFinishesRequests: Shutdown lets a lean request in progress finish and closes idle connections.
func TestLeanShutdownFinishesRequests(t *testing.T) {
	gw := New(Options{})
	_, lean := serveLean(t, gw, 10*time.Second)
	p, _ := deploy(t, gw, revSpec{name: "svc-00001"})
	if err := gw.SetRoute("default", "svc", []Target{{Revision: "svc-00001", Percent: 100}}); err != nil {
		t.Fatal(err)
	}
	p.SetScale(1)
	waitReady(t, p, 1)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go func() { _ = lean.Serve(l) }()
	idle, err := net.Dial("tcp", l.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer idle.Close()
	busy, err := net.Dial("tcp", l.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	fmt.Fprintf(busy, "GET /sleep?ms=300 HTTP/1.1\r\nHost: %s\r\n\r\n", host)
	time.Sleep(100 * time.Millisecond)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := lean.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	_ = busy.SetReadDeadline(time.Now().Add(5 * time.Second))
	resp, err := http.ReadResponse(bufio.NewReader(busy), nil)
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("in-flight request: %v %v", resp, err)
	}
	_ = idle.SetReadDeadline(time.Now().Add(5 * time.Second))
	if n, err := idle.Read(make([]byte, 1)); n != 0 || err == nil {
		t.Fatalf("idle connection: %d %v, want closed", n, err)
	}
}

// TestLean101WithoutUpgrade: an instance that switches protocols on a request that asked for no upgrade is broken;
// the lean path answers 502 (net/http's path passes the 101 on, a response no client asked for).
func TestLean101WithoutUpgrade(t *testing.T) {
	_, _, leanAddr, _, _ := leanPair(t)
	scriptsMu.Lock()
	scripts["/101"] = "HTTP/1.1 101 Switching Protocols\r\nUpgrade: x\r\nConnection: Upgrade\r\n\r\n\x00close"
	scriptsMu.Unlock()
	a := exchange(t, leanAddr, "GET /101 HTTP/1.1\r\nHost: "+rawHost+"\r\n\r\n", "GET")
	if len(a) != 1 || a[0].Status != http.StatusBadGateway {
		t.Fatalf("%+v, want 502", a)
	}
}

// TestLeanTracingMatchesNetHTTP: with tracing on, a lean request records the span the handler records (name,
// attributes, parent, the "instance acquired" event) and the instance's traceparent names it.
func TestLeanTracingMatchesNetHTTP(t *testing.T) {
	rec := tracetest.NewSpanRecorder()
	gw := New(Options{TracerProvider: sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec))})
	srv, lean := serveLean(t, gw, 10*time.Second)
	plain := httptest.NewServer(gw)
	t.Cleanup(plain.Close)
	p, _ := deploy(t, gw, revSpec{name: "svc-00001"})
	if err := gw.SetRoute("default", "svc", []Target{{Revision: "svc-00001", Percent: 100}}); err != nil {
		t.Fatal(err)
	}
	p.SetScale(1)
	waitReady(t, p, 1)
	const parent = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
	type view struct {
		Name, Parent, InstanceTP string
		Attrs                    map[string]string
		Events                   []string
	}
	see := func(addr string) view {
		t.Helper()
		before := len(rec.Ended())
		raw := "GET /headers?x=1 HTTP/1.1\r\nHost: " + host + "\r\nUser-Agent: probe/1\r\nTraceparent: " + parent + "\r\nTracestate: k=v\r\n\r\n"
		a := exchange(t, addr, raw, "GET")
		if len(a) != 1 || a[0].Status != 200 {
			t.Fatalf("%+v", a)
		}
		var seen struct {
			Headers map[string][]string `json:"headers"`
		}
		if err := json.Unmarshal([]byte(a[0].Body), &seen); err != nil {
			t.Fatal(err)
		}
		ended := rec.Ended()
		if len(ended) != before+1 {
			t.Fatalf("%d spans ended, want 1", len(ended)-before)
		}
		s := ended[len(ended)-1]
		v := view{Name: s.Name(), Parent: s.Parent().SpanID().String(), Attrs: map[string]string{}}
		for _, kv := range s.Attributes() {
			if kv.Key != "tide.instance" {
				v.Attrs[string(kv.Key)] = kv.Value.Emit()
			}
		}
		for _, e := range s.Events() {
			v.Events = append(v.Events, e.Name)
		}
		tp := http.Header(seen.Headers).Get("Traceparent")
		if !strings.Contains(tp, "-"+s.SpanContext().SpanID().String()+"-") || http.Header(seen.Headers).Get("Tracestate") != "k=v" {
			t.Errorf("the instance saw traceparent %q tracestate %q; want the gateway span %s", tp, http.Header(seen.Headers).Get("Tracestate"), s.SpanContext().SpanID())
		}
		v.InstanceTP = tp[:36] // version and trace id
		return v
	}
	before := lean.leanAnswered.Load()
	l, h := see(strings.TrimPrefix(srv.URL, "http://")), see(strings.TrimPrefix(plain.URL, "http://"))
	if lean.leanAnswered.Load() != before+1 {
		t.Fatal("the traced request was not answered by the lean path")
	}
	if fmt.Sprintf("%+v", l) != fmt.Sprintf("%+v", h) {
		t.Errorf("span:\n lean     %+v\n net/http %+v", l, h)
	}
	if l.Parent != "b7ad6b7169203331" || !slices.Contains(l.Events, "instance acquired") {
		t.Errorf("span %+v: want the client's span as parent and the acquired event", l)
	}
}

// TestLeanClientGoneCancels: a client that closes its connection while the instance is still working on a plain
// request frees the instance's slot long before the instance would have answered (net/http's path cancels the
// request's context; the lean path watches the client once an answer is slow).
func TestLeanClientGoneCancels(t *testing.T) {
	gw, lean, leanAddr, _, _ := leanPair(t)
	key := types.NamespacedName{Namespace: "default", Name: "svc-00001"}
	c, err := net.Dial("tcp", leanAddr)
	if err != nil {
		t.Fatal(err)
	}
	fmt.Fprintf(c, "GET /sleep?ms=10000 HTTP/1.1\r\nHost: %s\r\n\r\n", host)
	deadline := time.Now().Add(5 * time.Second)
	for s, _ := gw.Stats(key); s.InFlight != 1; s, _ = gw.Stats(key) {
		if time.Now().After(deadline) {
			t.Fatalf("the request never reached the instance: %+v", s)
		}
		time.Sleep(5 * time.Millisecond)
	}
	start := time.Now()
	c.Close()
	for s, _ := gw.Stats(key); s.InFlight != 0; s, _ = gw.Stats(key) {
		if time.Now().After(deadline) {
			t.Fatalf("the slot is still taken %v after the client left: %+v", time.Since(start), s)
		}
		time.Sleep(5 * time.Millisecond)
	}
	if lean.handedOff.Load() != 0 {
		t.Fatal("handed off; the lean path should have served (and cut) it")
	}
}

// TestLeanPipelinedDuringSlowAnswer: a request pipelined while the instance is slow to answer the one before (the
// watcher reads its first byte) is answered after it, intact.
func TestLeanPipelinedDuringSlowAnswer(t *testing.T) {
	_, lean, leanAddr, _, _ := leanPair(t)
	c, err := net.Dial("tcp", leanAddr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	fmt.Fprintf(c, "GET /sleep?ms=400 HTTP/1.1\r\nHost: %s\r\n\r\n", host)
	time.Sleep(250 * time.Millisecond) // past slowAnswer: the watcher is reading the client
	fmt.Fprintf(c, "GET /headers HTTP/1.1\r\nHost: %s\r\nX-Second: yes\r\n\r\n", host)
	br := bufio.NewReader(c)
	for i, want := range []string{`"inflight"`, `"X-Second"`} {
		resp, err := http.ReadResponse(br, nil)
		if err != nil {
			t.Fatalf("answer %d: %v", i, err)
		}
		b, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != 200 || !strings.Contains(string(b), want) {
			t.Fatalf("answer %d: %d %s", i, resp.StatusCode, b)
		}
	}
	if lean.leanAnswered.Load() != 2 || lean.handedOff.Load() != 0 {
		t.Fatalf("lean answered %d, handed off %d", lean.leanAnswered.Load(), lean.handedOff.Load())
	}
}
