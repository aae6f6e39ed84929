package gateway

import (
	"net"
	"net/http"
	"net/netip"
	"time"

	"golang.org/x/net/netutil"

	"github.com/verity-cdn/verity/internal/ratelimit"
)

// addrLimit is a token bucket per client (internal/ratelimit), keyed by the
// client's address prefix (Config.ClientPrefixes: one IPv4 address, one
// IPv6 /64 by default).
type addrLimit struct{ l *ratelimit.AddrLimiter }

func (g *Gateway) newAddrLimit(perSecond float64, burst int) addrLimit {
	return addrLimit{ratelimit.NewAddr(ratelimit.Config{Rate: perSecond, Burst: burst, Now: g.cfg.Now}, g.cfg.ClientPrefixes)}
}

// allow takes a token of client's prefix at now.
func (a addrLimit) allow(client netip.Addr, now time.Time) bool { return a.l.AllowAt(client, now) }

// admit applies the per-client request limit to r, after taking its
// client from X-Forwarded-For when it comes through a trusted proxy (then
// r.RemoteAddr is rewritten to the client, so routing, limits and logs see
// the visitor rather than the proxy). It answers 429 itself and reports
// false when r is over the limit.
func (g *Gateway) admit(w http.ResponseWriter, r *http.Request) bool {
	client := clientAddr(r)
	if len(g.proxies) > 0 && g.proxies.Contains(client) {
		if c := g.proxies.Client(r); c != client {
			client = c
			r.RemoteAddr = netip.AddrPortFrom(c, 0).String()
		}
	}
	if g.requests.allow(client, g.cfg.Now()) {
		return true
	}
	g.metrics.limited.WithLabelValues(limitRequests).Inc()
	w.Header().Set("Retry-After", "1")
	writeError(w, r, http.StatusTooManyRequests, "too many requests from this address")
	return false
}

// Values of the limit label of verity_gateway_limited_total.
const (
	limitConns    = "conns"    // connections closed: the client held its share
	limitRequests = "requests" // requests answered 429
)

// limitListener caps ln: MaxConnsPerClient per client prefix (trusted
// proxies exempt), then MaxConns in all. A connection over its client's
// cap is closed before it takes one of the MaxConns slots.
func (g *Gateway) limitListener(ln net.Listener) net.Listener {
	perClient := ratelimit.NewListener(ln, ratelimit.ListenerConfig{
		MaxPerKey: g.cfg.MaxConnsPerClient,
		Prefixes:  g.cfg.ClientPrefixes,
		Exempt:    g.proxies,
		OnRefuse:  func(netip.Addr) { g.metrics.limited.WithLabelValues(limitConns).Inc() },
	})
	return netutil.LimitListener(perClient, g.cfg.MaxConns)
}
