package gateway

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/quic-go/quic-go/http3"
)

// HTTPSConfig serves the gateway over TLS beside its plain-HTTP listener.
type HTTPSConfig struct {
	// Listener is the TCP listener for HTTPS (required); TLS is applied
	// by the gateway.
	Listener net.Listener
	// TLS provides the certificates (required), e.g. acme.Manager's.
	TLS *tls.Config
	// HTTP3, when set, serves HTTP/3 on this UDP socket (same port as
	// Listener, by convention) and advertises it with Alt-Svc on HTTPS
	// responses.
	HTTP3 net.PacketConn
	// Challenge wraps the plain-HTTP handler, e.g. to answer ACME HTTP-01
	// challenges (acme.Manager.HTTPHandler). Optional.
	Challenge func(http.Handler) http.Handler
	// Redirect sends plain-HTTP requests for host names (site origins,
	// custom domains, the gateway's own name) to https with 308. IP
	// literals and localhost stay on plain HTTP: they have no
	// certificate, and nodes and health checks may use them.
	Redirect bool
	// HSTSMaxAge is the Strict-Transport-Security max-age sent on HTTPS
	// responses for host names. Default one year; negative: none.
	HSTSMaxAge time.Duration
}

// defaultHSTSMaxAge is a year, the value browsers' preload lists ask for.
const defaultHSTSMaxAge = 365 * 24 * time.Hour

func (c *HTTPSConfig) normalize() error {
	if c.Listener == nil || c.TLS == nil {
		return errors.New("gateway: HTTPS needs a Listener and a TLS config")
	}
	if c.HSTSMaxAge == 0 {
		c.HSTSMaxAge = defaultHSTSMaxAge
	}
	return nil
}

// httpsParts is what the gateway runs for HTTPSConfig.
type httpsParts struct {
	ln     net.Listener // TLS over the limited listener
	srv    *http.Server
	h3     *http3.Server
	altSvc string // Alt-Svc value, "" without HTTP/3
}

// startHTTPS prepares the HTTPS and HTTP/3 servers (served by Run).
func (g *Gateway) startHTTPS() error {
	c := g.cfg.HTTPS
	p := &httpsParts{}
	tcfg := c.TLS.Clone()
	if len(tcfg.NextProtos) == 0 {
		tcfg.NextProtos = []string{"h2", "http/1.1"}
	}
	p.ln = tls.NewListener(g.limitListener(c.Listener), tcfg)
	p.srv = &http.Server{
		Handler:           http.HandlerFunc(g.serveHTTPS),
		ReadHeaderTimeout: g.cfg.ReadHeaderTimeout,
		ReadTimeout:       g.cfg.ReadTimeout,
		IdleTimeout:       g.cfg.IdleTimeout,
		MaxHeaderBytes:    g.cfg.MaxHeaderBytes,
		ErrorLog:          g.srv.ErrorLog,
		TLSConfig:         tcfg,
	}
	if c.HTTP3 != nil {
		p.h3 = &http3.Server{
			Handler:        http.HandlerFunc(g.serveHTTPS),
			TLSConfig:      http3.ConfigureTLSConfig(c.TLS.Clone()),
			MaxHeaderBytes: g.cfg.MaxHeaderBytes,
			IdleTimeout:    g.cfg.IdleTimeout,
		}
		if ua, ok := c.HTTP3.LocalAddr().(*net.UDPAddr); ok {
			p.altSvc = `h3=":` + strconv.Itoa(ua.Port) + `"; ma=86400`
		}
	}
	g.https = p
	// The plain listener: challenges first, then redirects for names.
	var h http.Handler = g
	if c.Redirect {
		h = g.redirectToHTTPS(h)
	}
	if c.Challenge != nil {
		h = c.Challenge(h)
	}
	g.srv.Handler = h
	return nil
}

