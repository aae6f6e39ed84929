// Package blake3 is a small, portable BLAKE3 (https://github.com/BLAKE3-team/BLAKE3-specs)
// for one-shot hashing of whole inputs, with output of any length.
//
// It exists for the worker's wasm build: github.com/zeebo/blake3, used
// natively for its SIMD code, links github.com/klauspost/cpuid (and with it
// flag and fmt) on every platform, which costs the wasm about 45 KB gzipped,
// and its portable code is no faster under wasm than this one. Package cid
// picks one or the other by build tag; tests check both agree.
//
//	sum := blake3.Sum256(data)
//	blake3.Sum(out, data) // len(out) bytes of extended output
//
// For verified streaming (package bao) it also exposes the inner nodes of
// the hash tree: the chaining value of a subtree of chunks, and the parent
// of two chaining values, the last one computed with the ROOT flag.
//
//	cv := blake3.ChainingValue(group, firstChunk) // a subtree's node
//	sum := blake3.Parent(&left, &right, true)    // = Sum256 of the whole input
//
// In the service worker, whole 16 KiB groups of chunks are hashed by the
// WebAssembly SIMD module of package internal/blake3/simd when the worker
// script has installed it (globalThis.__verityBlake3Group, simd_js.go):
// about 4.7 times faster than Go's wasm under V8. Everything else, and
// everything where it is not installed, is hashed in Go; the results are
// the same (tested under Node with the module installed, make test-wasm).
package blake3

// ChunkLen is the length of a BLAKE3 chunk, the leaf of the hash tree.
const ChunkLen = chunkLen

const (
	chunkLen = 1024
	blockLen = 64
	// A group is what the SIMD module hashes in one call: 16 chunks, the
	// bao encoding's unit of verification.
	groupChunks = 16
	groupLen    = groupChunks * chunkLen

	flagChunkStart = 1 << 0
	flagChunkEnd   = 1 << 1
	flagParent     = 1 << 2
	flagRoot       = 1 << 3

	iv0, iv1, iv2, iv3 uint32 = 0x6A09E667, 0xBB67AE85, 0x3C6EF372, 0xA54FF53A
	iv4, iv5, iv6, iv7 uint32 = 0x510E527F, 0x9B05688C, 0x1F83D9AB, 0x5BE0CD19
)

var iv = [8]uint32{iv0, iv1, iv2, iv3, iv4, iv5, iv6, iv7}

// Sum256 returns the 32-byte BLAKE3 hash of data.
func Sum256(data []byte) [32]byte {
	var out [32]byte
	Sum(out[:], data)
	return out
}

// Sum fills out with the BLAKE3 extended output of data: its first 32
// bytes are the hash; a shorter out is a prefix of it.
func Sum(out, data []byte) {
	o := root(data)
	for i := uint64(0); len(out) > 0; i++ {
		w := compress(&o.cv, &o.block, i, o.blockLen, o.flags|flagRoot)
		var b [64]byte
		for j, x := range w {
			b[4*j], b[4*j+1], b[4*j+2], b[4*j+3] = byte(x), byte(x>>8), byte(x>>16), byte(x>>24)
		}
		out = out[copy(out, b[:]):]
	}
}

// output is a compression not yet done: the root one, or a chaining value.
type output struct {
	cv       [8]uint32
	block    [16]uint32
	counter  uint64
	blockLen uint32
	flags    uint32
}

func (o *output) chainingValue() [8]uint32 {
	w := compress(&o.cv, &o.block, o.counter, o.blockLen, o.flags)
	return [8]uint32(w[:8])
}

//go:generate go run gen.go

// ChainingValue returns the chaining value of the subtree of the hash tree
// that holds data, whose first chunk is chunk number counter of the whole
// input (its byte offset divided by ChunkLen). data must be such a subtree:
// a power-of-two number of whole chunks starting at a multiple of that
// number, or the input's last chunks (which may end with a partial chunk).
// The subtree's root is not finalized as the root of the whole input; when
// data is the whole input, Sum256 is its hash instead.
func ChainingValue(data []byte, counter uint64) [32]byte {
	o := subtree(data, counter)
	return wordsToBytes(o.chainingValue())
}

