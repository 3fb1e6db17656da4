package gateway

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"k8s.io/apimachinery/pkg/types"
)

func TestLoopbackCaller(t *testing.T) {
	for _, tc := range []struct {
		remote string
		want   bool
	}{
		{"127.0.0.1:43210", true},
		{"127.0.0.2:1", true},    // all of 127.0.0.0/8 is loopback
		{"127.255.0.9:80", true}, // ditto
		{"[::1]:8080", true},
		{"[::ffff:127.0.0.1]:8080", true}, // IPv4-mapped, as a dual-stack listener reports it
		{"10.0.0.7:5000", false},
		{"192.168.1.20:5000", false}, // this machine's own LAN address is not loopback: say 127.0.0.1 to be local
		{"[::ffff:10.0.0.7]:1", false},
		{"[fe80::1%eth0]:1", false},
		{"0.0.0.0:1", false},
		{"[::]:1", false},
		{"127.0.0.1", true},     // no port: still parsed
		{"localhost:80", false}, // net/http never puts a name here; a name is not an address
		{"", false},
		{"garbage", false},
	} {
		if got := LoopbackCaller(tc.remote); got != tc.want {
			t.Errorf("LoopbackCaller(%q) = %v, want %v", tc.remote, got, tc.want)
		}
	}
}

// liveBackend is a ready instance at addr (an httptest server standing in for a revision's process).
type liveBackend struct{ deadBackend }

func newLiveBackend(t *testing.T) *liveBackend {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { io.WriteString(w, "served") }))
	t.Cleanup(srv.Close)
	b := &liveBackend{}
	b.addr = strings.TrimPrefix(srv.URL, "http://")
	return b
}

// TestClusterLocalRouteAndBrokerIngress sends requests through the gateway's handler with the peer address set as
// net/http sets it: a cluster-local route answers loopback peers and 404s others (like a host nobody serves);
// public routes answer everyone; the fallback (Broker ingress) answers loopback peers only unless PublicFallback.
func TestClusterLocalRouteAndBrokerIngress(t *testing.T) {
	for _, public := range []bool{false, true} {
		gw := New(Options{PublicFallback: public, Fallback: http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
			w.WriteHeader(http.StatusAccepted)
		})})
		for _, name := range []string{"pub", "priv"} {
			if err := gw.SetRoute("ns", name, []Target{{Revision: name + "-00001", Percent: 100, Tag: "t"}}); err != nil {
				t.Fatal(err)
			}
			gw.AddBackend(types.NamespacedName{Namespace: "ns", Name: name + "-00001"}, newLiveBackend(t))
		}
		gw.SetClusterLocal("ns", "priv", true)

		do := func(host, remote string) int {
			req := httptest.NewRequest(http.MethodGet, "http://"+host+"/", nil)
			req.RemoteAddr = remote
			rec := httptest.NewRecorder()
			gw.ServeHTTP(rec, req)
			return rec.Code
		}
		brokerRemote := http.StatusForbidden
		if public {
			brokerRemote = http.StatusAccepted
		}
		for _, tc := range []struct {
			host, remote string
			want         int
		}{
			{"pub.ns.localhost", "203.0.113.9:4000", 200},
			{"pub.ns.localhost", "127.0.0.1:4000", 200},
			{"priv.ns.svc.cluster.local", "127.0.0.1:4000", 200},
			{"priv.ns.localhost:8080", "[::1]:4000", 200},
			{"t-priv.ns.svc", "127.0.0.2:4000", 200},
			{"priv.ns.svc.cluster.local", "203.0.113.9:4000", 404},
			{"priv.ns.localhost", "192.168.1.20:4000", 404},
			{"t-priv.ns.localhost", "203.0.113.9:4000", 404}, // tags share their route's visibility
			{"127.0.0.1:8080", "127.0.0.1:4000", 202},        // Broker ingress host
			{"127.0.0.1:8080", "203.0.113.9:4000", brokerRemote},
		} {
			if got := do(tc.host, tc.remote); got != tc.want {
				t.Errorf("public broker ingress %v: Host %s from %s: %d, want %d", public, tc.host, tc.remote, got, tc.want)
			}
		}
		// Back to public: everyone again. Deleting the route forgets its visibility.
		gw.SetClusterLocal("ns", "priv", false)
		if got := do("priv.ns.localhost", "203.0.113.9:4000"); got != 200 {
			t.Errorf("after SetClusterLocal(false): %d", got)
		}
		gw.SetClusterLocal("ns", "priv", true)
		gw.DeleteRoute("ns", "priv")
		if err := gw.SetRoute("ns", "priv", []Target{{Revision: "priv-00001", Percent: 100}}); err != nil {
			t.Fatal(err)
		}
		if got := do("priv.ns.localhost", "203.0.113.9:4000"); got != 200 {
			t.Errorf("a deleted and recreated route kept its old visibility: %d", got)
		}
	}
}

// TestClusterLocalOverRealSocket: a real client on 127.0.0.1 reaches a cluster-local route through the listening
// gateway (the peer address comes from the kernel, not from the test).
func TestClusterLocalOverRealSocket(t *testing.T) {
	gw := New(Options{})
	if err := gw.SetRoute("ns", "priv", []Target{{Revision: "priv-00001", Percent: 100}}); err != nil {
		t.Fatal(err)
	}
	gw.AddBackend(types.NamespacedName{Namespace: "ns", Name: "priv-00001"}, newLiveBackend(t))
	gw.SetClusterLocal("ns", "priv", true)
	srv := serve(t, gw)
	if c, body := get(t, http.DefaultClient, srv, "priv.ns.svc.cluster.local", "/", nil); c != 200 || body != "served" {
		t.Fatalf("loopback client: %d %q", c, body)
	}
}
