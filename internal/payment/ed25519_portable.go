package payment

import (
	"crypto/subtle"
	"io"

	"filippo.io/edwards25519"

	"github.com/verity-cdn/verity/internal/sha512"
)

// A portable Ed25519 (RFC 8032, pure Ed25519) on filippo.io/edwards25519
// and internal/sha512. The worker's wasm signs its receipts with it
// (crypto_js.go) because crypto/ed25519, crypto/sha512 and crypto/rand link
// the FIPS 140 module, its self-tests and math/big: over 100 KB of gzipped
// wasm. Native builds use crypto/ed25519 (crypto_std.go). The functions
// here build everywhere, so tests check them against crypto/ed25519 in both
// builds. Keys and signatures have crypto/ed25519's layouts: a private key
// is seed(32) || public key(32).

const (
	publicKeySize  = 32
	privateKeySize = 64
	signatureSize  = 64
	seedSize       = 32
)

// portableKeyFromSeed returns the private key for a 32-byte seed.
func portableKeyFromSeed(seed []byte) []byte {
	priv := make([]byte, privateKeySize)
	copy(priv, seed)
	s, _ := expandSeed(priv[:seedSize])
	copy(priv[seedSize:], new(edwards25519.Point).ScalarBaseMult(s).Bytes())
	return priv
}

// expandSeed returns the secret scalar (the clamped first half of
// SHA-512(seed)) and the nonce prefix (the second half).
func expandSeed(seed []byte) (*edwards25519.Scalar, []byte) {
	h := sha512.Sum512(seed)
	s, err := edwards25519.NewScalar().SetBytesWithClamping(h[:32])
	if err != nil { // only for a wrong length, and h[:32] is 32 bytes
		return edwards25519.NewScalar(), h[32:]
	}
	return s, h[32:]
}

// portableGenerateKey reads a seed from r, as crypto/ed25519.GenerateKey
// does with a non-nil reader.
func portableGenerateKey(r io.Reader) (pub, priv []byte, err error) {
	seed := make([]byte, seedSize)
	if _, err := io.ReadFull(r, seed); err != nil {
		return nil, nil, err
	}
	priv = portableKeyFromSeed(seed)
	return append([]byte(nil), priv[seedSize:]...), priv, nil
}

// portableSign signs msg with priv into sig. It reports false, where
// crypto/ed25519.Sign panics, when priv is not 64 bytes. Unlike
// crypto/ed25519.Sign it does not recompute the public half of priv to
// check it (that doubles the cost of a signature, in wasm 0.5 ms, and
// crypto/ed25519 avoids it with a cache): priv must come from
// portableKeyFromSeed or crypto/ed25519, as the Signer's does.
func portableSign(sig *[signatureSize]byte, priv, msg []byte) bool {
	if len(priv) != privateKeySize {
		return false
	}
	s, prefix := expandSeed(priv[:seedSize])
	pub := priv[seedSize:]
	buf := make([]byte, 0, 64+len(msg))
	mh := sha512.Sum512(append(append(buf, prefix...), msg...))
	r, _ := edwards25519.NewScalar().SetUniformBytes(mh[:]) // 64 bytes: no error
	R := new(edwards25519.Point).ScalarBaseMult(r).Bytes()
	kh := sha512.Sum512(append(append(append(buf[:0], R...), pub...), msg...))
	k, _ := edwards25519.NewScalar().SetUniformBytes(kh[:])
	S := edwards25519.NewScalar().MultiplyAdd(k, s, r)
	copy(sig[:32], R)
	copy(sig[32:], S.Bytes())
	return true
}

// portableVerify reports whether sig is pub's signature of msg, with the
// checks of crypto/ed25519.Verify: a canonical S, any encoding of a valid
// point for the key, and the cofactorless equation [S]B = R + [k]A.
func portableVerify(pub, msg, sig []byte) bool {
	if len(pub) != publicKeySize || len(sig) != signatureSize || sig[63]&224 != 0 {
		return false
	}
	A, err := new(edwards25519.Point).SetBytes(pub)
	if err != nil {
		return false
	}
	buf := make([]byte, 0, 64+len(msg))
	kh := sha512.Sum512(append(append(append(buf, sig[:32]...), pub...), msg...))
	k, _ := edwards25519.NewScalar().SetUniformBytes(kh[:])
	S, err := edwards25519.NewScalar().SetCanonicalBytes(sig[32:])
	if err != nil {
		return false
	}
	minusA := new(edwards25519.Point).Negate(A)
	R := new(edwards25519.Point).VarTimeDoubleScalarBaseMult(k, minusA, S)
	return subtle.ConstantTimeCompare(sig[:32], R.Bytes()) == 1
}
