package s3api

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"os"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// http11 is c for a server that speaks HTTP/1.1 only, as S3's clients
// do: "h2" is not offered (the protocols c offers for its own use, such
// as ACME's "acme-tls/1", stay).
func http11(c *tls.Config) *tls.Config {
	c = c.Clone()
	c.NextProtos = slices.DeleteFunc(slices.Clone(c.NextProtos), func(p string) bool { return p == "h2" })
	if !slices.Contains(c.NextProtos, "http/1.1") {
		c.NextProtos = append(c.NextProtos, "http/1.1")
	}
	if c.MinVersion < tls.VersionTLS12 {
		c.MinVersion = tls.VersionTLS12
	}
	return c
}

// AllowCertificate says whether host is a name of this API that may get
// a certificate (e.g. from ACME, at its first handshake): Config.Domain
// itself and BUCKET.<Domain> for a bucket that exists. Every other name
// is refused, so that nobody can make the server ask a CA for
// certificates of names it does not serve.
func (s *Server) AllowCertificate(ctx context.Context, host string) error {
	host = strings.TrimSuffix(strings.ToLower(host), ".")
	if s.cfg.Domain == "" {
		return errors.New("s3api: no domain: the API has no host names")
	}
	if host == s.cfg.Domain {
		return nil
	}
	name, ok := strings.CutSuffix(host, "."+s.cfg.Domain)
	if !ok || !validBucketName(name) {
		return fmt.Errorf("s3api: %q is not a name of the S3 API", host)
	}
	if _, err := s.buckets.Get(ctx, name); err != nil {
		if errors.Is(err, jetstream.ErrKeyNotFound) {
			return fmt.Errorf("s3api: %q: no bucket %s", host, name)
		}
		return fmt.Errorf("s3api: %q: %w", host, err)
	}
	return nil
}

// FileCertificate serves the certificate and key of two PEM files, read
// again when either file changes (at most once per second, at a
// handshake), so that a renewal (certbot's, say) needs no restart. A
// pair that cannot be loaded at the start is an error; one that cannot be
// loaded later keeps the last good pair, and the error is logged by the
// caller through onError.
type FileCertificate struct {
	certFile, keyFile string
	onError           func(error)

	mu      sync.Mutex
	cert    *tls.Certificate
	stamp   string // the files' sizes and modification times
	checked time.Time
}

// NewFileCertificate loads the pair once; onError (may be nil) hears of
// later reloads that fail.
func NewFileCertificate(certFile, keyFile string, onError func(error)) (*FileCertificate, error) {
	f := &FileCertificate{certFile: certFile, keyFile: keyFile, onError: onError}
	stamp, err := f.fileStamp()
	if err != nil {
		return nil, err
	}
	cert, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		return nil, fmt.Errorf("s3api: certificate: %w", err)
	}
	f.cert, f.stamp, f.checked = &cert, stamp, time.Now()
	return f, nil
}

func (f *FileCertificate) fileStamp() (string, error) {
	var b strings.Builder
	for _, name := range []string{f.certFile, f.keyFile} {
		fi, err := os.Stat(name)
		if err != nil {
			return "", fmt.Errorf("s3api: certificate: %w", err)
		}
		fmt.Fprintf(&b, "%d/%d;", fi.Size(), fi.ModTime().UnixNano())
	}
	return b.String(), nil
}

// GetCertificate is for tls.Config.GetCertificate.
func (f *FileCertificate) GetCertificate(*tls.ClientHelloInfo) (*tls.Certificate, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if time.Since(f.checked) < time.Second {
		return f.cert, nil
	}
	f.checked = time.Now()
	stamp, err := f.fileStamp()
	if err == nil && stamp != f.stamp {
		var cert tls.Certificate
		if cert, err = tls.LoadX509KeyPair(f.certFile, f.keyFile); err == nil {
			f.cert, f.stamp = &cert, stamp
		}
	}
	if err != nil && f.onError != nil {
		f.onError(err)
	}
	return f.cert, nil
}

// TLSConfig is a server config serving f's certificate.
func (f *FileCertificate) TLSConfig() *tls.Config {
	return &tls.Config{GetCertificate: f.GetCertificate, MinVersion: tls.VersionTLS12}
}
