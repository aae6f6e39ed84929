package archtest

import (
	"errors"
	"strconv"
)

// errWasm is returned for a binary that is not a well-formed wasm module
// as far as this parser reads it.
var errWasm = errors.New("archtest: malformed wasm")

// wasmFuncNames returns the function names of a wasm binary's "name"
// custom section (subsection 1, the function name map), in the order the
// binary lists them, or nil if it has none (a build with -s -w).
//
// The format (WebAssembly core spec, binary format, and its appendix on
// the name section): the magic "\0asm" and a 4-byte version, then sections
// of an id byte and a LEB128 u32 size; a custom section (id 0) begins with
// its name, a LEB128 length and the bytes; the "name" section holds
// subsections of an id byte and a size; subsection 1 is a vector (LEB128
// count) of (LEB128 function index, name).
func wasmFuncNames(b []byte) ([]string, error) {
	if len(b) < 8 || string(b[:4]) != "\x00asm" {
		return nil, errWasm
	}
	d := decoder{b: b[8:]}
	for len(d.b) > 0 {
		id := d.byte()
		sec := decoder{b: d.bytes(int(d.u32()))}
		if d.err != nil {
			return nil, d.err
		}
		if id != 0 {
			continue
		}
		if name := sec.name(); sec.err != nil {
			return nil, sec.err
		} else if name != "name" {
			continue
		}
		for len(sec.b) > 0 {
			sub := sec.byte()
			body := decoder{b: sec.bytes(int(sec.u32()))}
			if sec.err != nil {
				return nil, sec.err
			}
			if sub != 1 {
				continue
			}
			n := body.u32()
			var names []string
			for i := uint32(0); i < n && body.err == nil; i++ {
				body.u32() // function index
				names = append(names, body.name())
			}
			if body.err != nil {
				return nil, body.err
			}
			return names, nil
		}
		if sec.err != nil {
			return nil, sec.err
		}
	}
	return nil, nil
}

// decoder reads the wasm encodings; the first error sticks and makes every
// later read return zero values.
type decoder struct {
	b   []byte
	err error
}

func (d *decoder) fail(what string) {
	if d.err == nil {
		d.err = &wasmError{what: what}
	}
	d.b = nil
}

func (d *decoder) byte() byte {
	if len(d.b) == 0 {
		d.fail("unexpected end")
		return 0
	}
	c := d.b[0]
	d.b = d.b[1:]
	return c
}

// u32 reads an unsigned LEB128 of at most 5 bytes that fits 32 bits.
func (d *decoder) u32() uint32 {
	var v uint64
	for i := 0; i < 5; i++ {
		c := d.byte()
		if d.err != nil {
			return 0
		}
		v |= uint64(c&0x7f) << (7 * i)
		if c&0x80 == 0 {
			if v > 1<<32-1 {
				d.fail("LEB128 beyond 32 bits")
				return 0
			}
			return uint32(v)
		}
	}
	d.fail("LEB128 longer than 5 bytes")
	return 0
}

func (d *decoder) bytes(n int) []byte {
	if d.err != nil {
		return nil
	}
	if n < 0 || n > len(d.b) {
		d.fail("size " + strconv.Itoa(n) + " beyond the end")
		return nil
	}
	p := d.b[:n]
	d.b = d.b[n:]
	return p
}

func (d *decoder) name() string { return string(d.bytes(int(d.u32()))) }

type wasmError struct{ what string }

func (e *wasmError) Error() string { return errWasm.Error() + ": " + e.what }
func (e *wasmError) Unwrap() error { return errWasm }
