package simd

// A tiny WebAssembly binary encoder: just the sections, types and
// instructions the module needs (https://webassembly.github.io/spec/core/binary/,
// SIMD opcodes from https://github.com/WebAssembly/simd/blob/main/proposals/simd/BinarySIMD.md).

const (
	tI32  = 0x7f
	tV128 = 0x7b

	opLoop     = 0x03
	opEnd      = 0x0b
	opBrIf     = 0x0d
	opCall     = 0x10
	opLocalGet = 0x20
	opLocalSet = 0x21
	opLocalTee = 0x22
	opI32Const = 0x41
	opI32Eq    = 0x46
	opI32Ne    = 0x47
	opI32Add   = 0x6a
	opI32Sub   = 0x6b
	opI32Or    = 0x72
	opSelect   = 0x1b

	opSIMD = 0xfd
	// SIMD sub-opcodes (LEB128 after opSIMD).
	simdLoad      = 0x00
	simdStore     = 0x0b
	simdConst     = 0x0c
	simdShuffle   = 0x0d
	simdI32Splat  = 0x11
	simdOr        = 0x50
	simdXor       = 0x51
	simdI32Shl    = 0xab
	simdI32ShrU   = 0xad
	simdI32Add    = 0xae
	blockTypeVoid = 0x40
)

// uleb appends x as unsigned LEB128.
func uleb(b []byte, x uint64) []byte {
	for {
		c := byte(x & 0x7f)
		x >>= 7
		if x == 0 {
			return append(b, c)
		}
		b = append(b, c|0x80)
	}
}

// sleb appends x as signed LEB128.
func sleb(b []byte, x int64) []byte {
	for {
		c := byte(x & 0x7f)
		x >>= 7
		if (x == 0 && c&0x40 == 0) || (x == -1 && c&0x40 != 0) {
			return append(b, c)
		}
		b = append(b, c|0x80)
	}
}

// name appends a length-prefixed UTF-8 name.
func name(b []byte, s string) []byte { return append(uleb(b, uint64(len(s))), s...) }

// section appends a section of id with its size-prefixed contents.
func section(b []byte, id byte, contents []byte) []byte {
	b = append(b, id)
	b = uleb(b, uint64(len(contents)))
	return append(b, contents...)
}

// code is one function body's instructions being written.
type code struct{ b []byte }

func (c *code) op(o byte)      { c.b = append(c.b, o) }
func (c *code) get(l int)      { c.b = uleb(append(c.b, opLocalGet), uint64(l)) }
func (c *code) set(l int)      { c.b = uleb(append(c.b, opLocalSet), uint64(l)) }
func (c *code) tee(l int)      { c.b = uleb(append(c.b, opLocalTee), uint64(l)) }
func (c *code) i32(x int32)    { c.b = sleb(append(c.b, opI32Const), int64(x)) }
func (c *code) call(f int)     { c.b = uleb(append(c.b, opCall), uint64(f)) }
func (c *code) brIf(depth int) { c.b = uleb(append(c.b, opBrIf), uint64(depth)) }
func (c *code) loop()          { c.b = append(c.b, opLoop, blockTypeVoid) }
func (c *code) end()           { c.op(opEnd) }

func (c *code) simd(sub uint64) { c.b = uleb(append(c.b, opSIMD), sub) }

// load and store: v128 at the address on the stack plus offset (align 16
// bytes is only a hint; 0 says nothing is assumed).
func (c *code) load(offset uint32) {
	c.simd(simdLoad)
	c.b = uleb(uleb(c.b, 0), uint64(offset))
}

func (c *code) store(offset uint32) {
	c.simd(simdStore)
	c.b = uleb(uleb(c.b, 0), uint64(offset))
}

// constI32x4 pushes a v128 of four i32 lanes.
func (c *code) constI32x4(x [4]uint32) {
	c.simd(simdConst)
	for _, w := range x {
		c.b = append(c.b, byte(w), byte(w>>8), byte(w>>16), byte(w>>24))
	}
}

// shuffle pops two v128 and pushes the bytes lanes names (0-15 of the
// first, 16-31 of the second).
func (c *code) shuffle(lanes [16]byte) {
	c.simd(simdShuffle)
	c.b = append(c.b, lanes[:]...)
}

// shuffle32 is shuffle by i32 lanes (0-3 of the first, 4-7 of the second).
func (c *code) shuffle32(a, b, d, e byte) {
	var l [16]byte
	for i, w := range [4]byte{a, b, d, e} {
		for j := range byte(4) {
			l[4*i+int(j)] = 4*w + j
		}
	}
	c.shuffle(l)
}

// function is one function of the module.
type function struct {
	params, results []byte
	locals          []byte // types of the locals after the parameters
	body            []byte
	export          string // "" for none
	name            string // in the name section
}

// module returns the binary of a module importing its memory as
// (importModule, importName) and holding funcs (indices in order).
func module(importModule, importName string, funcs []function) []byte {
	b := []byte{0x00, 'a', 's', 'm', 1, 0, 0, 0}
	// Types: one per function, in order.
	var s []byte
	s = uleb(s, uint64(len(funcs)))
	for _, f := range funcs {
		s = append(s, 0x60)
		s = append(uleb(s, uint64(len(f.params))), f.params...)
		s = append(uleb(s, uint64(len(f.results))), f.results...)
	}
	b = section(b, 1, s)
	// Imports: the memory, at least 0 pages, no maximum.
	s = uleb(nil, 1)
	s = name(s, importModule)
	s = name(s, importName)
	s = append(s, 0x02, 0x00)
	s = uleb(s, 0)
	b = section(b, 2, s)
	// Functions: function i has type i.
	s = uleb(nil, uint64(len(funcs)))
	for i := range funcs {
		s = uleb(s, uint64(i))
	}
	b = section(b, 3, s)
	// Exports.
	var ex []byte
	n := 0
	for i, f := range funcs {
		if f.export != "" {
			ex = append(name(ex, f.export), 0x00)
			ex = uleb(ex, uint64(i))
			n++
		}
	}
	b = section(b, 7, append(uleb(nil, uint64(n)), ex...))
	// Code.
	s = uleb(nil, uint64(len(funcs)))
	for _, f := range funcs {
		var body []byte
		// Locals, run-length encoded by type.
		var runs [][2]uint64
		for _, t := range f.locals {
			if len(runs) > 0 && runs[len(runs)-1][1] == uint64(t) {
				runs[len(runs)-1][0]++
				continue
			}
			runs = append(runs, [2]uint64{1, uint64(t)})
		}
		body = uleb(body, uint64(len(runs)))
		for _, r := range runs {
			body = append(uleb(body, r[0]), byte(r[1]))
		}
		body = append(body, f.body...)
		body = append(body, opEnd)
		s = uleb(s, uint64(len(body)))
		s = append(s, body...)
	}
	b = section(b, 10, s)
	// A name section, so profilers name the functions.
	var names []byte
	names = uleb(names, uint64(len(funcs)))
	for i, f := range funcs {
		names = name(uleb(names, uint64(i)), f.name)
	}
	s = name(nil, "name")
	s = append(s, 1) // function names
	s = uleb(s, uint64(len(names)))
	s = append(s, names...)
	return section(b, 0, s)
}
