// Package noderecord is the signed record a node publishes about itself:
// its addresses and the SHA-256 hashes of its current and next WebTransport
// certificates, signed by the node's ed25519 key. Stdlib only (js/wasm safe).
package noderecord

import "time"

// CertHash is the SHA-256 of a WebTransport certificate (DER) and its validity.
type CertHash struct {
	SHA256    []byte    `json:"sha256"` // 32 bytes, base64 in JSON
	NotBefore time.Time `json:"notBefore"`
	NotAfter  time.Time `json:"notAfter"`
}

// Record is what a node says about itself.
type Record struct {
	NodeID       string     `json:"id"`           // "n" + base32(lower, no padding) of the ed25519 public key
	PublicKey    []byte     `json:"publicKey"`    // ed25519, 32 bytes
	HTTP         string     `json:"http"`         // base URL of the trustless gateway, e.g. http://127.0.0.1:4001
	WebTransport string     `json:"webtransport"` // e.g. https://127.0.0.1:4433/verity/v1
	CertHashes   []CertHash `json:"certHashes"`   // current first, then next
	Issued       time.Time  `json:"issued"`
	Expires      time.Time  `json:"expires"`
}

// Signed is a Record with the node's signature over its canonical JSON.
type Signed struct {
	Record    Record `json:"record"`
	Signature []byte `json:"signature"`
}

// TODO(node): Sign(rec, priv) (Signed, error); (Signed).Verify(now time.Time) error; NodeIDFromKey(pub) string.
