package s3api_test

import (
	"bytes"
	"context"
	"crypto/tls"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/verity-cdn/verity/internal/testutil/certtest"
	"github.com/verity-cdn/verity/s3api"
)

// The S3 API over HTTPS with certificate files: real clients sign and
// are answered over TLS, HTTP/1.1 only; a renewal of the files is served
// without a restart, a broken one keeps the last good pair; plain HTTP
// to the port gets no answer.
func TestHTTPSWithCertificateFiles(t *testing.T) {
	n := startNetwork(t)
	k := n.account(t, "tls-files")
	ca := certtest.NewCA(t)
	dir := t.TempDir()
	certFile, keyFile := filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	ca.WriteLeaf(t, 100, certFile, keyFile, "s3.localhost", "*.s3.localhost")

	var reloadErrs atomic.Int32
	fc, err := s3api.NewFileCertificate(certFile, keyFile, func(error) { reloadErrs.Add(1) })
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s3api.NewFileCertificate(certFile, filepath.Join(dir, "none.pem"), nil); err == nil {
		t.Error("a missing key file was accepted")
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv, err := s3api.New(s3api.Config{
		Listener: ln, TLS: fc.TLSConfig(), Keys: n.d.Control(), Store: n.d.Control(), Bus: n.d.Bus(),
		DataDir: t.TempDir(), Domain: "s3.localhost", Logger: slog.New(slog.DiscardHandler),
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- srv.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
	if !strings.HasPrefix(srv.URL(), "https://") {
		t.Fatalf("URL %s, want https", srv.URL())
	}

	tr := &http.Transport{TLSClientConfig: &tls.Config{RootCAs: ca.Pool}, ForceAttemptHTTP2: true}
	defer tr.CloseIdleConnections()
	c := s3.New(s3.Options{
		Region: "us-east-1", Credentials: credentials.NewStaticCredentialsProvider(k.ID, k.Secret, ""),
		BaseEndpoint: aws.String(srv.URL()), UsePathStyle: true, HTTPClient: &http.Client{Transport: tr},
	})
	body := random(100 << 10)
	if _, err := c.CreateBucket(t.Context(), &s3.CreateBucketInput{Bucket: aws.String("tls-bucket")}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.PutObject(t.Context(), &s3.PutObjectInput{Bucket: aws.String("tls-bucket"), Key: aws.String("a/b.bin"), Body: bytes.NewReader(body)}); err != nil {
		t.Fatal(err)
	}
	out, err := c.GetObject(t.Context(), &s3.GetObjectInput{Bucket: aws.String("tls-bucket"), Key: aws.String("a/b.bin")})
	if err != nil {
		t.Fatal(err)
	}
	got, err := io.ReadAll(out.Body)
	out.Body.Close()
	if err != nil || !bytes.Equal(got, body) {
		t.Fatalf("GET over HTTPS: %d bytes, %v", len(got), err)
	}

	serial := func() int64 {
		t.Helper()
		resp, err := (&http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: ca.Pool}, ForceAttemptHTTP2: true}}).Get(srv.URL() + "/")
		if err != nil {
			t.Fatalf("handshake: %v", err)
		}
		resp.Body.Close()
		if resp.ProtoMajor != 1 {
			t.Errorf("spoke %s: the S3 port is HTTP/1.1", resp.Proto)
		}
		return resp.TLS.PeerCertificates[0].SerialNumber.Int64()
	}
	if s := serial(); s != 100 {
		t.Fatalf("serial %d, want 100", s)
	}

	// A renewal: new files, served at a later handshake.
	ca.WriteLeaf(t, 101, certFile, keyFile, "s3.localhost", "*.s3.localhost")
	later := time.Now().Add(2 * time.Second)
	os.Chtimes(certFile, later, later) // a different stamp even within the clock's resolution
	deadline := time.Now().Add(30 * time.Second)
	for serial() != 101 {
		if time.Now().After(deadline) {
			t.Fatal("the renewed certificate was never served")
		}
		time.Sleep(200 * time.Millisecond)
	}
	// A broken renewal keeps the last good pair.
	if err := os.WriteFile(keyFile, []byte("not a key"), 0o600); err != nil {
		t.Fatal(err)
	}
	later = later.Add(2 * time.Second)
	os.Chtimes(keyFile, later, later)
	deadline = time.Now().Add(30 * time.Second)
	for reloadErrs.Load() == 0 {
		if time.Now().After(deadline) {
			t.Fatal("a broken key file was never reported")
		}
		if s := serial(); s != 101 {
			t.Fatalf("after a broken renewal, serial %d, want the last good 101", s)
		}
		time.Sleep(200 * time.Millisecond)
	}

	// Plain HTTP on the TLS port: no S3 answer.
	resp, err := http.Get("http://" + ln.Addr().String() + "/tls-bucket/a/b.bin")
	if err == nil {
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode < 400 || bytes.Contains(b, body[:64]) {
			t.Errorf("plain HTTP to the HTTPS port: %d", resp.StatusCode)
		}
	}
}

// Which names may get a certificate: the API's domain and its existing
// buckets' names under it, nothing else (a CA is never asked for a name
// the API does not serve).
func TestAllowCertificate(t *testing.T) {
	n := startNetwork(t)
	k := n.account(t, "tls-names")
	c := client(n, k)
	if _, err := c.CreateBucket(t.Context(), &s3.CreateBucketInput{Bucket: aws.String("named-bucket")}); err != nil {
		t.Fatal(err)
	}
	for host, ok := range map[string]bool{
		"s3.localhost":                true,
		"S3.Localhost.":               true,
		"named-bucket.s3.localhost":   true,
		"nosuch-bucket.s3.localhost":  false,
		"a.named-bucket.s3.localhost": false,
		"s3.localhost.evil.test":      false,
		"evil.test":                   false,
		"-x.s3.localhost":             false,
	} {
		err := n.d.S3().AllowCertificate(t.Context(), host)
		if (err == nil) != ok {
			t.Errorf("%s: allowed %v (%v), want %v", host, err == nil, err, ok)
		}
	}
}
