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
}

// setup binds the HTTPS listener (TCP, and UDP for HTTP/3 on the same
// port) and the ACME manager with its storage on the bus; allow decides
// which names get certificates. The returned func stops renewals and
// releases what the gateway does not own.
func (f httpsFlags) setup(bus *events.Bus, plain net.Listener, allow func(context.Context, string) error, log *slog.Logger) (*gateway.HTTPSConfig, func(), error) {
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
	m, err := acme.New(acme.Config{
		KV: kv, CA: f.ca, Email: f.email, CARoots: roots, Allow: allow,
		HTTPPort: httpPort, TLSPort: tlsPort, Logger: log,
	})
	if err != nil {
		ln.Close()
		return nil, nil, err
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
