//go:build !unix

package delivery

import "net"

// prober: without a non-blocking peek, a connection the server closed while idle is found when the next request
// fails on it (the attempt's error, retried by the delivery's policy).
type prober struct{}

func newProber(net.Conn) prober { return prober{} }

func (*prober) peerClosed() bool { return false }
