//go:build !wasm

package blake3

import "encoding/binary"

// blockWords decodes the first 64 bytes of b into m as little-endian words.
func blockWords(b []byte, m *[16]uint32) *[16]uint32 {
	for i := range m {
		m[i] = binary.LittleEndian.Uint32(b[4*i:])
	}
	return m
}
