package gateway

import (
	"net/http"
	"strings"
	"testing"
)

// FuzzLookup feeds arbitrary Host headers to the route lookup: it must never panic, must ignore a port and case,
// and must only ever answer with a route that exists.
func FuzzLookup(f *testing.F) {
	for _, s := range []string{"svc.default.localhost", "svc.default.localhost:8080", "SVC.Default.svc", "[::1]:80", ":", "", "tag-svc.default", "a:b:c"} {
		f.Add(s)
	}
	gw := New(Options{})
	if err := gw.SetRoute("default", "svc", []Target{{Revision: "svc-1", Percent: 100, Tag: "tag"}}); err != nil {
		f.Fatal(err)
	}
	hosts := *gw.hosts.Load()
	f.Fuzz(func(t *testing.T, host string) {
		h := gw.lookup(host)
		if h == nil {
			return
		}
		bare := host
		if i := strings.LastIndexByte(bare, ':'); i >= 0 && !strings.HasSuffix(bare, "]") {
			bare = bare[:i]
		}
		if _, ok := hosts[strings.ToLower(bare)]; !ok {
			t.Fatalf("%q resolved to a route but %q is not a route host", host, bare)
		}
	})
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
