package cid

import (
	"bytes"
	"strings"

	"github.com/verity-cdn/verity/internal/base32"
	"github.com/verity-cdn/verity/internal/errfmt"
)

// Multicodec and multihash codes this package knows.
const (
	CodecRaw     = 0x55
	CodecDagPB   = 0x70
	CodecDagCBOR = 0x71
	HashSHA256   = 0x12
	HashBLAKE3   = 0x1e
	HashIdentity = 0x00
)

// Limits applied when parsing.
const (
	// MaxDigestLen is the largest multihash digest accepted.
	MaxDigestLen = 128
	// MaxStringLen is the longest CID text accepted by Parse.
	MaxStringLen = 512
	maxVarintLen = 9 // 63 bits, as the unsigned-varint spec allows
)

// CID is a parsed content identifier. The zero value is the undefined CID.
type CID struct {
	Version  uint64
	Codec    uint64
	HashCode uint64
	Digest   []byte
}

// NewV1 returns a CIDv1 for codec over the given multihash parts.
func NewV1(codec, hashCode uint64, digest []byte) CID {
	return CID{Version: 1, Codec: codec, HashCode: hashCode, Digest: bytes.Clone(digest)}
}

// Sum returns the CIDv1 with the given codec and a full-length (32-byte)
// BLAKE3 or sha2-256 digest, or the identity multihash, of data.
func Sum(codec, hashCode uint64, data []byte) (CID, error) {
	var d []byte
	switch hashCode {
	case HashBLAKE3:
		s := blake3Sum256(data)
		d = s[:]
	case HashSHA256:
		s := sha256Sum(data)
		d = s[:]
	case HashIdentity:
		if len(data) > MaxDigestLen {
			return CID{}, invalid("identity digest of %d bytes exceeds %d", len(data), MaxDigestLen)
		}
		d = bytes.Clone(data)
	default:
		return CID{}, &UnknownHashError{Code: hashCode}
	}
	return CID{Version: 1, Codec: codec, HashCode: hashCode, Digest: d}, nil
}

// Defined reports whether c is not the zero CID.
func (c CID) Defined() bool { return c.Version != 0 || c.Codec != 0 || c.Digest != nil }

// Parse parses the text form of a CID: base32 lower-case ('b') multibase for
// v1, base58btc "Qm..." for v0.
func Parse(s string) (CID, error) {
	if len(s) == 0 {
		return CID{}, invalid("empty string")
	}
	if len(s) > MaxStringLen {
		return CID{}, invalid("string of %d bytes too long", len(s))
	}
	if len(s) == 46 && strings.HasPrefix(s, "Qm") {
		raw, err := decodeBase58(s)
		if err != nil {
			return CID{}, err
		}
		c, n, err := Decode(raw)
		if err != nil {
			return CID{}, err
		}
		if n != len(raw) || c.Version != 0 {
			return CID{}, invalid("trailing bytes in CIDv0")
		}
		return c, nil
	}
	if s[0] != 'b' {
		return CID{}, errfmt.Errorf("%w: multibase prefix %q", ErrUnsupported, s[0])
	}
	raw, err := base32.Decode(s[1:])
	if err != nil {
		return CID{}, invalid("base32: %v", err)
	}
	if len(raw) > 0 && raw[0] == 0x12 {
		return CID{}, invalid("CIDv0 bytes inside a multibase string")
	}
	c, n, err := Decode(raw)
	if err != nil {
		return CID{}, err
	}
	if n != len(raw) {
		return CID{}, invalid("%d trailing bytes", len(raw)-n)
	}
	return c, nil
}

