package gateway

import (
	"bufio"
	"bytes"
	"net/http"
	"strings"
	"testing"
)

// FuzzLookup feeds arbitrary Host headers to the route lookup: it must never panic, must ignore a port and ASCII
// case, and must only ever answer with the route of the host it was given. "Case" is ASCII case: Host names are ASCII
// (RFC 9110), and full Unicode folding is not an equivalence lookup keeps (ToUpper("ſ") is "S", whose lower case is
// "s", not "ſ"), so only ASCII letters are flipped below.
func FuzzLookup(f *testing.F) {
	for _, s := range []string{"svc.default.localhost", "svc.default.localhost:8080", "SVC.Default.svc", "[::1]:80", ":", "", "tag-svc.default", "a:b:c",
		"Tag-Svc.Default.Svc.Cluster.Local:443", "svc.default]"} {
		f.Add(s)
	}
	gw := New(Options{})
	if err := gw.SetRoute("default", "svc", []Target{{Revision: "svc-1", Percent: 100, Tag: "tag"}}); err != nil {
		f.Fatal(err)
	}
	if err := gw.SetRoute("default", "other", []Target{{Revision: "other-1", Percent: 100}}); err != nil {
		f.Fatal(err)
	}
	hosts := *gw.hosts.Load()
	for h := range hosts {
		if h != strings.ToLower(h) {
			f.Fatalf("route host %q is not lower case", h)
		}
	}
	f.Fuzz(func(t *testing.T, host string) {
		h := gw.lookup(host)
		// Case: flipping ASCII letters never changes the answer.
		if flipped := flipASCIICase(host); gw.lookup(flipped) != h {
			t.Fatalf("lookup(%q) and lookup(%q) differ", host, flipped)
		}
		// Port: a host without one answers as it does with any port.
		if !strings.Contains(host, ":") {
			for _, port := range []string{":80", ":8080", ":"} {
				if gw.lookup(host+port) != h {
					t.Fatalf("lookup(%q) and lookup(%q) differ", host, host+port)
				}
			}
		}
		if h == nil {
			return
		}
		bare := host
		if i := strings.LastIndexByte(bare, ':'); i >= 0 && !strings.HasSuffix(bare, "]") {
			bare = bare[:i]
		}
		// The route of exactly this host: not merely some existing route.
		if want, ok := hosts[strings.ToLower(bare)]; !ok || want != h {
			t.Fatalf("%q resolved to a route that is not the route of host %q", host, bare)
		}
	})
}

func flipASCIICase(s string) string {
	b := []byte(s)
	for i, c := range b {
		switch {
		case c >= 'a' && c <= 'z':
			b[i] = c - 'a' + 'A'
		case c >= 'A' && c <= 'Z':
			b[i] = c - 'A' + 'a'
		}
	}
	return string(b)
}

// FuzzForwarded checks the Forwarded header built from arbitrary X-Forwarded-* values: one for= element per
// non-empty X-Forwarded-For hop, and no panic.
func FuzzForwarded(f *testing.F) {
	f.Add("203.0.113.7, 127.0.0.1", "shop.example.com", "https")
	f.Add("", "h", "http")
	f.Add("::1", "", "http")
	f.Add(",,, ,", "x", "y")
	f.Fuzz(func(t *testing.T, xff, host, proto string) {
		v := forwardedValue(xff, host, proto)
		hops := 0
		for n := range strings.SplitSeq(xff, ",") {
			if strings.TrimSpace(n) != "" {
				hops++
			}
		}
		if hops > 0 && !strings.HasPrefix(v, "for=") {
			t.Fatalf("forwardedValue(%q) = %q", xff, v)
		}
		r := &http.Request{Header: http.Header{}, RemoteAddr: "127.0.0.1:1", Host: host}
		if xff != "" {
			r.Header.Set("X-Forwarded-For", xff)
		}
		setForwarded(r)
		appendXFF(r)
		if r.Header.Get("Forwarded") == "" || r.Header.Get("X-Forwarded-For") == "" {
			t.Fatalf("headers missing: %v", r.Header)
		}
	})
}

// FuzzLeanRequest feeds arbitrary bytes to the lean path's request-head scanner and parser: they must never panic,
// the lean path must take only what net/http's server reads as the same request (method, target, Host, no body,
// Connection: close), and the request it sends to the instance must parse, without hop-by-hop headers.
func FuzzLeanRequest(f *testing.F) {
	for _, s := range []string{
		"GET / HTTP/1.1\r\nHost: svc.default.localhost\r\n\r\n",
		"HEAD /a?b=%20 HTTP/1.1\r\nHost: x\r\nConnection: close, keep-alive\r\nX-Forwarded-For: 1.2.3.4\r\nX-Forwarded-For: ::1\r\n\r\n",
		"GET / HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n",
		"GET / HTTP/1.1\r\nHost: x\r\nKeep-Alive: 1\r\nProxy-Authorization: a\r\nForwarded: for=1\r\nX-Forwarded-Proto: https\r\n\r\n",
		"GET / HTTP/1.1\r\nHost : x\r\n\r\n", "GET / HTTP/1.1\r\nHost: x\r\n y\r\n\r\n", "GET / HTTP/1.1\nHost: x\n\n",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		scanned := 0
		n, st := scanHead([]byte(raw), &scanned)
		if st != headOK {
			return
		}
		var req leanReq
		if !req.parse([]byte(raw[:n])) {
			return
		}
		hr, err := http.ReadRequest(bufio.NewReader(strings.NewReader(raw[:n])))
		if err != nil {
			t.Fatalf("the lean path takes %q, net/http refuses it: %v", raw[:n], err)
		}
		method := "GET"
		if req.isHead {
			method = "HEAD"
		}
		if hr.Method != method || hr.RequestURI != string(req.target) || hr.Host != string(req.host) ||
			hr.ContentLength != 0 || len(hr.TransferEncoding) != 0 || hr.Close != req.close {
			t.Fatalf("%q: lean %s %q host %q close %v; net/http %s %q host %q close %v length %d",
				raw[:n], method, req.target, req.host, req.close, hr.Method, hr.RequestURI, hr.Host, hr.Close, hr.ContentLength)
		}
		var out bytes.Buffer
		w := bufio.NewWriter(&out)
		lc := &leanConn{client: "127.0.0.1", remote: "127.0.0.1:5555"}
		lc.writeOutgoing(w, &req)
		_ = w.Flush()
		or, err := http.ReadRequest(bufio.NewReader(&out))
		if err != nil {
			t.Fatalf("outgoing %q does not parse: %v", out.String(), err)
		}
		for _, k := range []string{"Connection", "Keep-Alive", "Proxy-Connection", "Proxy-Authorization", "Te", "Upgrade"} {
			if _, ok := or.Header[k]; ok {
				t.Fatalf("outgoing %q keeps %s", out.String(), k)
			}
		}
		if xff := or.Header.Get("X-Forwarded-For"); !strings.HasSuffix(xff, "127.0.0.1") {
			t.Fatalf("outgoing X-Forwarded-For %q", xff)
		}
	})
}
