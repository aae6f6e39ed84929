//go:build js

package payment

import (
	"io"

	"github.com/verity-cdn/verity/internal/sha256"
)

// The worker's wasm signs with the portable ed25519 (ed25519_portable.go),
// hashes with internal/sha256 and draws its session key from the browser's
// crypto.getRandomValues (rand_js.go): crypto/ed25519, crypto/sha256 and
// crypto/rand would link the FIPS 140 module. Same results as crypto_std.go.

// PrivateKey is an ed25519 private key: crypto/ed25519.PrivateKey natively;
// in the worker's wasm, which does not link crypto/ed25519, a []byte of
// the same layout (seed || public key).
type PrivateKey = []byte

// PublicKey is an ed25519 public key: crypto/ed25519.PublicKey natively, a
// 32-byte []byte in the worker's wasm.
type PublicKey = []byte

func generateKey(r io.Reader) (PublicKey, PrivateKey, error) { return portableGenerateKey(r) }

// sign reports false when priv is not a consistent 64-byte key.
func sign(sig *[signatureSize]byte, priv PrivateKey, msg []byte) bool {
	return portableSign(sig, priv, msg)
}

func verify(pub PublicKey, msg, sig []byte) bool { return portableVerify(pub, msg, sig) }

func sum256(b []byte) [32]byte { return sha256.Sum256(b) }

func defaultRand() io.Reader { return jsRandom{} }
