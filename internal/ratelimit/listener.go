package ratelimit

import (
	"net"
	"net/netip"
	"sync"
)

// ListenerConfig configures a Listener.
type ListenerConfig struct {
	// MaxPerKey is how many connections the addresses of one prefix may
	// hold at once; ≤ 0: no cap.
	MaxPerKey int
	// Prefixes groups addresses into keys.
	Prefixes Prefixes
	// Exempt are peers not capped (trusted proxies, which carry many
	// clients on their connections).
	Exempt TrustedProxies
	// OnRefuse, when set, is called with the address of each connection
	// closed for being over the cap.
	OnRefuse func(netip.Addr)
}

// Listener caps the connections each client prefix holds: a connection
// over its prefix's cap is closed as soon as it is accepted, so one client
// cannot take the connections a server can hold (wrap the result in a
// global cap such as golang.org/x/net/netutil.LimitListener, outside this
// one, so refused connections take no global slot).
type Listener struct {
	net.Listener
	cfg   ListenerConfig
	conns *Counter[netip.Prefix]
}

// NewListener wraps ln.
func NewListener(ln net.Listener, cfg ListenerConfig) *Listener {
	return &Listener{Listener: ln, cfg: cfg, conns: NewCounter[netip.Prefix](cfg.MaxPerKey)}
}

// Accept returns the next connection within its prefix's cap, closing the
// ones over it.
func (l *Listener) Accept() (net.Conn, error) {
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		addr := addrOf(c.RemoteAddr())
		if l.cfg.MaxPerKey <= 0 || l.cfg.Exempt.Contains(addr) {
			return c, nil
		}
		key := l.cfg.Prefixes.Key(addr)
		if !l.conns.Acquire(key) {
			if tc, ok := c.(*net.TCPConn); ok {
				_ = tc.SetLinger(0) // a reset: nothing of ours lingers for it
			}
			c.Close()
			if l.cfg.OnRefuse != nil {
				l.cfg.OnRefuse(addr)
			}
			continue
		}
		return &capConn{Conn: c, release: func() { l.conns.Release(key) }}, nil
	}
}

// Held returns how many connections addr's prefix holds.
func (l *Listener) Held(addr netip.Addr) int { return l.conns.Held(l.cfg.Prefixes.Key(addr)) }

// capConn gives its slot back once, when closed.
type capConn struct {
	net.Conn
	once    sync.Once
	release func()
}

func (c *capConn) Close() error {
	err := c.Conn.Close()
	c.once.Do(c.release)
	return err
}

// addrOf returns the IP of a net.Addr (invalid when it has none).
func addrOf(a net.Addr) netip.Addr {
	switch a := a.(type) {
	case *net.TCPAddr:
		ip, _ := netip.AddrFromSlice(a.IP)
		return ip.Unmap()
	case nil:
		return netip.Addr{}
	}
	ap, err := netip.ParseAddrPort(a.String())
	if err != nil {
		return netip.Addr{}
	}
	return ap.Addr().Unmap()
}
