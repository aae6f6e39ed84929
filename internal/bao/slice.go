package bao

import "slices"

// A slice of a block is the part of its combined encoding that proves the
// bytes [off, off+length) and nothing else (Bao's slice encoding): the
// length prefix, then, in pre-order, each parent whose subtree overlaps
// the window and each chunk group that does. A subtree outside the window
// is left out; its chaining value is in its parent. A range that starts
// 192 KiB into a 256 KiB block is proved by 64 KiB of groups and five
// parents instead of the whole encoding. The window is widened to whole
// groups: the first group it touches to the last.

// Window returns the byte window a slice of an n-byte block for
// [off, off+length) covers, widened to whole groups and cut at n:
// [lo, hi). ok is false when the window is empty (length 0, or off at or
// past n): a slice proves at least one byte.
func Window(n, off, length uint64) (lo, hi uint64, ok bool) {
	if length == 0 || off >= n {
		return 0, 0, false
	}
	end := n
	if length < n-off {
		end = off + length
	}
	lo = off / GroupSize * GroupSize
	hi = min(n, (end+GroupSize-1)/GroupSize*GroupSize)
	return lo, hi, true
}

// overlaps reports whether the subtree [pos, pos+n) overlaps [lo, hi).
func overlaps(pos, n, lo, hi uint64) bool { return pos < hi && lo < pos+n }

// SliceSize returns the length of the slice of an n-byte block for
// [off, off+length), length prefix included; ok is false when Window is
// empty.
func SliceSize(n, off, length uint64) (uint64, bool) {
	lo, hi, ok := Window(n, off, length)
	if !ok {
		return 0, false
	}
	return HeaderSize + sliceSize(0, n, lo, hi), true
}

func sliceSize(pos, n, lo, hi uint64) uint64 {
	if n <= GroupSize {
		return n
	}
	mid := split(n)
	size := uint64(ParentSize)
	if overlaps(pos, mid, lo, hi) {
		size += sliceSize(pos, mid, lo, hi)
	}
	if overlaps(pos+mid, n-mid, lo, hi) {
		size += sliceSize(pos+mid, n-mid, lo, hi)
	}
	return size
}

// AppendSlice appends the slice of data for [off, off+length) to dst,
// its parents taken from ob, the outboard encoding AppendOutboard gave for
// these same bytes (nothing is hashed, as AppendCombined). It returns
// ErrMalformed when ob is not an outboard encoding of len(data) bytes or
// the window is empty.
func AppendSlice(dst, data, ob []byte, off, length uint64) ([]byte, error) {
	n := uint64(len(data))
	if uint64(len(ob)) != OutboardSize(n) || header(ob) != n {
		return dst, &Error{Err: ErrMalformed, At: "length prefix"}
	}
	lo, hi, ok := Window(n, off, length)
	if !ok {
		return dst, &Error{Err: ErrMalformed, At: "slice window", Off: off}
	}
	dst = slices.Grow(dst, int(HeaderSize+sliceSize(0, n, lo, hi)))
	dst = append(dst, ob[:HeaderSize]...)
	return appendSlice(dst, data, ob[HeaderSize:], 0, lo, hi), nil
}

// appendSlice appends the slice of the subtree data at pos, whose parents
// in pre-order are parents, for [lo, hi), which it overlaps. For the
// window [0, len(data)) that is the combined encoding (AppendCombined).
func appendSlice(dst, data, parents []byte, pos, lo, hi uint64) []byte {
	n := uint64(len(data))
	if n <= GroupSize {
		return append(dst, data...)
	}
	mid := split(n)
	lsize := ParentSize * (Groups(mid) - 1)
	dst = append(dst, parents[:ParentSize]...)
	if overlaps(pos, mid, lo, hi) {
		dst = appendSlice(dst, data[:mid], parents[ParentSize:ParentSize+lsize], pos, lo, hi)
	}
	if overlaps(pos+mid, n-mid, lo, hi) {
		dst = appendSlice(dst, data[mid:], parents[ParentSize+lsize:], pos+mid, lo, hi)
	}
	return dst
}
