package acl

import (
	"fmt"
	"net/netip"
	"strconv"
	"strings"
)

// addrMatcher is one whiteRemoteAddress pattern, as Apache's RemoteAddressStrategyFactory reads them:
//
//	""                 matches nothing
//	"*", "*.*.*.*"     matches every address (IPv4 and IPv6)
//	"192.168.0.1"      one address (IPv6 literals too)
//	"192.168.0.{1,2}"  the last segment from a list
//	"192.168.*", "192.168.1.*", "192.168.1.1-20", "10.1-5.*.*"
//	                   a range: leading literal segments, then one "*" or "a-b" segment, then only "*"
//
// Invariant: a matcher is immutable once parsed.
type addrMatcher struct {
	kind   int // one of the match* constants
	exact  netip.Addr
	prefix []int // literal leading segments (IPv4)
	lo, hi int   // the range segment's bounds, or the list below
	list   []int
}

const (
	matchNone = iota
	matchAll
	matchExact
	matchList
	matchRange
)

func parseAddr(pattern string) (addrMatcher, error) {
	p := strings.TrimSpace(pattern)
	switch p {
	case "":
		return addrMatcher{kind: matchNone}, nil
	case "*", "*.*.*.*", "*:*:*:*:*:*:*:*":
		return addrMatcher{kind: matchAll}, nil
	}
	if a, err := netip.ParseAddr(p); err == nil {
		return addrMatcher{kind: matchExact, exact: a.Unmap()}, nil
	}
	segs := strings.Split(p, ".")
	bad := func(why string) (addrMatcher, error) {
		return addrMatcher{}, fmt.Errorf("address pattern %q: %s (want an IP, *, a.b.c.{1,2}, a.b.c.*, a.b.*.* or a.b.c.1-20)", pattern, why)
	}
	if len(segs) > 4 {
		return bad("more than 4 segments")
	}
	if i := strings.IndexByte(p, '{'); i >= 0 {
		if len(segs) != 4 || !strings.HasPrefix(segs[3], "{") || !strings.HasSuffix(segs[3], "}") {
			return bad("a {list} must be the last of 4 segments")
		}
		m := addrMatcher{kind: matchList}
		for _, s := range segs[:3] {
			n, ok := octet(s)
			if !ok {
				return bad(fmt.Sprintf("segment %q is not 0..255", s))
			}
			m.prefix = append(m.prefix, n)
		}
		for _, s := range strings.Split(strings.Trim(segs[3], "{}"), ",") {
			n, ok := octet(strings.TrimSpace(s))
			if !ok {
				return bad(fmt.Sprintf("list item %q is not 0..255", s))
			}
			m.list = append(m.list, n)
		}
		return m, nil
	}
	// Range: literal segments, one wildcard or a-b segment, then only wildcards (missing trailing segments count
	// as wildcards: "192.168.*" is "192.168.*.*").
	m := addrMatcher{kind: matchRange, lo: -1}
	for _, s := range segs {
		if m.lo >= 0 {
			if s != "*" {
				return bad("only * may follow a * or a-b segment")
			}
			continue
		}
		switch {
		case s == "*":
			m.lo, m.hi = 0, 255
		case strings.Contains(s, "-"):
			a, b, _ := strings.Cut(s, "-")
			lo, ok1 := octet(a)
			hi, ok2 := octet(b)
			if !ok1 || !ok2 || lo > hi {
				return bad(fmt.Sprintf("segment %q is not a range a-b within 0..255", s))
			}
			m.lo, m.hi = lo, hi
		default:
			n, ok := octet(s)
			if !ok {
				return bad(fmt.Sprintf("segment %q is not 0..255", s))
			}
			m.prefix = append(m.prefix, n)
		}
	}
	if m.lo < 0 {
		return bad("not an address")
	}
	return m, nil
}

func octet(s string) (int, bool) {
	if s == "" || len(s) > 3 {
		return 0, false
	}
	n, err := strconv.Atoi(s)
	return n, err == nil && n >= 0 && n <= 255
}

// match reports whether ip (the peer's address, no port) matches. The zero Addr matches only "*".
func (m addrMatcher) match(ip netip.Addr) bool {
	switch m.kind {
	case matchAll:
		return true
	case matchExact:
		return ip.IsValid() && ip.Unmap() == m.exact
	case matchNone:
		return false
	}
	ip = ip.Unmap()
	if !ip.Is4() {
		return false
	}
	b := ip.As4()
	for i, n := range m.prefix {
		if int(b[i]) != n {
			return false
		}
	}
	seg := int(b[len(m.prefix)])
	if m.kind == matchList {
		for _, n := range m.list {
			if n == seg {
				return true
			}
		}
		return false
	}
	return seg >= m.lo && seg <= m.hi
}
