package gateway

import (
	"net"
	"net/http"
	"net/netip"

	"k8s.io/apimachinery/pkg/types"
)

// LoopbackCaller reports whether a request's peer is on this machine's loopback interface: its RemoteAddr is an
// address in 127.0.0.0/8, ::1, or an IPv4-mapped loopback address. This is the gateway's notion of "inside the
// cluster" for cluster-local Services and the Broker ingress.
//
// Only the TCP peer counts, never a header (X-Forwarded-For, Forwarded, X-Real-IP are the caller's to write). So:
// a program on this machine that connects to 127.0.0.1 is a loopback caller; one that connects to the machine's
// LAN address (when tide listens on 0.0.0.0) is not, although it is local; and everything that arrives through
// a reverse proxy on this machine is a loopback caller, so such a proxy must not forward to the gateway what it
// should not expose. A RemoteAddr that does not parse (not set by net/http) is not loopback.
func LoopbackCaller(remoteAddr string) bool {
	host, _, err := net.SplitHostPort(remoteAddr)
	if err != nil {
		host = remoteAddr
	}
	a, err := netip.ParseAddr(host)
	if err != nil {
		return false
	}
	return a.Unmap().IsLoopback()
}

// SetClusterLocal marks a route cluster-local (only loopback callers reach it; others get the 404 an unknown host
// gets, as from outside a cluster such a host is not routed at all) or public. It may be called before SetRoute,
// and a route keeps its visibility until it is deleted, so a cluster-local route is never briefly public.
func (g *Gateway) SetClusterLocal(namespace, name string, local bool) {
	g.mu.Lock()
	defer g.mu.Unlock()
	k := types.NamespacedName{Namespace: namespace, Name: name}
	if g.local[k] == local {
		return
	}
	if local {
		g.local[k] = true
	} else {
		delete(g.local, k)
	}
	g.rebuildLocked()
}

// refuseRemote answers a caller that may not reach what it asked for. For a cluster-local route, the answer is the
// same as for a host nobody serves, so its existence does not leak.
func refuseRemote(w http.ResponseWriter, fallback bool) {
	if fallback {
		http.Error(w, "the Broker ingress answers callers on this machine (loopback) only; start tide with --public-broker-ingress to open it", http.StatusForbidden)
		return
	}
	http.Error(w, "404 page not found", http.StatusNotFound)
}
