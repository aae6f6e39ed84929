package secret

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"errors"
)

// ErrUnsealable is returned for a sealed secret that was not sealed
// under the Sealer's key, or was altered.
var ErrUnsealable = errors.New("secret: sealed under another key or altered")

// Sealer keeps secrets the server must use again, not only compare (a
// webhook's signing secret): AES-256-GCM under a key derived from a
// server credential, so what is stored is useless without it.
type Sealer struct{ aead cipher.AEAD }

// NewSealer derives a sealing key from credential for purpose (HMAC-SHA256
// keyed by the credential), so one credential seals each kind of secret
// under its own key.
func NewSealer(credential, purpose string) *Sealer {
	m := hmac.New(sha256.New, []byte(credential))
	m.Write([]byte("verity sealing key: " + purpose))
	block, _ := aes.NewCipher(m.Sum(nil)) // 32 bytes: AES-256, never fails
	aead, _ := cipher.NewGCM(block)       // never fails for AES
	return &Sealer{aead: aead}
}

// Seal encrypts plain with a fresh nonce, which it prepends.
func (s *Sealer) Seal(plain string) []byte {
	nonce := make([]byte, s.aead.NonceSize())
	_, _ = rand.Read(nonce)
	return s.aead.Seal(nonce, nonce, []byte(plain), nil)
}

// Open returns the secret sealed in b, or ErrUnsealable.
func (s *Sealer) Open(b []byte) (string, error) {
	n := s.aead.NonceSize()
	if len(b) < n+s.aead.Overhead() {
		return "", ErrUnsealable
	}
	plain, err := s.aead.Open(nil, b[:n], b[n:], nil)
	if err != nil {
		return "", ErrUnsealable
	}
	return string(plain), nil
}
