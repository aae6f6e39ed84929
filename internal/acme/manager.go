package acme

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"slices"
	"strings"
	"sync"

	"github.com/caddyserver/certmagic"
	"github.com/nats-io/nats.go/jetstream"
	"go.uber.org/zap"
)

// LetsEncrypt is the default CA: Let's Encrypt's production directory.
const LetsEncrypt = certmagic.LetsEncryptProductionCA

// owner names this process in the locks it takes.
var owner = func() string {
	var b [8]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}()

// Config configures a Manager.
type Config struct {
	// KV holds certificates, the ACME account and locks (required).
	KV jetstream.KeyValue
	// CA is the ACME directory URL. Default LetsEncrypt.
	CA string
	// Email is the ACME account's contact (expiry notices). Optional.
	Email string
	// CARoots, when set, is the only trust for the CA's own HTTPS API (a
	// private or test CA such as Pebble). Default: the system roots.
	CARoots *x509.CertPool
	// Allow decides whether a certificate may be obtained for a host name
	// (required): nil for yes, an error saying why not.
	Allow func(ctx context.Context, host string) error
	// HTTPPort and TLSPort are the ports of the listeners that answer
	// challenges (Manager.HTTPHandler on plain HTTP, TLSConfig on HTTPS),
	// default 80 and 443. certmagic binds a port of its own only when
	// nothing listens there; naming the gateway's ports keeps it from
	// doing so.
	HTTPPort, TLSPort int
	// DNS, when set, answers DNS-01 challenges (e.g. an RFC2136), the
	// only challenge a wildcard name such as *.example.com can use:
	// Manage then takes wildcard names. Other names keep HTTP-01 and
	// TLS-ALPN-01 (custom domains are outside the provider's zones).
	DNS certmagic.DNSProvider
	// DNSResolvers are the DNS servers (host:port) asked for the zone of
	// a challenge's name and for its TXT record before the CA is told to
	// look; default the system's. For RFC 2136, the primary server itself.
	DNSResolvers []string
	// Logger default slog.Default().
	Logger *slog.Logger
}

// Manager obtains, renews and serves certificates.
type Manager struct {
	cache   *certmagic.Cache
	magic   *certmagic.Config // on demand: every name the policy allows
	managed *certmagic.Config // wildcards, by DNS-01 (nil without Config.DNS)
	issuer  *certmagic.ACMEIssuer

	mu   sync.Mutex
	wild []string // the wildcards Manage was given
}

// underWildcard reports whether host is one label under a managed
// wildcard.
func (m *Manager) underWildcard(host string) bool {
	host = strings.ToLower(strings.TrimSuffix(host, "."))
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, w := range m.wild {
		parent := strings.ToLower(w[1:]) // ".example.com"
		if label, ok := strings.CutSuffix(host, parent); ok && label != "" && !strings.Contains(label, ".") {
			return true
		}
	}
	return false
}

