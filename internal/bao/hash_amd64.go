package bao

import (
	"encoding/binary"

	"lukechampine.com/blake3/guts"
)

// Natively (amd64, i.e. on nodes) a chunk group is hashed with the SIMD
// code of lukechampine.com/blake3/guts, which takes exactly one group's 16
// chunks at a time: about six times faster than the portable
// internal/blake3 the worker's wasm uses (hash_other.go). Tests check both
// agree.

// A group is exactly one guts buffer.
var _ [GroupSize - guts.MaxSIMD*guts.ChunkSize]struct{}
var _ [guts.MaxSIMD*guts.ChunkSize - GroupSize]struct{}

// groupCV returns the chaining value of the chunk group g (at most
// GroupSize bytes) whose first chunk is chunk number counter of the block,
// or the block's hash when root (g is then the whole block).
func groupCV(g []byte, counter uint64, root bool) [32]byte {
	var n guts.Node
	if len(g) == GroupSize {
		n = guts.CompressBuffer((*[GroupSize]byte)(g), GroupSize, &guts.IV, counter, 0)
	} else {
		var buf [GroupSize]byte
		copy(buf[:], g)
		n = guts.CompressBuffer(&buf, len(g), &guts.IV, counter, 0)
	}
	if root {
		n.Flags |= guts.FlagRoot
	}
	return cvBytes(guts.ChainingValue(n))
}

// parentCV returns the chaining value of the parent of left and right, or
// the block's hash when root.
func parentCV(left, right *[32]byte, root bool) [32]byte {
	var flags uint32
	if root {
		flags = guts.FlagRoot
	}
	return cvBytes(guts.ChainingValue(guts.ParentNode(cvWords(left), cvWords(right), &guts.IV, flags)))
}

func cvWords(b *[32]byte) (w [8]uint32) {
	for i := range w {
		w[i] = binary.LittleEndian.Uint32(b[4*i:])
	}
	return w
}

func cvBytes(w [8]uint32) (b [32]byte) {
	for i, x := range w {
		binary.LittleEndian.PutUint32(b[4*i:], x)
	}
	return b
}
