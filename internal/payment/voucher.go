package payment

import (
	"encoding/binary"
	"time"
)

// Wire versions and domain-separation prefixes of the signed messages.
const (
	// VoucherVersion is the voucher encoding's version. Version 1 (no
	// nodes, no per-node cap) is refused with ErrOldVoucher.
	VoucherVersion = 2
	// ReceiptVersion is the receipt encoding's version.
	ReceiptVersion = 1
	VoucherDomain  = "verity-voucher/2"
	ReceiptDomain  = "verity-receipt/1"
	MaxAccountLen  = 64
	// MaxSiteLen bounds a voucher's site name (one DNS label).
	MaxSiteLen = 63
	// MaxRootLen bounds a voucher's content root (a CID's text form).
	MaxRootLen = 96
	// MaxVoucherNodes bounds the nodes a voucher names.
	MaxVoucherNodes = 16
	// MinVoucherBytes is the shortest encoded voucher: a one-byte
	// account, no site nor root, one node.
	MinVoucherBytes = voucherFixed + 1 + NodeTagSize
	// MaxVoucherBytes bounds an encoded voucher.
	MaxVoucherBytes = voucherFixed + MaxAccountLen + MaxSiteLen + MaxRootLen + MaxVoucherNodes*NodeTagSize
	// ReceiptBytes is the exact size of an encoded receipt.
	ReceiptBytes = receiptBody + signatureSize
	// BlockSize is the unit of verification and payment: 256 KiB.
	BlockSize = 256 << 10
)

// version(1) keyID(8) accountLen(1) account siteLen(1) site rootLen(1)
// root session(32) budget(8) nodeCap(8) expires(8) nonce(16) nodeCount(1)
// nodes(8 each) signature(64)
const voucherFixed = 1 + 8 + 1 + 1 + 1 + 32 + 8 + 8 + 8 + 16 + 1 + signatureSize

// NodeTagSize is the size of a NodeTag.
const NodeTagSize = 8

// NodeTag is how a voucher names a node: the first 8 bytes of its public
// key. Making a node key with a given tag takes about 2^64 key
// generations, so a tag names one node as well as its key does.
type NodeTag [NodeTagSize]byte

// TagOf returns the tag of a node key.
func TagOf(k NodeKey) NodeTag {
	var t NodeTag
	copy(t[:], k[:NodeTagSize])
	return t
}

// VoucherID identifies a voucher: the SHA-256 of its signed message
// (VoucherDomain and the encoding without the signature). Receipts name it.
type VoucherID [32]byte

// String returns the id in lower-case hex.
// (Written out rather than with encoding/hex, which would link package fmt
// into the worker's wasm.)
func (id VoucherID) String() string {
	const digits = "0123456789abcdef"
	b := make([]byte, 2*len(id))
	for i, c := range id {
		b[2*i], b[2*i+1] = digits[c>>4], digits[c&15]
	}
	return string(b)
}

// Voucher is a gateway's promise that Account pays for up to Budget verified
// bytes delivered in the session whose receipts Session signs, until
// Expires, to the nodes it names (Nodes), each of them for at most NodeCap
// bytes.
type Voucher struct {
	Version uint8 // VoucherVersion
	KeyID   KeyID // the signing gateway key
	Account string
	Site    string // the site the session is for, so spend is attributed to it; may be empty
	Root    string // the content root (CID) the session is for; may be empty
	Session SessionKey
	Budget  uint64 // bytes, across all nodes of the session
	// NodeCap is the most any one node may be paid under the voucher,
	// in bytes, at most Budget.
	NodeCap   uint64
	Expires   time.Time // whole seconds; receipts need an unexpired voucher
	Nonce     [16]byte  // random; makes every voucher distinct
	Nodes     []NodeTag // the nodes the gateway chose for the session: 1 to MaxVoucherNodes
	Signature [signatureSize]byte
}

// Names reports whether v names node among its nodes.
func (v *Voucher) Names(node NodeKey) bool {
	t := TagOf(node)
	for _, n := range v.Nodes {
		if n == t {
			return true
		}
	}
	return false
}

