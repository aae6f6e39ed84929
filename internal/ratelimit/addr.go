package ratelimit

import (
	"net/netip"
	"time"
)

// Prefixes groups client addresses into the keys limits apply to: an
// address is limited together with every other address of its prefix.
// Zero values are defaults.
type Prefixes struct {
	// IPv4 is the prefix length of IPv4 keys, 1 to 32. Default 32 (one
	// address).
	IPv4 int
	// IPv6 is the prefix length of IPv6 keys, 1 to 128. Default 64, what
	// one IPv6 host or home commonly owns.
	IPv6 int
}

// Default prefix lengths.
const (
	DefaultIPv4Prefix = 32
	DefaultIPv6Prefix = 64
)

// Key returns the prefix addr is limited by. An IPv4-mapped IPv6 address
// is keyed as IPv4; an invalid address (unknown client) has the zero
// Prefix as its key, shared by every unknown client.
func (p Prefixes) Key(addr netip.Addr) netip.Prefix {
	if !addr.IsValid() {
		return netip.Prefix{}
	}
	addr = addr.Unmap().WithZone("")
	bits := p.IPv6
	if bits <= 0 || bits > 128 {
		bits = DefaultIPv6Prefix
	}
	if addr.Is4() {
		bits = p.IPv4
		if bits <= 0 || bits > 32 {
			bits = DefaultIPv4Prefix
		}
	}
	k, _ := addr.Prefix(bits)
	return k
}

// AddrLimiter is a Limiter keyed by client address prefix.
type AddrLimiter struct {
	l *Limiter[netip.Prefix]
	p Prefixes
}

// NewAddr returns a Limiter over the prefixes p groups addresses into.
func NewAddr(cfg Config, p Prefixes) *AddrLimiter {
	return &AddrLimiter{l: New[netip.Prefix](cfg), p: p}
}

// Allow takes a token of addr's prefix now, and reports whether there
// was one.
func (a *AddrLimiter) Allow(addr netip.Addr) bool { return a.l.Allow(a.p.Key(addr)) }

// AllowAt is Allow at time now.
func (a *AddrLimiter) AllowAt(addr netip.Addr, now time.Time) bool {
	return a.l.AllowAt(a.p.Key(addr), now)
}

// Len returns the number of prefixes remembered.
func (a *AddrLimiter) Len() int { return a.l.Len() }
