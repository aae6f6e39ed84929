package main

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/verity-cdn/verity/gateway"
	"github.com/verity-cdn/verity/internal/acme"
	"github.com/verity-cdn/verity/internal/events"
)

// httpsFlags are the gateway's HTTPS flags.
type httpsFlags struct {
	addr, ca, email, caRoot string
	noHTTP3                 bool
	hsts                    time.Duration
	// RFC 2136 DNS provider for DNS-01: wildcard certificates.
	dnsServer, dnsKey, dnsKeyAlg, dnsKeyFile string
}

// dnsProvider is the RFC 2136 provider the flags name, nil without
// --acme-dns-server.
func (f httpsFlags) dnsProvider() (*acme.RFC2136, error) {
	if f.dnsServer == "" {
		if f.dnsKey != "" || f.dnsKeyFile != "" {
			return nil, errors.New("--acme-dns-key and --acme-dns-key-file need --acme-dns-server")
		}
		return nil, nil
	}
	if f.dnsKeyFile == "" {
		return nil, errors.New("--acme-dns-server needs --acme-dns-key-file (the TSIG secret, base64)")
	}
	b, err := os.ReadFile(f.dnsKeyFile)
	if err != nil {
		return nil, fmt.Errorf("--acme-dns-key-file: %w", err)
	}
	p := &acme.RFC2136{Server: f.dnsServer, KeyName: f.dnsKey, KeyAlg: f.dnsKeyAlg, Secret: strings.TrimSpace(string(b))}
	if err := p.Check(); err != nil {
		return nil, err
	}
	return p, nil
}

// setup binds the HTTPS listener (TCP, and UDP for HTTP/3 on the same
// port) and the ACME manager with its storage on the bus; allow decides
// which names get certificates. The returned func stops renewals and
// releases what the gateway does not own.
//
// With an RFC 2136 DNS provider (--acme-dns-server), the wildcards
// *.DOMAIN (every site's origin) and *.preview.DOMAIN (previews) are
// obtained at start by DNS-01 and renewed: one certificate each instead of
// one per site; so are the extra wildcards given (the S3 API's buckets).
func (f httpsFlags) setup(bus *events.Bus, plain net.Listener, domain string, wildcards []string, allow func(context.Context, string) error, log *slog.Logger) (*gateway.HTTPSConfig, func(), error) {
	var roots *x509.CertPool
	if f.caRoot != "" {
		b, err := os.ReadFile(f.caRoot)
		if err != nil {
			return nil, nil, fmt.Errorf("--acme-ca-root: %w", err)
		}
		roots = x509.NewCertPool()
		if !roots.AppendCertsFromPEM(b) {
			return nil, nil, fmt.Errorf("--acme-ca-root %s: no PEM certificate in it", f.caRoot)
		}
	}
	dnsp, err := f.dnsProvider()
	if err != nil {
		return nil, nil, err
	}
	kv, err := bus.KV(events.BucketTLS)
	if err != nil {
		return nil, nil, err
	}
	ln, err := net.Listen("tcp", f.addr)
	if err != nil {
		return nil, nil, fmt.Errorf("--https: %w", err)
	}
	tlsPort := ln.Addr().(*net.TCPAddr).Port
	httpPort := 0
	if ta, ok := plain.Addr().(*net.TCPAddr); ok {
		httpPort = ta.Port
	}
	acfg := acme.Config{
		KV: kv, CA: f.ca, Email: f.email, CARoots: roots, Allow: allow,
		HTTPPort: httpPort, TLSPort: tlsPort, Logger: log,
	}
	if dnsp != nil {
		// The primary is authoritative: it finds the zone and sees the
		// challenge's record first.
		acfg.DNS, acfg.DNSResolvers = dnsp, []string{dnsp.Server}
	}
	m, err := acme.New(acfg)
	if err != nil {
		ln.Close()
		return nil, nil, err
	}
	if dnsp != nil {
		if err := m.Manage(context.Background(), append([]string{"*." + domain, "*.preview." + domain}, wildcards...)); err != nil {
			m.Close()
			ln.Close()
			return nil, nil, err
		}
	}
	hc := &gateway.HTTPSConfig{
		Listener:   ln,
		TLS:        m.TLSConfig(),
		Challenge:  m.HTTPHandler,
		Redirect:   true,
		HSTSMaxAge: f.hsts,
	}
	if f.hsts == 0 {
		hc.HSTSMaxAge = -1
	}
	if !f.noHTTP3 {
		host, _, _ := net.SplitHostPort(f.addr)
		pc, err := net.ListenPacket("udp", net.JoinHostPort(host, strconv.Itoa(tlsPort)))
		if err != nil {
			m.Close()
			ln.Close()
			return nil, nil, errors.Join(fmt.Errorf("--https: HTTP/3 on UDP port %d (--no-http3 to go without)", tlsPort), err)
		}
		hc.HTTP3 = pc
	}
	return hc, m.Close, nil
}
