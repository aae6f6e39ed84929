package node

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/verity-cdn/verity/internal/noderecord"
)

const certsFile = "webtransport.pem"

// certBackdate is how far before its start a certificate's NotBefore is set,
// to tolerate clients whose clocks run a little behind. It is counted inside
// CertValidity so the total validity never exceeds it.
const certBackdate = time.Hour

// wtCert is one WebTransport certificate.
type wtCert struct {
	tls       *tls.Certificate
	der       []byte
	key       *ecdsa.PrivateKey
	hash      [32]byte
	notBefore time.Time
	notAfter  time.Time
}

func (c *wtCert) certHash() noderecord.CertHash {
	return noderecord.CertHash{SHA256: append([]byte(nil), c.hash[:]...), NotBefore: c.notBefore, NotAfter: c.notAfter}
}

// newCert makes a self-signed ECDSA P-256 certificate valid from
// start-certBackdate for validity in total.
func newCert(start time.Time, validity time.Duration, ips []net.IP) (*wtCert, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		return nil, err
	}
	nb := start.Add(-certBackdate).UTC().Truncate(time.Second)
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{CommonName: "verity-node"},
		NotBefore:             nb,
		NotAfter:              nb.Add(validity),
		KeyUsage:              x509.KeyUsageDigitalSignature,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
		IPAddresses:           ips,
		DNSNames:              []string{"localhost"},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, err
	}
	return certFromDER(der, key)
}

func certFromDER(der []byte, key *ecdsa.PrivateKey) (*wtCert, error) {
	leaf, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, err
	}
	return &wtCert{
		tls:       &tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key, Leaf: leaf},
		der:       der,
		key:       key,
		hash:      sha256.Sum256(der),
		notBefore: leaf.NotBefore,
		notAfter:  leaf.NotAfter,
	}, nil
}

// certManager holds the current and next certificates.
type certManager struct {
	path         string
	validity     time.Duration
	rotateBefore time.Duration
	ips          []net.IP
	now          func() time.Time

	mu      sync.RWMutex
	current *wtCert
	next    *wtCert
}

// rotateAt is when the current certificate is replaced.
func (m *certManager) rotateAt() time.Time {
	m.mu.RLock()
	defer m.mu.RUnlock()
	return m.current.notAfter.Add(-m.rotateBefore)
}

// pair returns current and next.
func (m *certManager) pair() (cur, next *wtCert) {
	m.mu.RLock()
	defer m.mu.RUnlock()
	return m.current, m.next
}

func (m *certManager) getCertificate(*tls.ClientHelloInfo) (*tls.Certificate, error) {
	m.mu.RLock()
	defer m.mu.RUnlock()
	return m.current.tls, nil
}

// load reads the stored pair, or makes a new one when there is none or it is
// unusable, and rotates if due. It reports whether the pair changed.
func (m *certManager) load() error {
	now := m.now()
	cur, next, err := readCertPair(m.path)
	usable := err == nil &&
		!now.Before(cur.notBefore) && now.Before(cur.notAfter.Add(-m.rotateBefore)) &&
		cur.notAfter.Sub(cur.notBefore) <= m.validity && next.notAfter.Sub(next.notBefore) <= m.validity
	if usable {
		m.mu.Lock()
		m.current, m.next = cur, next
		m.mu.Unlock()
		return nil
	}
	if cur, err = newCert(now, m.validity, m.ips); err != nil {
		return err
	}
	if next, err = newCert(cur.notAfter.Add(-m.rotateBefore), m.validity, m.ips); err != nil {
		return err
	}
	m.mu.Lock()
	m.current, m.next = cur, next
	m.mu.Unlock()
	return m.save()
}

// rotate makes next current and generates a new next. When the next
// certificate is itself not valid now (the node was stopped for long), both
// are regenerated.
func (m *certManager) rotate() error {
	now := m.now()
	m.mu.RLock()
	cur := m.next
	m.mu.RUnlock()
	var err error
	if now.Before(cur.notBefore) || !now.Before(cur.notAfter.Add(-m.rotateBefore)) {
		if cur, err = newCert(now, m.validity, m.ips); err != nil {
			return err
		}
	}
	next, err := newCert(cur.notAfter.Add(-m.rotateBefore), m.validity, m.ips)
	if err != nil {
		return err
	}
	m.mu.Lock()
	m.current, m.next = cur, next
	m.mu.Unlock()
	return m.save()
}

func (m *certManager) save() error {
	cur, next := m.pair()
	var out []byte
	for _, c := range []*wtCert{cur, next} {
		keyDER, err := x509.MarshalECPrivateKey(c.key)
		if err != nil {
			return err
		}
		out = append(out, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: c.der})...)
		out = append(out, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: keyDER})...)
	}
	return writeFileAtomic(m.path, out, 0o600)
}

func readCertPair(path string) (cur, next *wtCert, err error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, nil, err
	}
	var certs []*wtCert
	for len(certs) < 2 {
		var cb, kb *pem.Block
		cb, data = pem.Decode(data)
		if cb == nil {
			break
		}
		kb, data = pem.Decode(data)
		if cb.Type != "CERTIFICATE" || kb == nil || kb.Type != "EC PRIVATE KEY" {
			return nil, nil, fmt.Errorf("node: %s: unexpected PEM blocks", filepath.Base(path))
		}
		key, err := x509.ParseECPrivateKey(kb.Bytes)
		if err != nil {
			return nil, nil, err
		}
		c, err := certFromDER(cb.Bytes, key)
		if err != nil {
			return nil, nil, err
		}
		if pub, ok := c.tls.Leaf.PublicKey.(*ecdsa.PublicKey); !ok || !pub.Equal(&key.PublicKey) {
			return nil, nil, errors.New("node: certificate and key do not match")
		}
		certs = append(certs, c)
	}
	if len(certs) != 2 {
		return nil, nil, errors.New("node: certificate file incomplete")
	}
	return certs[0], certs[1], nil
}
