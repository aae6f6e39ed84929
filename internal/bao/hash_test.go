package bao

import (
	"testing"

	"github.com/verity-cdn/verity/internal/blake3"
)

// TestHashersAgree: the native group hasher (guts on amd64) gives what
// the worker's internal/blake3 gives, for full and partial groups at any
// position, and for parents with and without the ROOT flag.
func TestHashersAgree(t *testing.T) {
	block := make([]byte, 256<<10)
	for i := range block {
		block[i] = byte(i*7 + i>>9)
	}
	for _, n := range []int{0, 1, 1023, 1024, 1025, 8192, 16383, 16384} {
		for _, counter := range []uint64{0, 16, 240} {
			g := block[:n]
			if got, want := groupCV(g, counter, false), blake3.ChainingValue(g, counter); got != want {
				t.Fatalf("group of %d bytes at chunk %d: %x, want %x", n, counter, got, want)
			}
		}
		if got, want := groupCV(block[:n], 0, true), blake3.Sum256(block[:n]); got != want {
			t.Fatalf("root group of %d bytes: %x, want %x", n, got, want)
		}
	}
	l, r := blake3.Sum256(block[:10]), blake3.Sum256(block[10:20])
	for _, root := range []bool{false, true} {
		if got, want := parentCV(&l, &r, root), blake3.Parent(&l, &r, root); got != want {
			t.Fatalf("parent (root %v): %x, want %x", root, got, want)
		}
	}
}
