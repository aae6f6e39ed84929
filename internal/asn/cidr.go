package asn

import (
	"encoding/binary"
	"math/bits"
	"net/netip"
)

// u128 is an address as a 128-bit unsigned integer.
type u128 struct{ hi, lo uint64 }

func toU128(a netip.Addr) u128 {
	if a.Is4() {
		b := a.As4()
		return u128{lo: uint64(binary.BigEndian.Uint32(b[:]))}
	}
	b := a.As16()
	return u128{hi: binary.BigEndian.Uint64(b[:8]), lo: binary.BigEndian.Uint64(b[8:])}
}

func fromU128(v u128, is4 bool) netip.Addr {
	if is4 {
		var b [4]byte
		binary.BigEndian.PutUint32(b[:], uint32(v.lo))
		return netip.AddrFrom4(b)
	}
	var b [16]byte
	binary.BigEndian.PutUint64(b[:8], v.hi)
	binary.BigEndian.PutUint64(b[8:], v.lo)
	return netip.AddrFrom16(b)
}

func (v u128) less(w u128) bool { return v.hi < w.hi || v.hi == w.hi && v.lo < w.lo }

func (v u128) sub(w u128) u128 {
	lo, borrow := bits.Sub64(v.lo, w.lo, 0)
	hi, _ := bits.Sub64(v.hi, w.hi, borrow)
	return u128{hi, lo}
}

// addPow2 returns v + 2^k and whether it overflowed 128 bits.
func (v u128) addPow2(k int) (u128, bool) {
	if k >= 128 {
		return u128{}, true
	}
	var w u128
	if k >= 64 {
		w.hi = 1 << (k - 64)
	} else {
		w.lo = 1 << k
	}
	lo, carry := bits.Add64(v.lo, w.lo, 0)
	hi, carry := bits.Add64(v.hi, w.hi, carry)
	return u128{hi, lo}, carry != 0
}

func (v u128) trailingZeros() int {
	if v.lo != 0 {
		return bits.TrailingZeros64(v.lo)
	}
	if v.hi != 0 {
		return 64 + bits.TrailingZeros64(v.hi)
	}
	return 128
}

// log2 returns floor(log2(v)) for v > 0.
func (v u128) log2() int {
	if v.hi != 0 {
		return 127 - bits.LeadingZeros64(v.hi)
	}
	return 63 - bits.LeadingZeros64(v.lo)
}

// RangeToPrefixes returns the fewest CIDR prefixes that exactly cover the
// inclusive range [start, end], in address order. Both ends must be of the
// same family (IPv4-mapped IPv6 addresses count as IPv4) with start ≤ end.
func RangeToPrefixes(start, end netip.Addr) ([]netip.Prefix, error) {
	start, end = start.Unmap(), end.Unmap()
	if !start.IsValid() || !end.IsValid() || start.Is4() != end.Is4() || end.Less(start) {
		return nil, ErrRange
	}
	is4 := start.Is4()
	width := start.BitLen()
	cur, last := toU128(start), toU128(end)
	var out []netip.Prefix
	for {
		k := min(cur.trailingZeros(), width)
		// span = last - cur + 1 may be 2^128 (the whole IPv6 space).
		span := last.sub(cur)
		if spanPlus, over := span.addPow2(0); !over {
			k = min(k, spanPlus.log2())
		}
		out = append(out, netip.PrefixFrom(fromU128(cur, is4), width-k))
		next, over := cur.addPow2(k)
		if over || (is4 && next.lo > 0xffffffff) || last.less(next) {
			return out, nil
		}
		cur = next
	}
}
