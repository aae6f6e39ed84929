package blake3

import "unsafe"

// blockWords returns the first 64 bytes of b as 16 little-endian words. On
// wasm (little-endian, unaligned loads allowed) it reads them in place: the
// Go compiler does not merge byte loads into word loads there, and the copy
// would cost about 15% of the hashing time.
func blockWords(b []byte, _ *[16]uint32) *[16]uint32 {
	_ = b[63]
	return (*[16]uint32)(unsafe.Pointer(&b[0]))
}
