//go:build !js

package payment

import (
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha256"
	"io"
)

// Native builds sign, verify, hash and draw keys with the standard library.
// The worker's wasm uses the portable twins (crypto_js.go).

// PrivateKey is an ed25519 private key: crypto/ed25519.PrivateKey natively;
// in the worker's wasm, which does not link crypto/ed25519, a []byte of
// the same layout (seed || public key).
type PrivateKey = ed25519.PrivateKey

// PublicKey is an ed25519 public key: crypto/ed25519.PublicKey natively, a
// 32-byte []byte in the worker's wasm.
type PublicKey = ed25519.PublicKey

func generateKey(r io.Reader) (PublicKey, PrivateKey, error) { return ed25519.GenerateKey(r) }

// sign always reports true: crypto/ed25519.Sign panics on a bad key.
func sign(sig *[signatureSize]byte, priv PrivateKey, msg []byte) bool {
	copy(sig[:], ed25519.Sign(priv, msg))
	return true
}

func verify(pub PublicKey, msg, sig []byte) bool { return ed25519.Verify(pub, msg, sig) }

func sum256(b []byte) [32]byte { return sha256.Sum256(b) }

func defaultRand() io.Reader { return rand.Reader }
