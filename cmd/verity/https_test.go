package main

import (
	"context"
	"crypto/tls"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/quic-go/quic-go"
	"github.com/quic-go/quic-go/http3"

	"github.com/verity-cdn/verity/internal/testutil"
	"github.com/verity-cdn/verity/internal/testutil/acmetest"
)

// verity gateway --https against Pebble: a site that exists gets a
// certificate at its first handshake and is served with HSTS and Alt-Svc,
// also over HTTP/3; a name that is no site gets none; plain HTTP
// redirects names to https and still serves IP literals (nodes, health
// checks).
func TestGatewayHTTPSWithACME(t *testing.T) {
	base := testutil.FreePorts(t, 3)
	httpPort, httpsPort, s3Port := base, base+1, base+2
	ca := acmetest.Start(t, acmetest.Config{HTTPPort: httpPort, TLSPort: httpsPort})
	const root = "bafkreigh2akiscaildcqabsyg3dfr6chu3fgpregiymsck7e7aqa4s52zy"
	startCommand(t, runGateway, []string{
		"--data", t.TempDir(), "--listen", "127.0.0.1:" + strconv.Itoa(httpPort),
		"--https", "127.0.0.1:" + strconv.Itoa(httpsPort), "--domain", "verity.test",
		"--acme-ca", ca.Directory, "--acme-ca-root", ca.APIRootFile,
		"--site", "demo=" + root,
		"--s3-listen", "127.0.0.1:" + strconv.Itoa(s3Port), "--s3-domain", "s3.verity.test",
	}, "s3: https://")
	roots := ca.Roots(t)
	tr := &http.Transport{
		DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			return acmetest.HostDialer(network, addr)
		},
		TLSClientConfig:   &tls.Config{RootCAs: roots},
		ForceAttemptHTTP2: true,
	}
	defer tr.CloseIdleConnections()
	c := &http.Client{Transport: tr, Timeout: 2 * time.Minute,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	site := "https://demo.verity.test:" + strconv.Itoa(httpsPort)

	resp, err := c.Get(site + "/")
	if err != nil {
		t.Fatalf("site over https: %v", err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if hsts := resp.Header.Get("Strict-Transport-Security"); hsts != "max-age=31536000" {
		t.Errorf("Strict-Transport-Security %q", hsts)
	}
	if alt := resp.Header.Get("Alt-Svc"); alt != `h3=":`+strconv.Itoa(httpsPort)+`"; ma=86400` {
		t.Errorf("Alt-Svc %q", alt)
	}
	if resp.TLS == nil || len(resp.TLS.PeerCertificates) == 0 || resp.TLS.PeerCertificates[0].VerifyHostname("demo.verity.test") != nil {
		t.Fatalf("certificate does not name the site: %+v", resp.TLS)
	}
	if resp.ProtoMajor != 2 {
		t.Errorf("HTTPS spoke %s, want HTTP/2", resp.Proto)
	}

	if _, err := c.Get("https://nosuch.verity.test:" + strconv.Itoa(httpsPort) + "/"); err == nil {
		t.Error("a name that is no site got a certificate")
	}

	resp, err = c.Get("http://demo.verity.test:" + strconv.Itoa(httpPort) + "/a/b?c=d")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if loc := resp.Header.Get("Location"); resp.StatusCode != http.StatusPermanentRedirect || loc != site+"/a/b?c=d" {
		t.Errorf("plain HTTP for the site: %d → %q", resp.StatusCode, loc)
	}
	resp, err = c.Get("http://127.0.0.1:" + strconv.Itoa(httpPort) + "/healthz")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Errorf("plain HTTP on the IP literal: %d, want 200 (not redirected)", resp.StatusCode)
	}

	// The S3 API's port: HTTPS too, with an ACME certificate for its
	// name; an unsigned request gets S3's own error over it. A bucket
	// that does not exist gets no certificate.
	resp, err = c.Get("https://s3.verity.test:" + strconv.Itoa(s3Port) + "/")
	if err != nil {
		t.Fatalf("S3 API over https: %v", err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.TLS == nil || resp.TLS.PeerCertificates[0].VerifyHostname("s3.verity.test") != nil || resp.ProtoMajor != 1 {
		t.Errorf("S3 API's certificate or protocol: %+v %s", resp.TLS, resp.Proto)
	}
	if resp.StatusCode != http.StatusForbidden || !strings.Contains(string(b), "<Code>AccessDenied</Code>") {
		t.Errorf("unsigned S3 request over https: %d %s", resp.StatusCode, b)
	}
	if _, err := c.Get("https://nosuch.s3.verity.test:" + strconv.Itoa(s3Port) + "/"); err == nil {
		t.Error("a bucket name that does not exist got a certificate")
	}

	// HTTP/3, as Alt-Svc advertises.
	h3 := &http3.Transport{
		TLSClientConfig: &tls.Config{RootCAs: roots},
		Dial: func(ctx context.Context, addr string, tc *tls.Config, qc *quic.Config) (*quic.Conn, error) {
			_, port, _ := net.SplitHostPort(addr)
			return quic.DialAddrEarly(ctx, "127.0.0.1:"+port, tc, qc)
		},
	}
	defer h3.Close()
	resp, err = (&http.Client{Transport: h3, Timeout: time.Minute}).Get(site + "/healthz")
	if err != nil {
		t.Fatalf("HTTP/3: %v", err)
	}
	resp.Body.Close()
	if resp.ProtoMajor != 3 || resp.Header.Get("Strict-Transport-Security") == "" {
		t.Errorf("HTTP/3 response %s %d, HSTS %q", resp.Proto, resp.StatusCode, resp.Header.Get("Strict-Transport-Security"))
	}
}

// verity gateway --https with an RFC 2136 DNS provider: the wildcard
// *.<domain> is obtained at start by DNS-01 and serves every site's
// origin, a name that is no site included (it answers 404 over HTTPS);
// the gateway refuses to start with a DNS server but no key.
func TestGatewayWildcardCertificateByDNS01(t *testing.T) {
	base := testutil.FreePorts(t, 3)
	httpPort, httpsPort, s3Port := base, base+1, base+2
	ca := acmetest.Start(t, acmetest.Config{HTTPPort: httpPort, TLSPort: httpsPort})
	keyFile := filepath.Join(t.TempDir(), "tsig.key")
	if err := os.WriteFile(keyFile, []byte(ca.TSIGSecret+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	args := []string{
		"--data", t.TempDir(), "--listen", "127.0.0.1:" + strconv.Itoa(httpPort),
		"--https", "127.0.0.1:" + strconv.Itoa(httpsPort), "--domain", "verity.test",
		"--acme-ca", ca.Directory, "--acme-ca-root", ca.APIRootFile,
		"--site", "demo=bafkreigh2akiscaildcqabsyg3dfr6chu3fgpregiymsck7e7aqa4s52zy",
		"--s3-listen", "127.0.0.1:" + strconv.Itoa(s3Port), "--s3-domain", "s3.verity.test",
	}
	var out strings.Builder
	if err := runGateway(t.Context(), append(slices.Clone(args), "--acme-dns-server", ca.DNS), &out, &out); err == nil || !strings.Contains(err.Error(), "--acme-dns-key-file") {
		t.Fatalf("--acme-dns-server without a key: %v", err)
	}
	startCommand(t, runGateway, append(args, "--acme-dns-server", ca.DNS, "--acme-dns-key", acmetest.TSIGKeyName,
		"--acme-dns-key-file", keyFile), "https: ")
	roots := ca.Roots(t)
	namesAt := func(port int, host string) ([]string, error) {
		conn, err := tls.DialWithDialer(&net.Dialer{Timeout: 5 * time.Second}, "tcp",
			"127.0.0.1:"+strconv.Itoa(port), &tls.Config{ServerName: host, RootCAs: roots})
		if err != nil {
			return nil, err
		}
		defer conn.Close()
		return conn.ConnectionState().PeerCertificates[0].DNSNames, nil
	}
	names := func(host string) ([]string, error) { return namesAt(httpsPort, host) }
	// Only the wildcard can answer a name that is no site.
	err := testutil.Wait(90*time.Second, func() error { _, err := names("nosuch.verity.test"); return err })
	if err != nil {
		t.Fatalf("the wildcard was not obtained: %v", err)
	}
	for _, host := range []string{"demo.verity.test", "nosuch.verity.test"} {
		if got, err := names(host); err != nil || !slices.Equal(got, []string{"*.verity.test"}) {
			t.Errorf("%s: certificate for %q (%v), want *.verity.test", host, got, err)
		}
	}
	// The S3 API's buckets, virtual-hosted: the wildcard *.s3.<domain>.
	err = testutil.Wait(90*time.Second, func() error { _, err := namesAt(s3Port, "anybucket.s3.verity.test"); return err })
	if got, _ := namesAt(s3Port, "anybucket.s3.verity.test"); err != nil || !slices.Equal(got, []string{"*.s3.verity.test"}) {
		t.Errorf("S3 bucket name: certificate for %q (%v), want *.s3.verity.test", got, err)
	}
	c := &http.Client{Timeout: time.Minute, Transport: &http.Transport{
		DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			return acmetest.HostDialer(network, addr)
		},
		TLSClientConfig: &tls.Config{RootCAs: roots},
	}}
	resp, err := c.Get("https://nosuch.verity.test:" + strconv.Itoa(httpsPort) + "/")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusNotFound {
		t.Errorf("a name that is no site over https: %d, want 404", resp.StatusCode)
	}
}
