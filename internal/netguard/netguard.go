// Package netguard decides which addresses a server may dial on behalf of
// someone else: the coordinator proving and auditing a node's URLs, the
// gateway fetching from nodes, the control plane delivering a site's
// webhooks. A node names its URLs; whoever dials them
// must not be turned into a client of the network it sits in (loopback,
// private, link-local, carrier-grade NAT), also not when a name that
// resolved to a public address at one time resolves to a private one the
// next (DNS rebinding): the check runs on every connection, on the
// address actually dialed.
package netguard

import (
	"errors"
	"fmt"
	"net/netip"
	"syscall"
)

// ErrRefused is returned for a connection to an address that is not
// allowed.
var ErrRefused = errors.New("netguard: address not allowed")

// cgnat is the shared address space of carrier-grade NAT (RFC 6598).
var cgnat = netip.MustParsePrefix("100.64.0.0/10")

// Public reports whether a is a globally routable unicast address.
func Public(a netip.Addr) bool {
	a = a.Unmap()
	return a.IsValid() && a.IsGlobalUnicast() && !a.IsPrivate() && !cgnat.Contains(a) &&
		!a.IsLoopback() && !a.IsLinkLocalUnicast() && !a.IsUnspecified()
}

// Guard allows public addresses, and every address with AllowPrivate (a
// devnet, tests, a private network).
type Guard struct {
	AllowPrivate bool
}

// Allowed reports whether a may be dialed.
func (g Guard) Allowed(a netip.Addr) bool { return g.AllowPrivate || Public(a) }

// Control is a net.Dialer Control function: it refuses a connection to an
// address that is not allowed, whatever a name resolved to before.
func (g Guard) Control(_, address string, _ syscall.RawConn) error {
	ap, err := netip.ParseAddrPort(address)
	if err != nil || !g.Allowed(ap.Addr()) {
		return fmt.Errorf("%w: refusing to dial %s", ErrRefused, address)
	}
	return nil
}
