package gateway

import (
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
