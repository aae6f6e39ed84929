package main

import (
	"crypto/tls"
	"errors"
	"io"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/verity-cdn/verity/internal/testutil/certtest"
)

// `verity gateway --s3-tls-cert --s3-tls-key` serves the S3 API over
// HTTPS with the files' certificate; the flags are checked before
// anything starts.
func TestGatewayS3WithCertificateFiles(t *testing.T) {
	dir := t.TempDir()
	certFile, keyFile := filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	pool := certtest.SelfSigned(t, certFile, keyFile, "s3.example")

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
	err := runGateway(t.Context(), []string{"--data", t.TempDir(), "--listen", "127.0.0.1:0", "--s3-listen", "127.0.0.1:0",
		"--s3-tls-cert", certFile, "--s3-tls-key", filepath.Join(dir, "none.pem")}, &out, &out)
	if err == nil || !strings.Contains(err.Error(), "--s3-tls-cert") {
		t.Errorf("a missing key file: %v", err)
	}

	s3url := startCommand(t, runGateway, []string{"--data", t.TempDir(), "--listen", "127.0.0.1:0",
		"--s3-listen", "127.0.0.1:0", "--s3-tls-cert", certFile, "--s3-tls-key", keyFile}, "s3: ")
	if !strings.HasPrefix(s3url, "https://") {
		t.Fatalf("s3: %s, want https", s3url)
	}
	c := &http.Client{Timeout: time.Minute, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
	resp, err := c.Get(s3url + "/")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusForbidden || !strings.Contains(string(b), "AccessDenied") || resp.TLS.PeerCertificates[0].Subject.CommonName != "s3.example" {
		t.Errorf("unsigned request over https: %d %s", resp.StatusCode, b)
	}
}
