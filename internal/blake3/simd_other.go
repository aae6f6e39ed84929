//go:build !js

package blake3

// Outside the browser there is no SIMD module: every chunk is hashed here.

func groupSIMDAvailable(uint64) bool { return false }

func groupSIMD([]byte, uint64) (left, right [8]uint32) { panic("blake3: no SIMD module") }