// New returns a Manager; certificates are obtained at the first handshake
// for an allowed name.
func New(cfg Config) (*Manager, error) {
	if cfg.KV == nil {
		return nil, errors.New("acme: Config.KV is required")
	}
	if cfg.Allow == nil {
		return nil, errors.New("acme: Config.Allow is required")
	}
	if cfg.CA == "" {
		cfg.CA = LetsEncrypt
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	zl := zap.New(newSlogCore(cfg.Logger.With("component", "acme")))
	storage := NewKVStorage(cfg.KV)
	m := &Manager{}
	m.cache = certmagic.NewCache(certmagic.CacheOptions{
		GetConfigForCert: func(c certmagic.Certificate) (*certmagic.Config, error) {
			for _, n := range c.Names {
				if strings.HasPrefix(n, "*.") && m.managed != nil {
					return m.managed, nil
				}
			}
			return m.magic, nil
		},
		Logger: zl,
	})
	m.magic = certmagic.New(m.cache, certmagic.Config{
		Storage: storage,
		Logger:  zl,
		OnDemand: &certmagic.OnDemandConfig{
			DecisionFunc: func(ctx context.Context, name string) error {
				if err := cfg.Allow(ctx, name); err != nil {
					return fmt.Errorf("acme: no certificate for %s: %w", name, err)
				}
				return nil
			},
		},
	})
	m.issuer = certmagic.NewACMEIssuer(m.magic, certmagic.ACMEIssuer{
		CA:           cfg.CA,
		Email:        cfg.Email,
		Agreed:       true,
		TrustedRoots: cfg.CARoots,
		Logger:       zl,
		// Challenges are answered on the gateway's own listeners
		// (HTTPHandler, TLSConfig): their ports are taken, so certmagic
		// binds none of its own.
		AltHTTPPort:    cfg.HTTPPort,
		AltTLSALPNPort: cfg.TLSPort,
	})
	m.magic.Issuers = []certmagic.Issuer{m.issuer}
	if cfg.DNS != nil {
		// Wildcards are managed by a config of their own: not on demand
		// (certmagic defers every name of an on-demand config to its
		// first handshake, which asks for that exact name), and with the
		// DNS-01 challenge only (the one a wildcard can use). Both share
		// the cache: a handshake for a name under a wildcard finds it.
		m.managed = certmagic.New(m.cache, certmagic.Config{Storage: storage, Logger: zl})
		m.managed.Issuers = []certmagic.Issuer{certmagic.NewACMEIssuer(m.managed, certmagic.ACMEIssuer{
			CA:           cfg.CA,
			Email:        cfg.Email,
			Agreed:       true,
			TrustedRoots: cfg.CARoots,
			Logger:       zl,
			DNS01Solver: &certmagic.DNS01Solver{DNSManager: certmagic.DNSManager{
				DNSProvider: cfg.DNS,
				Resolvers:   cfg.DNSResolvers,
				Logger:      zl,
			}},
		})}
	}
	return m, nil
}

// TLSConfig serves the managed certificates (obtaining one on demand) and
// answers TLS-ALPN-01 challenges. NextProtos offers h2 and http/1.1.
func (m *Manager) TLSConfig() *tls.Config {
	c := m.magic.TLSConfig()
	if m.managed != nil {
		// A name under a managed wildcard is served by the wildcard's own
		// config, so the handshake's maintenance (renewal, reload) is that
		// of the wildcard and not the on-demand policy's for the name.
		onDemand := c.GetCertificate
		c.GetCertificate = func(hello *tls.ClientHelloInfo) (*tls.Certificate, error) {
			if m.underWildcard(hello.ServerName) && !slices.Contains(hello.SupportedProtos, "acme-tls/1") {
				if cert, err := m.managed.GetCertificate(hello); err == nil {
					return cert, nil
				}
			}
			return onDemand(hello)
		}
	}
	c.NextProtos = append([]string{"h2", "http/1.1"}, c.NextProtos...)
	c.MinVersion = tls.VersionTLS12
	return c
}

// HTTPHandler answers ACME HTTP-01 challenges and passes every other
// request to next.
func (m *Manager) HTTPHandler(next http.Handler) http.Handler {
	return m.issuer.HTTPChallengeHandler(next)
}

// Manage obtains (or loads) certificates for names and renews them. A
// wildcard (*.example.com, only with Config.DNS) is obtained now, in the
// background, by DNS-01, and serves every name one label under it at
// their handshakes; other names (the gateway's own host names) are
// allowed and obtained at their first handshake.
func (m *Manager) Manage(ctx context.Context, names []string) error {
	var wild, other []string
	for _, n := range names {
		if strings.HasPrefix(n, "*.") {
			wild = append(wild, n)
		} else {
			other = append(other, n)
		}
	}
	if len(wild) > 0 {
		if m.managed == nil {
			return fmt.Errorf("acme: %s: a wildcard needs a DNS provider (DNS-01)", strings.Join(wild, ", "))
		}
		m.mu.Lock()
		m.wild = append(m.wild, wild...)
		m.mu.Unlock()
		if err := m.managed.ManageAsync(ctx, wild); err != nil {
			return err
		}
	}
	if len(other) == 0 {
		return nil
	}
	return m.magic.ManageAsync(ctx, other)
}

// Close stops renewals.
func (m *Manager) Close() { m.cache.Stop() }
