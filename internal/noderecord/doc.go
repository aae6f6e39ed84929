// Package noderecord is the signed record a node publishes about itself:
// its addresses and the SHA-256 hashes of its current and next WebTransport
// certificates, signed by the node's ed25519 key (docs/protocol.md §4).
//
// Usage:
//
//	signed, err := noderecord.Sign(rec, priv)   // node side
//	s, err := noderecord.Parse(jsonBytes)       // client side
//	err = s.Verify(time.Now())
//	hashes := s.Record.ValidCertHashes(time.Now())
//
// The signature covers SigningBytes(rec): the domain-separation prefix
// SignaturePrefix followed by the JSON encoding of the Record (Go's
// encoding/json output for the struct, which is deterministic: fields in
// declaration order, times in RFC 3339 with nanoseconds in UTC, byte slices in
// standard base64). Verification re-encodes the decoded Record, so fields a
// verifier does not know are not covered and a record carrying them fails to
// verify.
//
// Verify returns errors wrapping ErrSignature, ErrNodeID, ErrPublicKey,
// ErrExpired, ErrNotYetValid, ErrCertHash or ErrTooManyCertHashes; Parse
// returns ErrMalformed or ErrTooLarge.
//
// Stdlib only, so the js/wasm worker can use it.
package noderecord
