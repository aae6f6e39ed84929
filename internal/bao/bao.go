package bao

import (
	"io"
	"math/bits"
	"slices"

	"github.com/verity-cdn/verity/internal/blake3"
)

const (
	// GroupChunks is the number of BLAKE3 chunks in a chunk group.
	GroupChunks = 16
	// GroupSize is the length of a chunk group, the unit of verification.
	GroupSize = GroupChunks * blake3.ChunkLen
	// GroupLog is log2(GroupChunks): lukechampine.com/blake3/bao's group
	// parameter for this encoding.
	GroupLog = 4
	// HeaderSize is the length of the encoding's length prefix.
	HeaderSize = 8
	// ParentSize is the length of a parent node: two chaining values.
	ParentSize = 64
)

// Groups returns the number of chunk groups of an n-byte block: at least
// one (an empty block is one empty group).
func Groups(n uint64) uint64 {
	if n == 0 {
		return 1
	}
	return (n-1)/GroupSize + 1
}

// EncodedSize returns the length of the combined encoding of an n-byte
// block, header included: n + 8 + 64 × (Groups(n) - 1).
func EncodedSize(n uint64) uint64 { return HeaderSize + treeSize(n) }

// treeSize is the length of the encoding of a subtree of n bytes.
func treeSize(n uint64) uint64 { return n + ParentSize*(Groups(n)-1) }

// split returns the length of the left subtree of a node of n bytes
// (n > GroupSize): the largest power of two below n, a whole number of
// chunks (and of groups) as BLAKE3 splits its tree.
func split(n uint64) uint64 { return 1 << (bits.Len64(n-1) - 1) }

// OutboardSize returns the length of the outboard encoding of an n-byte
// block: its length prefix and its 64 × (Groups(n) - 1) bytes of parents.
func OutboardSize(n uint64) uint64 { return HeaderSize + ParentSize*(Groups(n)-1) }

// Encode appends the combined encoding of data to dst and returns it with
// data's BLAKE3 hash. Every byte of the encoding is written once, into
// dst's spare capacity when it has room, without clearing it first.
func Encode(dst, data []byte) ([]byte, [32]byte) {
	n := uint64(len(data))
	start, size := len(dst), int(EncodedSize(n))
	dst = slices.Grow(dst, size)[:start+size]
	out := dst[start:]
	putHeader(out, n)
	root := encode(out[HeaderSize:], data, 0, true)
	return dst, root
}

// encode writes the encoding of the subtree data, whose first byte is at
// offset off of the block, into out (exactly treeSize long) and returns
// its chaining value (the block's hash when root).
func encode(out, data []byte, off uint64, root bool) [32]byte {
	n := uint64(len(data))
	if n <= GroupSize {
		copy(out, data)
		return groupCV(data, off/blake3.ChunkLen, root)
	}
	mid := split(n)
	lsize := treeSize(mid)
	l := encode(out[ParentSize:ParentSize+lsize], data[:mid], off, false)
	r := encode(out[ParentSize+lsize:], data[mid:], off+mid, false)
	copy(out, l[:])
	copy(out[32:], r[:])
	return parentCV(&l, &r, root)
}

// Sum returns data's BLAKE3 hash, computed as Encode computes it (chunk
// groups, then parents).
func Sum(data []byte) [32]byte { return outboard(nil, data, 0, true) }

// AppendOutboard appends the outboard encoding of data to dst and returns
// it with data's BLAKE3 hash: the combined encoding without the block's
// bytes (the length prefix, then the parents in the same pre-order), as
// the Bao spec defines it. AppendCombined makes the combined encoding of
// data from it without hashing again.
func AppendOutboard(dst, data []byte) ([]byte, [32]byte) {
	n := uint64(len(data))
	start, size := len(dst), int(OutboardSize(n))
	dst = slices.Grow(dst, size)[:start+size]
	out := dst[start:]
	putHeader(out, n)
	root := outboard(out[HeaderSize:], data, 0, true)
	return dst, root
}

