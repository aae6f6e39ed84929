// Package secret makes bearer credentials and keeps only their salted
// hashes: deploy tokens, the admin token, operator credentials. A
// credential is a prefix naming its kind and 256 random bits; what is
// stored is a random 16-byte salt and SHA-256(salt ‖ credential), compared
// in constant time. Secrets the server must use again rather than compare
// (webhook signing secrets) are sealed instead (Sealer): AES-256-GCM under
// a key derived from a server credential.
package secret

import (
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
)

// New returns prefix followed by 32 random bytes in unpadded base64url.
func New(prefix string) string {
	var b [32]byte
	_, _ = rand.Read(b[:])
	return prefix + base64.RawURLEncoding.EncodeToString(b[:])
}

// Hashed is what is stored of a credential.
type Hashed struct {
	Salt []byte // 16 random bytes
	Hash []byte // SHA-256(Salt ‖ credential)
}

// Hash salts and hashes tok with a fresh salt.
func Hash(tok string) Hashed {
	salt := make([]byte, 16)
	_, _ = rand.Read(salt)
	return Hashed{Salt: salt, Hash: sum(salt, tok)}
}

// Matches reports, in constant time, whether tok is the credential h was
// made of.
func (h Hashed) Matches(tok string) bool {
	return subtle.ConstantTimeCompare(sum(h.Salt, tok), h.Hash) == 1
}

// Burn costs what Matches does, for a credential whose record does not
// exist: a missing name then answers as slowly as a wrong secret.
func Burn(tok string) { _ = sum(make([]byte, 16), tok) }

func sum(salt []byte, tok string) []byte {
	h := sha256.New()
	h.Write(salt)
	h.Write([]byte(tok))
	return h.Sum(nil)
}
