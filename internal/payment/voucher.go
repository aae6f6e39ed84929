package payment

import (
	"encoding/binary"
	"encoding/hex"
	"time"
)

// Wire versions and domain-separation prefixes of the signed messages.
const (
	Version       = 1
	VoucherDomain = "verity-voucher/1"
	ReceiptDomain = "verity-receipt/1"
	MaxAccountLen = 64
	// MaxSiteLen bounds a voucher's site name (one DNS label).
	MaxSiteLen      = 63
	MinVoucherBytes = voucherFixed + 1
	// MaxVoucherBytes bounds an encoded voucher.
	MaxVoucherBytes = voucherFixed + MaxAccountLen + MaxSiteLen
	// ReceiptBytes is the exact size of an encoded receipt.
	ReceiptBytes = receiptBody + signatureSize
	// BlockSize is the unit of verification and payment: 256 KiB.
	BlockSize = 256 << 10
)

// version(1) keyID(8) accountLen(1) account siteLen(1) site session(32)
// budget(8) expires(8) nonce(16) signature(64)
const voucherFixed = 1 + 8 + 1 + 1 + 32 + 8 + 8 + 16 + signatureSize

// VoucherID identifies a voucher: the SHA-256 of its signed message
// (VoucherDomain and the encoding without the signature). Receipts name it.
type VoucherID [32]byte

// String returns the id in lower-case hex.
func (id VoucherID) String() string { return hex.EncodeToString(id[:]) }

// Voucher is a gateway's promise that Account pays for up to Budget verified
// bytes delivered in the session whose receipts Session signs, until Expires.
type Voucher struct {
	Version   uint8 // Version
	KeyID     KeyID // the signing gateway key
	Account   string
	Site      string // the site the session is for, so spend is attributed to it; may be empty
	Session   SessionKey
	Budget    uint64    // bytes, across all nodes of the session
	Expires   time.Time // whole seconds; receipts need an unexpired voucher
	Nonce     [16]byte  // random; makes every voucher distinct
	Signature [signatureSize]byte
}

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

// ValidAccount reports whether s is a usable account name: 1 to 64 bytes
// of [a-z0-9._-].
func ValidAccount(s string) bool { return validAccount(s) }

func (v *Voucher) check() error {
	switch {
	case v.Version != Version:
		return errorf("voucher", "version", ErrMalformed)
	case !validAccount(v.Account):
		return errorf("voucher", "account", ErrMalformed)
	case !validSite(v.Site):
		return errorf("voucher", "site", ErrMalformed)
	case v.Budget == 0:
		return errorf("voucher", "budget", ErrMalformed)
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
	b = append(b, v.Session[:]...)
	b = binary.BigEndian.AppendUint64(b, v.Budget)
	b = binary.BigEndian.AppendUint64(b, uint64(v.Expires.Unix()))
	return append(b, v.Nonce[:]...)
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
		v.Version = Version
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
	return v.AppendBinary(make([]byte, 0, voucherFixed+len(v.Account)+len(v.Site)))
}

// UnmarshalBinary decodes a canonical voucher encoding of at most
// MaxVoucherBytes. It checks the form, not the signature: call Verify.
func (v *Voucher) UnmarshalBinary(b []byte) error {
	if len(b) < MinVoucherBytes || len(b) > MaxVoucherBytes {
		return errorf("voucher", "length", ErrMalformed)
	}
	if b[0] != Version {
		return errorf("voucher", "version", ErrMalformed)
	}
	n := int(b[9])
	if len(b) < voucherFixed+n {
		return errorf("voucher", "length", ErrMalformed)
	}
	m := int(b[10+n])
	if len(b) != voucherFixed+n+m {
		return errorf("voucher", "length", ErrMalformed)
	}
	var out Voucher
	out.Version = b[0]
	copy(out.KeyID[:], b[1:9])
	p := 10
	out.Account = string(b[p : p+n])
	p += n + 1
	out.Site = string(b[p : p+m])
	p += m
	copy(out.Session[:], b[p:p+32])
	p += 32
	out.Budget = binary.BigEndian.Uint64(b[p:])
	p += 8
	exp := binary.BigEndian.Uint64(b[p:])
	p += 8
	if exp == 0 || exp > 1<<40 { // beyond year 36812: not a real expiry
		return errorf("voucher", "expires", ErrMalformed)
	}
	out.Expires = time.Unix(int64(exp), 0).UTC()
	copy(out.Nonce[:], b[p:p+16])
	p += 16
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