// outboard writes the parents of the subtree data, whose first byte is at
// offset off of the block, into out (exactly their length; nil: nowhere)
// and returns its chaining value (the block's hash when root).
func outboard(out, data []byte, off uint64, root bool) [32]byte {
	n := uint64(len(data))
	if n <= GroupSize {
		return groupCV(data, off/blake3.ChunkLen, root)
	}
	mid := split(n)
	var lo, ro []byte
	if out != nil {
		lsize := ParentSize * (Groups(mid) - 1)
		lo, ro = out[ParentSize:ParentSize+lsize], out[ParentSize+lsize:]
	}
	l := outboard(lo, data[:mid], off, false)
	r := outboard(ro, data[mid:], off+mid, false)
	if out != nil {
		copy(out, l[:])
		copy(out[32:], r[:])
	}
	return parentCV(&l, &r, root)
}

// AppendCombined appends the combined encoding of data to dst, its parents
// taken from ob, the outboard encoding AppendOutboard gave for these same
// bytes: nothing is hashed, so an ob of other bytes of the same length
// gives an encoding no decoder accepts. It returns ErrMalformed when ob is
// not an outboard encoding of len(data) bytes.
func AppendCombined(dst, data, ob []byte) ([]byte, error) {
	n := uint64(len(data))
	if uint64(len(ob)) != OutboardSize(n) || header(ob) != n {
		return dst, &Error{Err: ErrMalformed, At: "length prefix"}
	}
	dst = slices.Grow(dst, int(EncodedSize(n)))
	dst = append(dst, ob[:HeaderSize]...)
	return appendSlice(dst, data, ob[HeaderSize:], 0, 0, n), nil
}

// putHeader writes n as the 8-byte little-endian length prefix.
func putHeader(b []byte, n uint64) {
	for i := range HeaderSize {
		b[i] = byte(n >> (8 * i))
	}
}

// header decodes the 8-byte little-endian length prefix.
func header(b []byte) uint64 {
	var n uint64
	for i := range HeaderSize {
		n |= uint64(b[i]) << (8 * i)
	}
	return n
}

// ReadHeader reads the encoding's 8-byte length prefix.
func ReadHeader(r io.Reader) (uint64, error) {
	var b [HeaderSize]byte
	if _, err := io.ReadFull(r, b[:]); err != nil {
		return 0, readErr(err, "length prefix", 0)
	}
	return header(b[:]), nil
}

// readErr maps a short read at what to ErrTruncated and wraps any other
// error.
func readErr(err error, what string, off uint64) error {
	if err == io.EOF || err == io.ErrUnexpectedEOF {
		err = ErrTruncated
	}
	return &Error{Err: err, At: what, Off: off}
}

// Decode checks the whole combined encoding enc (header included, nothing
// after it) against root and returns the block's bytes.
func Decode(enc []byte, root [32]byte) ([]byte, error) {
	if len(enc) < HeaderSize {
		return nil, &Error{Err: ErrTruncated, At: "length prefix"}
	}
	n := header(enc)
	if EncodedSize(n) != uint64(len(enc)) || n > uint64(len(enc)) {
		return nil, &Error{Err: ErrMalformed, At: "length prefix"}
	}
	out := make([]byte, 0, n)
	d := NewDecoder(&sliceReader{b: enc[HeaderSize:]}, root, n)
	for {
		_, g, err := d.Next()
		if err == io.EOF {
			return out, nil
		}
		if err != nil {
			return nil, err
		}
		out = append(out, g...)
	}
}

type sliceReader struct{ b []byte }

func (s *sliceReader) Read(p []byte) (int, error) {
	if len(s.b) == 0 {
		return 0, io.EOF
	}
	n := copy(p, s.b)
	s.b = s.b[n:]
	return n, nil
}
