package simd

// The module's one export:
//
//	group(in, out, counter i32)
//
// hashes the 16 whole chunks (16 KiB) of memory at in, the first of which
// is chunk number counter of its input (counter + 16 must not pass 2^32),
// and writes the chaining values of the group's two halves (8 chunks
// each), left then right, at out: the group's chaining value, or the
// input's hash, is their parent, which the caller computes (with the ROOT
// flag when the group is the whole input). out is 512 bytes of scratch
// space; the bytes after the first 64 are left undefined.
//
// Inside, hash4 runs four BLAKE3 compressions at once in the four i32
// lanes of v128 values: four chunks side by side (16 blocks each), then
// the parents of the tree four at a time.

// Local indices of hash4: its parameters, then its locals.
const (
	pIn = iota
	pStride
	pBlocks
	pCounter
	pInc
	pFlags
	pStart
	pEnd
	pOut
	lP0               // four input pointers, p0..p3
	lBlk   = lP0 + 4  // blocks left
	lFlags = lP0 + 5  // this block's flags
	lH     = lP0 + 6  // h0..h7: the chaining values
	lM     = lH + 8   // m0..m15: the message words
	lV     = lM + 16  // v0..v15: the state
	lT     = lV + 16  // eight temporaries
	lCtr   = lT + 8   // the four counters
	nI32   = lH - lP0 // i32 locals
	nV     = lCtr + 1 - lH
)

const (
	flagChunkStart = 1
	flagChunkEnd   = 2
	flagParent     = 4
)

var iv = [8]uint32{0x6A09E667, 0xBB67AE85, 0x3C6EF372, 0xA54FF53A, 0x510E527F, 0x9B05688C, 0x1F83D9AB, 0x5BE0CD19}

var perm = [16]int{2, 6, 3, 10, 7, 0, 4, 13, 1, 11, 12, 5, 9, 14, 15, 8}

func splat(x uint32) [4]uint32 { return [4]uint32{x, x, x, x} }

// Module returns the WebAssembly module's bytes. It imports the memory it
// works in as ("go", "mem"): the Go instance's.
func Module() []byte {
	return module("go", "mem", []function{hash4(), group()})
}

// transpose turns the four rows in locals r (each one lane's four words)
// into columns (each one word of the four lanes), into locals dst,
// using locals t as scratch.
func transpose(c *code, r [4]int, t [2]int, dst [4]int) {
	// t0 = r0.0 r1.0 r0.1 r1.1, t1 = r0.2 r1.2 r0.3 r1.3, and the same of
	// r2, r3 into dst2, dst3 (free until the end).
	c.get(r[0])
	c.get(r[1])
	c.shuffle32(0, 4, 1, 5)
	c.set(t[0])
	c.get(r[0])
	c.get(r[1])
	c.shuffle32(2, 6, 3, 7)
	c.set(t[1])
	c.get(r[2])
	c.get(r[3])
	c.shuffle32(0, 4, 1, 5)
	c.get(r[2])
	c.get(r[3])
	c.shuffle32(2, 6, 3, 7)
	c.set(dst[3]) // u1
	c.set(dst[2]) // u0
	// dst0 = t0.0 t0.1 u0.0 u0.1 ...
	c.get(t[0])
	c.get(dst[2])
	c.shuffle32(0, 1, 4, 5)
	c.set(dst[0])
	c.get(t[0])
	c.get(dst[2])
	c.shuffle32(2, 3, 6, 7)
	c.set(dst[1])
	c.get(t[1])
	c.get(dst[3])
	c.shuffle32(0, 1, 4, 5)
	c.get(t[1])
	c.get(dst[3])
	c.shuffle32(2, 3, 6, 7)
	c.set(dst[3])
	c.set(dst[2])
}

// rotr rotates every i32 lane of the v128 in local l (on the stack) right
// by n, storing it in l.
func rotr(c *code, l int, n int) {
	c.tee(l)
	switch n {
	case 16, 8:
		c.get(l)
		var s [16]byte
		for i := range byte(16) {
			s[i] = i&^3 | (i+byte(n/8))&3
		}
		c.shuffle(s)
	default:
		c.i32(int32(n))
		c.simd(simdI32ShrU)
		c.get(l)
		c.i32(int32(32 - n))
		c.simd(simdI32Shl)
		c.simd(simdOr)
	}
	c.set(l)
}

// g is the quarter round on state locals a, b, c, d with message words x, y.
func g(c *code, a, b, cc, d, x, y int) {
	for i, m := range [2]int{x, y} {
		c.get(a)
		c.get(b)
		c.simd(simdI32Add)
		c.get(m)
		c.simd(simdI32Add)
		c.set(a)
		c.get(d)
		c.get(a)
		c.simd(simdXor)
		rotr(c, d, [2]int{16, 8}[i])
		c.get(cc)
		c.get(d)
		c.simd(simdI32Add)
		c.set(cc)
		c.get(b)
		c.get(cc)
		c.simd(simdXor)
		rotr(c, b, [2]int{12, 7}[i])
	}
}