// Cap returns the most a receipt under v may claim for one node:
// min(NodeCap, Budget).
func (v *Voucher) Cap() uint64 { return min(v.NodeCap, v.Budget) }

// validAccount reports whether s is 1..MaxAccountLen bytes of [a-z0-9._-].
func validAccount(s string) bool {
	if len(s) == 0 || len(s) > MaxAccountLen {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '.' || c == '_' || c == '-') {
			return false
		}
	}
	return true
}

// validSite reports whether s is empty or 1..MaxSiteLen bytes of
// [a-z0-9-] (a site name is one DNS label; the gateway checks the rest).
func validSite(s string) bool {
	if len(s) > MaxSiteLen {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-') {
			return false
		}
	}
	return true
}

// validRoot reports whether s is empty or 1..MaxRootLen bytes of
// [A-Za-z0-9] (a CID's text form).
func validRoot(s string) bool {
	if len(s) > MaxRootLen {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9') {
			return false
		}
	}
	return true
}

// ValidRoot reports whether s fits a voucher's Root: at most MaxRootLen
// bytes of [A-Za-z0-9].
func ValidRoot(s string) bool { return validRoot(s) }

// ValidAccount reports whether s is a usable account name: 1 to 64 bytes
// of [a-z0-9._-].
func ValidAccount(s string) bool { return validAccount(s) }

func (v *Voucher) check() error {
	switch {
	case v.Version == 1:
		return errorf("voucher", "version", ErrOldVoucher)
	case v.Version != VoucherVersion:
		return errorf("voucher", "version", ErrMalformed)
	case !validAccount(v.Account):
		return errorf("voucher", "account", ErrMalformed)
	case !validSite(v.Site):
		return errorf("voucher", "site", ErrMalformed)
	case !validRoot(v.Root):
		return errorf("voucher", "root", ErrMalformed)
	case v.Budget == 0:
		return errorf("voucher", "budget", ErrMalformed)
	case v.NodeCap == 0 || v.NodeCap > v.Budget:
		return errorf("voucher", "nodeCap", ErrMalformed)
	case len(v.Nodes) == 0 || len(v.Nodes) > MaxVoucherNodes:
		return errorf("voucher", "nodes", ErrMalformed)
	case v.Expires.Unix() <= 0:
		return errorf("voucher", "expires", ErrMalformed)
	}
	return nil
}

// appendBody appends the encoding without the signature.
func (v *Voucher) appendBody(b []byte) []byte {
	b = append(b, v.Version)
	b = append(b, v.KeyID[:]...)
	b = append(b, byte(len(v.Account)))
	b = append(b, v.Account...)
	b = append(b, byte(len(v.Site)))
	b = append(b, v.Site...)
	b = append(b, byte(len(v.Root)))
	b = append(b, v.Root...)
	b = append(b, v.Session[:]...)
	b = binary.BigEndian.AppendUint64(b, v.Budget)
	b = binary.BigEndian.AppendUint64(b, v.NodeCap)
	b = binary.BigEndian.AppendUint64(b, uint64(v.Expires.Unix()))
	b = append(b, v.Nonce[:]...)
	b = append(b, byte(len(v.Nodes)))
	for _, n := range v.Nodes {
		b = append(b, n[:]...)
	}
	return b
}

// signingBytes returns VoucherDomain followed by the body.
func (v *Voucher) signingBytes() []byte {
	var buf [len(VoucherDomain) + MaxVoucherBytes]byte
	return v.appendBody(append(buf[:0], VoucherDomain...))
}

// ID returns the voucher's id.
func (v *Voucher) ID() VoucherID { return sum256(v.signingBytes()) }

// Sign fills in Version (when zero) and KeyID from priv and signs v.
func (v *Voucher) Sign(priv PrivateKey) error {
	if len(priv) != privateKeySize {
		return errorf("voucher", "key", ErrMalformed)
	}
	if v.Version == 0 {
		v.Version = VoucherVersion
	}
	v.KeyID = KeyIDOf(PublicKey(priv[seedSize:]))
	if err := v.check(); err != nil {
		return err
	}
	if !sign(&v.Signature, priv, v.signingBytes()) {
		return errorf("voucher", "key", ErrMalformed)
	}
	return nil
}

