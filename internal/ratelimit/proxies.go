package ratelimit

import (
	"fmt"
	"net/http"
	"net/netip"
	"strings"
)

// TrustedProxies are the peers whose X-Forwarded-For is believed: the
// reverse proxies or load balancers in front of a server. Empty: none,
// the client is always the peer.
type TrustedProxies []netip.Prefix

// ParseTrustedProxies parses CIDR prefixes or single addresses
// ("10.0.0.0/8", "2001:db8::1").
func ParseTrustedProxies(ss []string) (TrustedProxies, error) {
	var out TrustedProxies
	for _, s := range ss {
		s = strings.TrimSpace(s)
		if s == "" {
			continue
		}
		if p, err := netip.ParsePrefix(s); err == nil {
			out = append(out, p.Masked())
			continue
		}
		a, err := netip.ParseAddr(s)
		if err != nil {
			return nil, fmt.Errorf("ratelimit: trusted proxy %q is neither an address nor a prefix", s)
		}
		a = a.Unmap()
		out = append(out, netip.PrefixFrom(a, a.BitLen()))
	}
	return out, nil
}

// Contains reports whether addr is a trusted proxy.
func (t TrustedProxies) Contains(addr netip.Addr) bool {
	if !addr.IsValid() {
		return false
	}
	addr = addr.Unmap().WithZone("")
	for _, p := range t {
		if p.Contains(addr) {
			return true
		}
	}
	return false
}

// Client returns the address r comes from: its peer, unless the peer is a
// trusted proxy; then the nearest address in X-Forwarded-For (read from
// the right) that is not a trusted proxy, since every hop appends the
// address it got the request from and only the trusted hops' additions
// can be believed. Invalid when unknown.
func (t TrustedProxies) Client(r *http.Request) netip.Addr {
	peer := peerAddr(r.RemoteAddr)
	if len(t) == 0 || !t.Contains(peer) {
		return peer
	}
	hdrs := r.Header.Values("X-Forwarded-For")
	for i := len(hdrs) - 1; i >= 0; i-- {
		parts := strings.Split(hdrs[i], ",")
		for j := len(parts) - 1; j >= 0; j-- {
			a, err := netip.ParseAddr(strings.TrimSpace(parts[j]))
			if err != nil {
				return peer // a mangled chain: trust only the peer
			}
			a = a.Unmap()
			if !t.Contains(a) {
				return a
			}
		}
	}
	return peer
}

// peerAddr parses an http.Request's RemoteAddr.
func peerAddr(remote string) netip.Addr {
	ap, err := netip.ParseAddrPort(remote)
	if err != nil {
		return netip.Addr{}
	}
	return ap.Addr().Unmap()
}
