//go:build js && wasm

package bao_test

import (
	"bytes"
	"errors"
	"os"
	"testing"

	lbao "lukechampine.com/blake3/bao"

	"github.com/verity-cdn/verity/internal/bao"
	"github.com/verity-cdn/verity/internal/blake3"
)

// TestSIMDGroupChecks: in the worker's build with the BLAKE3 SIMD module
// installed (make test-wasm, see internal/blake3/simd/testdata/preload.js),
// the decoder checks whole groups with the module: lukechampine's encoding
// of a full block decodes, and a flipped byte in any whole group of it is
// rejected at that group, with nothing of it released.
func TestSIMDGroupChecks(t *testing.T) {
	if os.Getenv("VERITY_BLAKE3_SIMD_WASM") == "" {
		t.Skip("no SIMD module: run with VERITY_BLAKE3_SIMD_WASM and the preload of internal/blake3/simd/testdata (make test-wasm)")
	}
	d := data(256 << 10)
	for i := range d {
		d[i] ^= byte(i >> 10)
	}
	enc, root := lbao.EncodeBuf(d, bao.GroupLog, false)
	before := blake3.SIMDGroups()
	got, err := decodeAll(t, enc, root, uint64(len(d)), d)
	if err != nil || got != len(d) {
		t.Fatalf("lukechampine's encoding: %d bytes, %v", got, err)
	}
	if n := blake3.SIMDGroups() - before; n != 16 {
		t.Fatalf("the SIMD module hashed %d groups of a 16-group block, want 16", n)
	}
	for g := range 16 {
		off := g * bao.GroupSize
		at := offsetInEncoding(len(d), off+g*977)
		bad := bytes.Clone(enc)
		bad[at] ^= 0x10
		got, err := decodeAll(t, bad, root, uint64(len(d)), d)
		if !errors.Is(err, bao.ErrHashMismatch) || got != off {
			t.Fatalf("flipped byte in group %d: released %d bytes (want %d), err %v", g, got, off, err)
		}
	}
}

// offsetInEncoding returns where byte pos of an n-byte block lies in its
// encoding (pre-order: a parent, its left subtree, its right one).
func offsetInEncoding(n, pos int) int {
	at, off := bao.HeaderSize, 0
	for n > bao.GroupSize {
		at += bao.ParentSize
		mid := 1
		for mid*2 < n {
			mid *= 2
		}
		if pos-off < mid {
			n = mid
			continue
		}
		at += int(bao.EncodedSize(uint64(mid))) - bao.HeaderSize
		off, n = off+mid, n-mid
	}
	return at + pos - off
}