// AppendBinary appends the canonical encoding of v to b.
func (v *Voucher) AppendBinary(b []byte) ([]byte, error) {
	if err := v.check(); err != nil {
		return b, err
	}
	b = v.appendBody(b)
	return append(b, v.Signature[:]...), nil
}

// MarshalBinary returns the canonical encoding of v.
func (v *Voucher) MarshalBinary() ([]byte, error) {
	return v.AppendBinary(make([]byte, 0, voucherFixed+len(v.Account)+len(v.Site)+len(v.Root)+len(v.Nodes)*NodeTagSize))
}

// UnmarshalBinary decodes a canonical voucher encoding of at most
// MaxVoucherBytes. It checks the form, not the signature: call Verify. A
// voucher of version 1 is refused with ErrOldVoucher.
func (v *Voucher) UnmarshalBinary(b []byte) error {
	if len(b) > 0 && b[0] == 1 {
		return errorf("voucher", "version", ErrOldVoucher)
	}
	if len(b) < MinVoucherBytes || len(b) > MaxVoucherBytes {
		return errorf("voucher", "length", ErrMalformed)
	}
	if b[0] != VoucherVersion {
		return errorf("voucher", "version", ErrMalformed)
	}
	var out Voucher
	out.Version = b[0]
	copy(out.KeyID[:], b[1:9])
	p := 9
	// Three length-prefixed strings: account, site, root. voucherFixed
	// counts their length bytes, so each read stays within b.
	var strs [3]string
	fixed := voucherFixed
	for i := range strs {
		n := int(b[p])
		fixed += n
		if len(b) < fixed+NodeTagSize {
			return errorf("voucher", "length", ErrMalformed)
		}
		strs[i] = string(b[p+1 : p+1+n])
		p += 1 + n
	}
	out.Account, out.Site, out.Root = strs[0], strs[1], strs[2]
	copy(out.Session[:], b[p:p+32])
	p += 32
	out.Budget = binary.BigEndian.Uint64(b[p:])
	p += 8
	out.NodeCap = binary.BigEndian.Uint64(b[p:])
	p += 8
	exp := binary.BigEndian.Uint64(b[p:])
	p += 8
	if exp == 0 || exp > 1<<40 { // beyond year 36812: not a real expiry
		return errorf("voucher", "expires", ErrMalformed)
	}
	out.Expires = time.Unix(int64(exp), 0).UTC()
	copy(out.Nonce[:], b[p:p+16])
	p += 16
	k := int(b[p])
	p++
	if k == 0 || k > MaxVoucherNodes || len(b) != fixed+k*NodeTagSize {
		return errorf("voucher", "length", ErrMalformed)
	}
	out.Nodes = make([]NodeTag, k)
	for i := range out.Nodes {
		copy(out.Nodes[i][:], b[p:])
		p += NodeTagSize
	}
	copy(out.Signature[:], b[p:])
	if err := out.check(); err != nil {
		return err
	}
	*v = out
	return nil
}

// ParseVoucher decodes a voucher; see UnmarshalBinary.
func ParseVoucher(b []byte) (Voucher, error) {
	var v Voucher
	err := v.UnmarshalBinary(b)
	return v, err
}

// VerifySignature checks that v is signed by the gateway key it names.
func (v *Voucher) VerifySignature(keys GatewayKeys) error {
	if err := v.check(); err != nil {
		return err
	}
	pub, ok := keys.GatewayKey(v.KeyID)
	if !ok || len(pub) != publicKeySize {
		return errorf("voucher", "keyID", ErrUnknownGateway)
	}
	if !verify(pub, v.signingBytes(), v.Signature[:]) {
		return errorf("voucher", "signature", ErrBadSignature)
	}
	return nil
}

// Verify checks v's signature and that it has not expired at now.
func (v *Voucher) Verify(keys GatewayKeys, now time.Time) error {
	if err := v.VerifySignature(keys); err != nil {
		return err
	}
	if !now.Before(v.Expires) {
		return errorf("voucher", "expires", ErrExpired)
	}
	return nil
}