// hash4(in, stride, blocks, counter, inc, flags, start, end, out): four
// inputs at in + i×stride (i < 4), blocks 64-byte blocks each, compressed
// from the IV with counter + i×inc and flags (start added on the first
// block, end on the last); the four chaining values are written at
// out + 32×i, after every input is read.
func hash4() function {
	c := &code{}
	v := func(i int) int { return lV + i }
	// p0..p3
	c.get(pIn)
	c.set(lP0)
	for i := 1; i < 4; i++ {
		c.get(lP0 + i - 1)
		c.get(pStride)
		c.op(opI32Add)
		c.set(lP0 + i)
	}
	for i := range 8 {
		c.constI32x4(splat(iv[i]))
		c.set(lH + i)
	}
	// ctr = splat(counter) + [0 1 2 3]×inc
	c.get(pCounter)
	c.simd(simdI32Splat)
	c.constI32x4([4]uint32{0, 1, 2, 3})
	c.constI32x4(splat(0))
	c.get(pInc)
	c.op(opSelect)
	c.simd(simdI32Add)
	c.set(lCtr)
	c.get(pBlocks)
	c.set(lBlk)
	c.get(pFlags)
	c.get(pStart)
	c.op(opI32Or)
	c.set(lFlags)

	c.loop()
	// The last block adds end.
	c.get(lFlags)
	c.get(pEnd)
	c.i32(0)
	c.get(lBlk)
	c.i32(1)
	c.op(opI32Eq)
	c.op(opSelect)
	c.op(opI32Or)
	c.set(lFlags)
	// The message, transposed: m[4q+j] holds word 4q+j of each input.
	for q := range 4 {
		for i := range 4 {
			c.get(lP0 + i)
			c.load(uint32(16 * q))
			c.set(lT + 2 + i)
		}
		transpose(c, [4]int{lT + 2, lT + 3, lT + 4, lT + 5}, [2]int{lT, lT + 1},
			[4]int{lM + 4*q, lM + 4*q + 1, lM + 4*q + 2, lM + 4*q + 3})
	}
	for i := range 8 {
		c.get(lH + i)
		c.set(v(i))
	}
	for i := range 4 {
		c.constI32x4(splat(iv[i]))
		c.set(v(8 + i))
	}
	c.get(lCtr)
	c.set(v(12))
	c.constI32x4(splat(0))
	c.set(v(13))
	c.constI32x4(splat(64))
	c.set(v(14))
	c.get(lFlags)
	c.simd(simdI32Splat)
	c.set(v(15))

	s := [16]int{0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15}
	cols := [4][4]int{{0, 4, 8, 12}, {1, 5, 9, 13}, {2, 6, 10, 14}, {3, 7, 11, 15}}
	diags := [4][4]int{{0, 5, 10, 15}, {1, 6, 11, 12}, {2, 7, 8, 13}, {3, 4, 9, 14}}
	for range 7 {
		for i, q := range cols {
			g(c, v(q[0]), v(q[1]), v(q[2]), v(q[3]), lM+s[2*i], lM+s[2*i+1])
		}
		for i, q := range diags {
			g(c, v(q[0]), v(q[1]), v(q[2]), v(q[3]), lM+s[8+2*i], lM+s[8+2*i+1])
		}
		var next [16]int
		for i := range next {
			next[i] = s[perm[i]]
		}
		s = next
	}
	for i := range 8 {
		c.get(v(i))
		c.get(v(8 + i))
		c.simd(simdXor)
		c.set(lH + i)
	}
	for i := range 4 {
		c.get(lP0 + i)
		c.i32(64)
		c.op(opI32Add)
		c.set(lP0 + i)
	}
	c.get(pFlags)
	c.set(lFlags)
	c.get(lBlk)
	c.i32(1)
	c.op(opI32Sub)
	c.tee(lBlk)
	c.brIf(0)
	c.end()

	// Out: the words of each input's chaining value, back in a row.
	for half := range 2 {
		transpose(c, [4]int{lH + 4*half, lH + 4*half + 1, lH + 4*half + 2, lH + 4*half + 3},
			[2]int{lT, lT + 1}, [4]int{lT + 2, lT + 3, lT + 4, lT + 5})
		for i := range 4 {
			c.get(pOut)
			c.get(lT + 2 + i)
			c.store(uint32(32*i + 16*half))
		}
	}

	locals := make([]byte, 0, nI32+nV)
	for range nI32 {
		locals = append(locals, tI32)
	}
	for range nV {
		locals = append(locals, tV128)
	}
	params := make([]byte, 9)
	for i := range params {
		params[i] = tI32
	}
	return function{params: params, locals: locals, body: c.b, name: "blake3_hash4"}
}

// group(in, out, counter): see the top of this file.
func group() function {
	const in, out, counter = 0, 1, 2
	c := &code{}
	call := func(src func(), stride, blocks int32, ctr func(), inc, flags, start, end int32, dst func()) {
		src()
		c.i32(stride)
		c.i32(blocks)
		ctr()
		c.i32(inc)
		c.i32(flags)
		c.i32(start)
		c.i32(end)
		dst()
		c.call(0)
	}
	at := func(l int, off int32) func() {
		return func() {
			c.get(l)
			if off != 0 {
				c.i32(off)
				c.op(opI32Add)
			}
		}
	}
	zero := func() { c.i32(0) }
	// The 16 chunks, four at a time: 16 chaining values at out.
	for b := range int32(4) {
		call(at(in, 4096*b), 1024, 16, at(counter, 4*b), 1, 0, flagChunkStart, flagChunkEnd, at(out, 128*b))
	}
	// Their parents: 8, then 4, then 2 (the last call's lanes 2 and 3
	// read and write scratch).
	call(at(out, 0), 64, 1, zero, 0, flagParent, 0, 0, at(out, 0))
	call(at(out, 256), 64, 1, zero, 0, flagParent, 0, 0, at(out, 128))
	call(at(out, 0), 64, 1, zero, 0, flagParent, 0, 0, at(out, 0))
	call(at(out, 0), 64, 1, zero, 0, flagParent, 0, 0, at(out, 0))
	return function{params: []byte{tI32, tI32, tI32}, body: c.b, export: "group", name: "blake3_group"}
}