// serveHTTPS serves a request that came over TLS: HSTS and Alt-Svc for
// host names, then as any request.
func (g *Gateway) serveHTTPS(w http.ResponseWriter, r *http.Request) {
	if host := requestHost(r); isNamedHost(host) {
		if ma := g.cfg.HTTPS.HSTSMaxAge; ma > 0 {
			w.Header().Set("Strict-Transport-Security", "max-age="+strconv.Itoa(int(ma/time.Second)))
		}
	}
	if a := g.https.altSvc; a != "" && r.ProtoMajor < 3 {
		w.Header().Set("Alt-Svc", a)
	}
	g.ServeHTTP(w, r)
}

// redirectToHTTPS answers plain-HTTP requests for host names with a 308 to
// the same URL on https (the HTTPS listener's port when it is not 443).
func (g *Gateway) redirectToHTTPS(next http.Handler) http.Handler {
	port := ""
	if ta, ok := g.cfg.HTTPS.Listener.Addr().(*net.TCPAddr); ok && ta.Port != 443 {
		port = ":" + strconv.Itoa(ta.Port)
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		host := requestHost(r)
		if !isNamedHost(host) {
			next.ServeHTTP(w, r)
			return
		}
		http.Redirect(w, r, "https://"+host+port+r.URL.RequestURI(), http.StatusPermanentRedirect)
	})
}

// requestHost is r's host name, lower case, without port or final dot.
func requestHost(r *http.Request) string {
	host := strings.ToLower(r.Host)
	if h, _, err := net.SplitHostPort(host); err == nil {
		host = h
	}
	return strings.TrimSuffix(host, ".")
}

// isNamedHost reports whether host is a DNS name a certificate can name:
// not an IP literal, not localhost or a name under it.
func isNamedHost(host string) bool {
	if host == "" || net.ParseIP(host) != nil {
		return false
	}
	return host != "localhost" && !strings.HasSuffix(host, ".localhost")
}

// AllowCertificate decides whether a certificate may be obtained for host
// (acme.Config.Allow): the gateway's own names (Config.Domain and
// AdminHosts), the origin of a site that exists or of an unexpired
// preview deploy (<root>.preview.<Domain>), a custom domain attached
// to a site and proven (Config.Domains), and a custom domain whose
// DNSLink record names a root a site published. Everything else is
// refused, so nobody can make the gateway ask its CA for arbitrary names.
func (g *Gateway) AllowCertificate(ctx context.Context, host string) error {
	host = strings.TrimSuffix(strings.ToLower(host), ".")
	if !isNamedHost(host) {
		return fmt.Errorf("%q is not a public host name", host)
	}
	if host == g.cfg.Domain {
		return nil
	}
	for _, h := range g.cfg.AdminHosts {
		if host == h {
			return nil
		}
	}
	if name, ok := strings.CutSuffix(host, "."+g.cfg.Domain); ok {
		_, _, err := g.originSite(ctx, name) // a site, or an unexpired preview
		return err
	}
	if g.cfg.Domains != nil {
		if _, err := g.cfg.Domains.DomainSite(ctx, host); err == nil {
			return nil
		}
	}
	if g.cfg.DNSLink != nil {
		root, err := g.cfg.DNSLink.ResolveDNSLink(ctx, host)
		if err != nil {
			return err
		}
		if sr, ok := g.cfg.Sites.(SiteRoots); ok {
			_, err = sr.SiteOfRoot(ctx, root)
			return err
		}
	}
	return fmt.Errorf("%q is neither a site origin nor a custom domain of this gateway", host)
}

// HTTPSURL is the gateway's HTTPS base for host, e.g. https://demo.example
// (with the port when it is not 443); "" without HTTPS.
func (g *Gateway) HTTPSURL(host string) string {
	if g.https == nil {
		return ""
	}
	if ta, ok := g.https.ln.Addr().(*net.TCPAddr); ok && ta.Port != 443 {
		host += ":" + strconv.Itoa(ta.Port)
	}
	return "https://" + host
}
