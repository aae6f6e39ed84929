package main

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"io"
	"math/big"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// `verity gateway --s3-tls-cert --s3-tls-key` serves the S3 API over
// HTTPS with the files' certificate; the flags are checked before
// anything starts.
func TestGatewayS3WithCertificateFiles(t *testing.T) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(7), Subject: pkix.Name{CommonName: "s3.example"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		DNSNames: []string{"s3.example"}, IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kb, _ := x509.MarshalECPrivateKey(key)
	dir := t.TempDir()
	certFile, keyFile := filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o644)
	os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kb}), 0o600)

	for _, bad := range [][]string{
		{"--s3-listen", "127.0.0.1:0", "--s3-tls-cert", certFile},
		{"--s3-tls-cert", certFile, "--s3-tls-key", keyFile},
		{"--s3-listen", "127.0.0.1:0", "--s3-tls-cert", certFile, "--s3-tls-key", keyFile, "--s3-plain"},
	} {
		var out strings.Builder
		err := runGateway(t.Context(), append([]string{"--data", t.TempDir(), "--listen", "127.0.0.1:0"}, bad...), &out, &out)
		if !errors.Is(err, errUsage) {
			t.Errorf("%q: %v, want a usage error", bad, err)
		}
	}
	var out strings.Builder
	err = runGateway(t.Context(), []string{"--data", t.TempDir(), "--listen", "127.0.0.1:0", "--s3-listen", "127.0.0.1:0",
		"--s3-tls-cert", certFile, "--s3-tls-key", filepath.Join(dir, "none.pem")}, &out, &out)
	if err == nil || !strings.Contains(err.Error(), "--s3-tls-cert") {
		t.Errorf("a missing key file: %v", err)
	}

	s3url := startCommand(t, runGateway, []string{"--data", t.TempDir(), "--listen", "127.0.0.1:0",
		"--s3-listen", "127.0.0.1:0", "--s3-tls-cert", certFile, "--s3-tls-key", keyFile}, "s3: ")
	if !strings.HasPrefix(s3url, "https://") {
		t.Fatalf("s3: %s, want https", s3url)
	}
	pool := x509.NewCertPool()
	pool.AddCert(tmpl)
	cert, _ := x509.ParseCertificate(der)
	pool.AddCert(cert)
	c := &http.Client{Timeout: time.Minute, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
	resp, err := c.Get(s3url + "/")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusForbidden || !strings.Contains(string(b), "AccessDenied") || resp.TLS.PeerCertificates[0].SerialNumber.Int64() != 7 {
		t.Errorf("unsigned request over https: %d %s", resp.StatusCode, b)
	}
}
