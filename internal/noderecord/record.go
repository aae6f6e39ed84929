package noderecord

import (
	"bytes"
	"crypto/ed25519"
	"encoding/json"
	"strconv"
	"time"

	"github.com/verity-cdn/verity/internal/base32"
)

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
	// WebRTC: the node answers WebRTC offers relayed by its coordinator
	// (docs/protocol.md §3, §6). Omitted when false, so records of nodes
	// without WebRTC sign the same bytes as before.
	WebRTC bool `json:"webrtc,omitempty"`
}

// Signed is a Record with the node's signature over its canonical JSON.
type Signed struct {
	Record    Record `json:"record"`
	Signature []byte `json:"signature"`
}

const (
	// SignaturePrefix separates record signatures from anything else the
	// node key signs.
	SignaturePrefix = "verity-node-record/1\n"
	// MaxCertHashes is the most certificate hashes a record may carry.
	MaxCertHashes = 4
	// MaxRecordBytes bounds the JSON that Parse accepts.
	MaxRecordBytes = 16 << 10
)

// NodeIDFromKey returns the node id for an ed25519 public key: "n" followed
// by the lower-case, unpadded base32 (RFC 4648) of the key.
func NodeIDFromKey(pub ed25519.PublicKey) string {
	return "n" + base32.Encode(pub)
}

// SigningBytes returns the bytes a signature covers: SignaturePrefix and the
// JSON of rec.
func SigningBytes(rec Record) ([]byte, error) {
	js, err := json.Marshal(rec)
	if err != nil {
		return nil, err
	}
	return append([]byte(SignaturePrefix), js...), nil
}

// Sign signs rec with priv. It fills in PublicKey and NodeID from priv when
// they are empty and rejects them when they belong to another key. Times are
// converted to UTC so the encoding does not depend on the signer's zone.
func Sign(rec Record, priv ed25519.PrivateKey) (Signed, error) {
	if len(priv) != ed25519.PrivateKeySize {
		return Signed{}, &RecordError{Field: "privateKey", Err: ErrPublicKey}
	}
	pub := priv.Public().(ed25519.PublicKey)
	if len(rec.PublicKey) == 0 {
		rec.PublicKey = append([]byte(nil), pub...)
	} else if !bytes.Equal(rec.PublicKey, pub) {
		return Signed{}, &RecordError{Field: "publicKey", Err: ErrPublicKey}
	}
	if rec.NodeID == "" {
		rec.NodeID = NodeIDFromKey(pub)
	} else if rec.NodeID != NodeIDFromKey(pub) {
		return Signed{}, &RecordError{Field: "id", Err: ErrNodeID}
	}
	rec.Issued = rec.Issued.UTC()
	rec.Expires = rec.Expires.UTC()
	hs := make([]CertHash, len(rec.CertHashes))
	for i, h := range rec.CertHashes {
		hs[i] = CertHash{SHA256: append([]byte(nil), h.SHA256...), NotBefore: h.NotBefore.UTC(), NotAfter: h.NotAfter.UTC()}
	}
	if rec.CertHashes != nil {
		rec.CertHashes = hs
	}
	if err := rec.check(); err != nil {
		return Signed{}, err
	}
	msg, err := SigningBytes(rec)
	if err != nil {
		return Signed{}, &RecordError{Field: "record", Err: ErrMalformed}
	}
	return Signed{Record: rec, Signature: ed25519.Sign(priv, msg)}, nil
}

// Verify checks the signature, that NodeID matches the key, that the record
// has not expired at now, and the certificate hashes (at most MaxCertHashes,
// 32 bytes each, NotBefore before NotAfter).
func (s Signed) Verify(now time.Time) error {
	rec := s.Record
	if err := rec.check(); err != nil {
		return err
	}
	msg, err := SigningBytes(rec)
	if err != nil {
		return &RecordError{Field: "record", Err: ErrMalformed}
	}
	if len(s.Signature) != ed25519.SignatureSize || !ed25519.Verify(ed25519.PublicKey(rec.PublicKey), msg, s.Signature) {
		return &RecordError{Field: "signature", Err: ErrSignature}
	}
	return rec.checkTime(now)
}

// checkTime checks that the record is valid at now.
func (r Record) checkTime(now time.Time) error {
	if !now.Before(r.Expires) {
		return &RecordError{Field: "expires", Err: ErrExpired}
	}
	if now.Add(MaxClockSkew).Before(r.Issued) {
		return &RecordError{Field: "issued", Err: ErrNotYetValid}
	}
	return nil
}

// MaxClockSkew is how far in the future a record's Issued time may be
// relative to the verifier's clock.
const MaxClockSkew = 5 * time.Minute

// check validates the record's fields independently of the signature.
func (r Record) check() error {
	if len(r.PublicKey) != ed25519.PublicKeySize {
		return &RecordError{Field: "publicKey", Err: ErrPublicKey}
	}
	if r.NodeID != NodeIDFromKey(r.PublicKey) {
		return &RecordError{Field: "id", Err: ErrNodeID}
	}
	if !r.Issued.Before(r.Expires) {
		return &RecordError{Field: "expires", Err: ErrMalformed}
	}
	if len(r.CertHashes) > MaxCertHashes {
		return &RecordError{Field: "certHashes", Err: ErrTooManyCertHashes}
	}
	for i, h := range r.CertHashes {
		if len(h.SHA256) != 32 || !h.NotBefore.Before(h.NotAfter) {
			return &RecordError{Field: "certHashes[" + strconv.Itoa(i) + "]", Err: ErrCertHash}
		}
	}
	return nil
}

// ValidCertHashes returns the SHA-256 hashes of the certificates valid at
// now, in record order (current first): the list a browser passes as
// serverCertificateHashes.
func (r Record) ValidCertHashes(now time.Time) [][]byte {
	var out [][]byte
	for _, h := range r.CertHashes {
		if !now.Before(h.NotBefore) && now.Before(h.NotAfter) {
			out = append(out, h.SHA256)
		}
	}
	return out
}

// Parse decodes a Signed record from JSON (at most MaxRecordBytes). It does
// not verify it: call Verify.
func Parse(data []byte) (Signed, error) {
	if len(data) > MaxRecordBytes {
		return Signed{}, &RecordError{Field: "record", Err: ErrTooLarge}
	}
	var s Signed
	if err := json.Unmarshal(data, &s); err != nil {
		return Signed{}, &RecordError{Field: "record", Err: ErrMalformed}
	}
	return s, nil
}

// Marshal encodes s as JSON, the form nodes serve and Parse reads.
func (s Signed) Marshal() ([]byte, error) { return json.Marshal(s) }
