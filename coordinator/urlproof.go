package coordinator

import (
	"bufio"
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"time"

	"github.com/quic-go/quic-go"
	"github.com/quic-go/webtransport-go"

	"github.com/verity-cdn/verity/internal/netguard"
	"github.com/verity-cdn/verity/internal/nodeproto"
	"github.com/verity-cdn/verity/internal/noderecord"
	"github.com/verity-cdn/verity/internal/wire"
)

// URLProver checks, before a node is listed or given pins, that the URLs
// in its record are its own. Config.URLProver; the default is a
// *URLProof.
type URLProver interface {
	ProveURLs(ctx context.Context, rec noderecord.Signed) error
}

var _ URLProver = (*URLProof)(nil)

// URLProof is the default URLProver: every URL of the record must be on a
// public address (unless AllowPrivate) and answer a fresh nonce at
// nodeproto.ProofPath with a signature by the record's key, over HTTP for
// the HTTP URL and over a WebTransport stream (certificate pinned to the
// record's hashes) for the WebTransport URL.
type URLProof struct {
	// AllowPrivate accepts private, loopback, link-local and other
	// non-public addresses (a devnet, tests, a private network).
	AllowPrivate bool
	// Timeout bounds the proof of one record. Default 10 s.
	Timeout time.Duration
	// Resolver resolves host names of HTTP URLs. Default net.DefaultResolver.
	Resolver *net.Resolver
}

func (p *URLProof) allowed(a netip.Addr) bool {
	return netguard.Guard{AllowPrivate: p.AllowPrivate}.Allowed(a)
}

// checkHost refuses a URL host that is, or resolves to, an address that
// is not allowed.
func (p *URLProof) checkHost(ctx context.Context, host string) error {
	if a, err := netip.ParseAddr(host); err == nil {
		if !p.allowed(a) {
			return fmt.Errorf("%w: %s is not a public address", ErrURLProof, a)
		}
		return nil
	}
	r := p.Resolver
	if r == nil {
		r = net.DefaultResolver
	}
	addrs, err := r.LookupNetIP(ctx, "ip", host)
	if err != nil {
		return fmt.Errorf("%w: resolving %q: %w", ErrURLProof, clip(host), err)
	}
	for _, a := range addrs {
		if !p.allowed(a) {
			return fmt.Errorf("%w: %q resolves to %s, not a public address", ErrURLProof, clip(host), a)
		}
	}
	return nil
}

// ProveURLs checks rec's HTTP and WebTransport URLs.
func (p *URLProof) ProveURLs(ctx context.Context, rec noderecord.Signed) error {
	timeout := p.Timeout
	if timeout <= 0 {
		timeout = 10 * time.Second
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	r := rec.Record
	if r.HTTP == "" && r.WebTransport == "" {
		return fmt.Errorf("%w: the record names no URL", ErrURLProof)
	}
	// Every host is checked before any URL is dialed.
	for _, raw := range []string{r.HTTP, r.WebTransport} {
		if raw == "" {
			continue
		}
		u, err := url.Parse(raw)
		if err != nil || u.Host == "" {
			return fmt.Errorf("%w: bad URL %q", ErrURLProof, clip(raw))
		}
		if err := p.checkHost(ctx, u.Hostname()); err != nil {
			return err
		}
	}
	if r.HTTP != "" {
		if err := p.proveHTTP(ctx, r.NodeID, ed25519.PublicKey(r.PublicKey), r.HTTP); err != nil {
			return err
		}
	}
	if r.WebTransport != "" {
		if err := p.proveWebTransport(ctx, r, r.WebTransport); err != nil {
			return err
		}
	}
	return nil
}

func newProofNonce() ([]byte, string) {
	nonce := make([]byte, nodeproto.ProofNonceSize)
	_, _ = rand.Read(nonce)
	return nonce, nodeproto.ProofPath + "?c=" + hex.EncodeToString(nonce)
}

// checkProof verifies a node's answer body.
func checkProof(body []byte, node string, key ed25519.PublicKey, nonce []byte, where string) error {
	var pr nodeproto.URLProof
	if err := json.Unmarshal(body, &pr); err != nil {
		return fmt.Errorf("%w: %s: malformed answer", ErrURLProof, where)
	}
	if len(pr.Signature) != ed25519.SignatureSize || !ed25519.Verify(key, nodeproto.ProofSigningBytes(node, nonce), pr.Signature) {
		return fmt.Errorf("%w: %s answers with another key (node %q)", ErrURLProof, where, clip(pr.Node))
	}
	return nil
}

func (p *URLProof) proveHTTP(ctx context.Context, node string, key ed25519.PublicKey, raw string) error {
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return fmt.Errorf("%w: bad HTTP URL %q", ErrURLProof, clip(raw))
	}
	if err := p.checkHost(ctx, u.Hostname()); err != nil {
		return err
	}
	nonce, target := newProofNonce()
	d := &net.Dialer{Control: netguard.Guard{AllowPrivate: p.AllowPrivate}.Control}
	tr := &http.Transport{DialContext: d.DialContext, DisableKeepAlives: true, Proxy: nil,
		TLSClientConfig: &tls.Config{MinVersion: tls.VersionTLS12}}
	defer tr.CloseIdleConnections()
	c := &http.Client{Transport: tr, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.Scheme+"://"+u.Host+target, nil)
	if err != nil {
		return fmt.Errorf("%w: %w", ErrURLProof, err)
	}
	resp, err := c.Do(req)
	if err != nil {
		return fmt.Errorf("%w: %s: %w", ErrURLProof, clip(raw), err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 4<<10))
	if err != nil || resp.StatusCode != http.StatusOK {
		return fmt.Errorf("%w: %s answered %d", ErrURLProof, clip(raw), resp.StatusCode)
	}
	return checkProof(body, node, key, nonce, clip(raw))
}