// Decode decodes a binary CID at the start of b and returns it with the
// number of bytes it used. A CIDv0 is a bare sha2-256 multihash (0x12 0x20).
func Decode(b []byte) (CID, int, error) {
	if len(b) >= 2 && b[0] == HashSHA256 && b[1] == 32 {
		if len(b) < 34 {
			return CID{}, 0, invalid("CIDv0 truncated")
		}
		return CID{Version: 0, Codec: CodecDagPB, HashCode: HashSHA256, Digest: bytes.Clone(b[2:34])}, 34, nil
	}
	ver, n, err := uvarint(b)
	if err != nil {
		return CID{}, 0, err
	}
	if ver != 1 {
		if ver == 0 {
			return CID{}, 0, invalid("explicit version 0")
		}
		return CID{}, 0, errfmt.Errorf("%w: CID version %d", ErrUnsupported, ver)
	}
	off := n
	codec, n, err := uvarint(b[off:])
	if err != nil {
		return CID{}, 0, err
	}
	off += n
	hc, n, err := uvarint(b[off:])
	if err != nil {
		return CID{}, 0, err
	}
	off += n
	dl, n, err := uvarint(b[off:])
	if err != nil {
		return CID{}, 0, err
	}
	off += n
	if dl > MaxDigestLen {
		return CID{}, 0, invalid("digest length %d exceeds %d", dl, MaxDigestLen)
	}
	if uint64(len(b)-off) < dl {
		return CID{}, 0, invalid("digest truncated")
	}
	d := bytes.Clone(b[off : off+int(dl)])
	if d == nil {
		d = []byte{}
	}
	return CID{Version: 1, Codec: codec, HashCode: hc, Digest: d}, off + int(dl), nil
}

// Bytes returns the binary form of c.
func (c CID) Bytes() []byte {
	if c.Version == 0 {
		out := make([]byte, 0, 2+len(c.Digest))
		out = append(out, HashSHA256, byte(len(c.Digest)))
		return append(out, c.Digest...)
	}
	out := make([]byte, 0, 4*maxVarintLen+len(c.Digest))
	out = AppendUvarint(out, c.Version)
	out = AppendUvarint(out, c.Codec)
	out = AppendUvarint(out, c.HashCode)
	out = AppendUvarint(out, uint64(len(c.Digest)))
	return append(out, c.Digest...)
}

// String returns the text form: 'b' + base32 lower-case without padding for
// v1, base58btc for v0, and "" for the zero CID.
func (c CID) String() string {
	if !c.Defined() {
		return ""
	}
	if c.Version == 0 {
		return encodeBase58(c.Bytes())
	}
	return "b" + base32.Encode(c.Bytes())
}

// Key returns the binary form as a string, usable as a map key.
func (c CID) Key() string { return string(c.Bytes()) }

// Equal reports whether c and o are the same CID.
func (c CID) Equal(o CID) bool {
	return c.Version == o.Version && c.Codec == o.Codec && c.HashCode == o.HashCode && bytes.Equal(c.Digest, o.Digest)
}

// Verify checks data against c's multihash. It returns nil on a match, an
// error matching ErrHashMismatch on a mismatch, and *UnknownHashError for a
// hash function it does not implement.
func (c CID) Verify(data []byte) error {
	var ok bool
	switch c.HashCode {
	case HashBLAKE3:
		if len(c.Digest) == 0 || len(c.Digest) > MaxDigestLen {
			return invalid("BLAKE3 digest length %d", len(c.Digest))
		}
		if len(c.Digest) == 32 {
			s := blake3Sum256(data)
			ok = bytes.Equal(s[:], c.Digest)
		} else {
			d := make([]byte, len(c.Digest))
			blake3Sum(d, data)
			ok = bytes.Equal(d, c.Digest)
		}
	case HashSHA256:
		if len(c.Digest) != 32 {
			return invalid("sha2-256 digest length %d", len(c.Digest))
		}
		s := sha256Sum(data)
		ok = bytes.Equal(s[:], c.Digest)
	case HashIdentity:
		ok = bytes.Equal(data, c.Digest)
	default:
		return &UnknownHashError{Code: c.HashCode}
	}
	if !ok {
		return errfmt.Errorf("%w: %s", ErrHashMismatch, c)
	}
	return nil
}

// uvarint decodes a minimal unsigned varint of at most 9 bytes.
func uvarint(b []byte) (uint64, int, error) {
	var x uint64
	var s uint
	for i := 0; i < len(b); i++ {
		if i == maxVarintLen {
			return 0, 0, invalid("varint too long")
		}
		v := b[i]
		if v < 0x80 {
			if v == 0 && i > 0 {
				return 0, 0, invalid("non-minimal varint")
			}
			return x | uint64(v)<<s, i + 1, nil
		}
		x |= uint64(v&0x7f) << s
		s += 7
	}
	return 0, 0, invalid("varint truncated")
}

// AppendUvarint appends the unsigned varint encoding of x to b.
func AppendUvarint(b []byte, x uint64) []byte {
	for x >= 0x80 {
		b = append(b, byte(x)|0x80)
		x >>= 7
	}
	return append(b, byte(x))
}