// Parent returns the chaining value of the parent node of two subtrees'
// chaining values or, with root, the input's hash (the parent at the top
// of the tree, finalized with the ROOT flag): then it equals Sum256 of the
// whole input.
func Parent(left, right *[32]byte, root bool) [32]byte {
	o := output{cv: iv, blockLen: blockLen, flags: flagParent}
	for i := range 8 {
		o.block[i] = le32(left[4*i:])
		o.block[8+i] = le32(right[4*i:])
	}
	if root {
		o.flags |= flagRoot
	}
	return wordsToBytes(o.chainingValue())
}

func le32(b []byte) uint32 {
	return uint32(b[0]) | uint32(b[1])<<8 | uint32(b[2])<<16 | uint32(b[3])<<24
}

func wordsToBytes(w [8]uint32) [32]byte {
	var b [32]byte
	for i, x := range w {
		b[4*i], b[4*i+1], b[4*i+2], b[4*i+3] = byte(x), byte(x>>8), byte(x>>16), byte(x>>24)
	}
	return b
}

// root returns the root output of data: the chunks' chaining values merged
// into the tree the specification defines (a stack of subtree roots).
func root(data []byte) output { return subtree(data, 0) }

// subtree returns the output of the subtree holding data, whose first chunk
// is chunk number counter of the input. Where the worker's WebAssembly
// SIMD module is available (simd_js.go), each whole group of groupChunks
// chunks at a multiple of groupChunks is hashed there at once.
func subtree(data []byte, counter uint64) output {
	var stack [54][8]uint32 // 2^54 chunks are more than any slice holds
	n := 0
	simd := groupSIMDAvailable(counter)
	for chunk := uint64(0); ; {
		// The next unit of the tree: a whole group by the SIMD module, or
		// one chunk (the last one possibly short).
		var o output
		width := uint64(1)
		switch {
		case simd && chunk%groupChunks == 0 && len(data) >= groupLen:
			left, right := groupSIMD(data[:groupLen], counter+chunk)
			o = parentOutput(&left, right)
			data, width = data[groupLen:], groupChunks
		case len(data) <= chunkLen:
			o = chunkOutput(data, counter+chunk)
			data = nil
		default:
			o = chunkOutput(data[:chunkLen], counter+chunk)
			data = data[chunkLen:]
		}
		chunk += width
		if len(data) == 0 {
			for n > 0 {
				n--
				o = parentOutput(&stack[n], o.chainingValue())
			}
			return o
		}
		cv := o.chainingValue()
		// Merge every subtree this unit completes: a group starts at a
		// multiple of its width, so the units so far count them.
		for total := chunk / width; total&1 == 0; total >>= 1 {
			n--
			p := parentOutput(&stack[n], cv)
			cv = p.chainingValue()
		}
		stack[n] = cv
		n++
	}
}

// chunkOutput compresses all but the last block of one chunk (at most
// chunkLen bytes) and returns the last block's compression.
func chunkOutput(data []byte, counter uint64) output {
	cv := iv
	flags := uint32(flagChunkStart)
	var m [16]uint32
	for len(data) > blockLen {
		w := compress(&cv, blockWords(data, &m), counter, blockLen, flags)
		cv = [8]uint32(w[:8])
		flags = 0
		data = data[blockLen:]
	}
	var last [blockLen]byte
	copy(last[:], data)
	for i := range m {
		m[i] = uint32(last[4*i]) | uint32(last[4*i+1])<<8 | uint32(last[4*i+2])<<16 | uint32(last[4*i+3])<<24
	}
	return output{cv: cv, block: m, counter: counter, blockLen: uint32(len(data)), flags: flags | flagChunkEnd}
}

func parentOutput(left *[8]uint32, right [8]uint32) output {
	o := output{cv: iv, blockLen: blockLen, flags: flagParent}
	copy(o.block[:8], left[:])
	copy(o.block[8:], right[:])
	return o
}