func (p *URLProof) proveWebTransport(ctx context.Context, r noderecord.Record, raw string) error {
	u, err := url.Parse(raw)
	if err != nil || u.Scheme != "https" || u.Host == "" {
		return fmt.Errorf("%w: bad WebTransport URL %q", ErrURLProof, clip(raw))
	}
	// Browsers reach WebTransport with certificate hashes only on IP
	// literals, so nothing else is accepted (nor resolved).
	a, err := netip.ParseAddr(u.Hostname())
	if err != nil {
		return fmt.Errorf("%w: WebTransport host %q is not an IP literal", ErrURLProof, clip(u.Hostname()))
	}
	if err := p.checkHost(ctx, a.String()); err != nil {
		return err
	}
	hashes := r.CertHashes
	tr := &webtransport.Transport{
		TLSClientConfig: &tls.Config{
			InsecureSkipVerify: true, // replaced by the hash pin below
			VerifyPeerCertificate: func(raw [][]byte, _ [][]*x509.Certificate) error {
				if len(raw) == 0 {
					return errors.New("no certificate")
				}
				h := sha256.Sum256(raw[0])
				for _, want := range hashes {
					if bytes.Equal(h[:], want.SHA256) {
						return nil
					}
				}
				return errors.New("certificate not among the record's hashes")
			},
		},
		QUICConfig: &quic.Config{EnableDatagrams: true, EnableStreamResetPartialDelivery: true, MaxIdleTimeout: 10 * time.Second},
	}
	defer tr.Close()
	_, sess, err := tr.Dial(ctx, raw, nil)
	if err != nil {
		return fmt.Errorf("%w: %s: %w", ErrURLProof, clip(raw), err)
	}
	defer sess.CloseWithError(0, "")
	str, err := sess.OpenStreamSync(ctx)
	if err != nil {
		return fmt.Errorf("%w: %s: %w", ErrURLProof, clip(raw), err)
	}
	if dl, ok := ctx.Deadline(); ok {
		_ = str.SetDeadline(dl)
	}
	nonce, target := newProofNonce()
	if _, err := (&wire.Request{Target: target, Header: wire.Header{}}).WriteTo(str); err != nil {
		return fmt.Errorf("%w: %s: %w", ErrURLProof, clip(raw), err)
	}
	_ = str.Close()
	br := bufio.NewReader(io.LimitReader(str, 8<<10))
	resp, err := wire.ReadResponse(br)
	if err != nil {
		return fmt.Errorf("%w: %s: %w", ErrURLProof, clip(raw), err)
	}
	if resp.Status != http.StatusOK {
		return fmt.Errorf("%w: %s answered %d", ErrURLProof, clip(raw), resp.Status)
	}
	body, _ := io.ReadAll(br)
	return checkProof(body, r.NodeID, ed25519.PublicKey(r.PublicKey), nonce, clip(raw))
}
