// Package base32 is RFC 4648 base32 in lower case without padding: the
// text of CIDs (multibase 'b'), node ids and session keys. Decode accepts
// only the one form Encode writes (no upper case, no padding, the unused
// bits of the last character zero), so that two strings never name the
// same bytes. It is encoding/base32 with that alphabet in a few lines:
// the package cost the worker's wasm about 3 KB gzipped.
package base32

import "strconv"

const alphabet = "abcdefghijklmnopqrstuvwxyz234567"

// EncodedLen is the length of the encoding of n bytes.
func EncodedLen(n int) int { return (n*8 + 4) / 5 }

// Encode returns the lower-case, unpadded base32 of b.
func Encode(b []byte) string {
	out := make([]byte, 0, EncodedLen(len(b)))
	var acc uint32
	bits := 0
	for _, c := range b {
		acc = acc<<8 | uint32(c)
		bits += 8
		for bits >= 5 {
			bits -= 5
			out = append(out, alphabet[acc>>bits&31])
		}
	}
	if bits > 0 {
		out = append(out, alphabet[acc<<(5-bits)&31])
	}
	return string(out)
}

// CorruptInputError is the offset of the first character of a string
// that is not the encoding of any bytes: a character outside the
// alphabet, the end of a string of a length no encoding has, or a last
// character whose unused bits are not zero.
type CorruptInputError int64

func (e CorruptInputError) Error() string {
	return "illegal base32 data at input byte " + strconv.FormatInt(int64(e), 10)
}

// Decode returns the bytes s encodes, s as Encode writes it.
func Decode(s string) ([]byte, error) {
	switch len(s) % 8 {
	case 1, 3, 6: // 5, 15 or 30 bits: no whole byte's worth left over
		return nil, CorruptInputError(len(s))
	}
	out := make([]byte, 0, len(s)*5/8)
	var acc uint32
	bits := 0
	for i := 0; i < len(s); i++ {
		c := s[i]
		var v uint32
		switch {
		case c >= 'a' && c <= 'z':
			v = uint32(c - 'a')
		case c >= '2' && c <= '7':
			v = uint32(c-'2') + 26
		default:
			return nil, CorruptInputError(i)
		}
		acc = acc<<5 | v
		bits += 5
		if bits >= 8 {
			bits -= 8
			out = append(out, byte(acc>>bits))
		}
	}
	if acc&(1<<bits-1) != 0 {
		return nil, CorruptInputError(len(s) - 1)
	}
	return out, nil
}
