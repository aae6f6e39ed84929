package gateway

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strings"
	"sync"
	"time"

	"github.com/verity-cdn/verity/internal/cid"
)

// DNSLinkResolver finds the root of a custom domain. DNSLink implements it.
type DNSLinkResolver interface {
	// ResolveDNSLink returns the root CID host's DNSLink record names, or
	// an error wrapping ErrUnknownSite when there is none.
	ResolveDNSLink(ctx context.Context, host string) (string, error)
}

var _ DNSLinkResolver = (*DNSLink)(nil)

// DNSLinkConfig configures DNSLink. Zero values are sensible defaults.
type DNSLinkConfig struct {
	// Server is the DNS server ("host:port") to ask; empty uses the
	// system resolver.
	Server string
	// TTL is how long an answer (found or not) is reused. Default 60 s.
	TTL time.Duration
	// Timeout bounds one lookup. Default 5 s.
	Timeout time.Duration
	// MaxEntries bounds the answer cache. Default 10,000.
	MaxEntries int
	// Now is the clock. Default time.Now.
	Now func() time.Time
}

// DNSLink resolves custom domains through DNSLink TXT records:
// "_dnslink.<host>" holding "dnslink=/ipfs/<cid>". Answers are cached for
// TTL, so a changed record takes effect within TTL on every gateway.
type DNSLink struct {
	cfg      DNSLinkConfig
	resolver *net.Resolver

	mu    sync.Mutex
	cache map[string]dnslinkAnswer
}

type dnslinkAnswer struct {
	root    string
	err     error
	expires time.Time
}

// NewDNSLink returns a DNSLink resolver.
func NewDNSLink(cfg DNSLinkConfig) *DNSLink {
	if cfg.TTL <= 0 {
		cfg.TTL = 60 * time.Second
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = 5 * time.Second
	}
	if cfg.MaxEntries <= 0 {
		cfg.MaxEntries = 10000
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	r := net.DefaultResolver
	if cfg.Server != "" {
		server := cfg.Server
		r = &net.Resolver{PreferGo: true, Dial: func(ctx context.Context, network, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, network, server)
		}}
	}
	return &DNSLink{cfg: cfg, resolver: r, cache: make(map[string]dnslinkAnswer)}
}

// ResolveDNSLink implements DNSLinkResolver.
func (d *DNSLink) ResolveDNSLink(ctx context.Context, host string) (string, error) {
	host = strings.TrimSuffix(strings.ToLower(host), ".")
	if !validHostname(host) {
		return "", fmt.Errorf("%w: %q is not a DNS name", ErrUnknownSite, host)
	}
	now := d.cfg.Now()
	d.mu.Lock()
	a, ok := d.cache[host]
	d.mu.Unlock()
	if ok && now.Before(a.expires) {
		return a.root, a.err
	}
	ctx, cancel := context.WithTimeout(ctx, d.cfg.Timeout)
	defer cancel()
	txts, err := d.resolver.LookupTXT(ctx, "_dnslink."+host)
	var root string
	switch {
	case err != nil:
		var dnsErr *net.DNSError
		if errors.As(err, &dnsErr) && dnsErr.IsNotFound {
			err = fmt.Errorf("%w: no DNSLink record for %s", ErrUnknownSite, host)
		} else {
			// A failing DNS server is not cached: the next request retries.
			return "", fmt.Errorf("%w: %s: %v", ErrDNSLink, host, err)
		}
	default:
		root, err = parseDNSLink(host, txts)
	}
	d.mu.Lock()
	if len(d.cache) >= d.cfg.MaxEntries {
		for k, v := range d.cache {
			if !now.Before(v.expires) || len(d.cache) >= d.cfg.MaxEntries {
				delete(d.cache, k)
			}
		}
	}
	d.cache[host] = dnslinkAnswer{root: root, err: err, expires: now.Add(d.cfg.TTL)}
	d.mu.Unlock()
	return root, err
}

// parseDNSLink picks the "dnslink=/ipfs/<cid>" value among TXT strings.
// Other namespaces are refused clearly; several /ipfs/ values are
// ambiguous and refused too.
func parseDNSLink(host string, txts []string) (string, error) {
	var roots []string
	var other string
	for _, t := range txts {
		v, ok := strings.CutPrefix(strings.TrimSpace(t), "dnslink=")
		if !ok {
			continue
		}
		rest, ok := strings.CutPrefix(v, "/ipfs/")
		if !ok {
			other = v
			continue
		}
		c, _, _ := strings.Cut(rest, "/")
		if _, err := cid.Parse(c); err != nil {
			return "", fmt.Errorf("%w: DNSLink record of %s names %q, not a CID", ErrUnknownSite, host, c)
		}
		roots = append(roots, c)
	}
	switch {
	case len(roots) == 1:
		return roots[0], nil
	case len(roots) > 1:
		return "", fmt.Errorf("%w: %s has %d DNSLink /ipfs/ records", ErrUnknownSite, host, len(roots))
	case other != "":
		return "", fmt.Errorf("%w: DNSLink record of %s (%q) is not /ipfs/<cid>", ErrUnknownSite, host, other)
	}
	return "", fmt.Errorf("%w: no DNSLink record for %s", ErrUnknownSite, host)
}

// validHostname reports whether host is a DNS name of LDH labels (not an
// IP literal).
func validHostname(host string) bool {
	if host == "" || len(host) > 253 || net.ParseIP(host) != nil || !strings.Contains(host, ".") {
		return false
	}
	for _, label := range strings.Split(host, ".") {
		if label == "" || len(label) > 63 || label[0] == '-' || label[len(label)-1] == '-' {
			return false
		}
		for i := 0; i < len(label); i++ {
			c := label[i]
			if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
				return false
			}
		}
	}
	return true
}
