//go:build js && wasm

package blake3

import (
	"math/rand/v2"
	"os"
	"syscall/js"
	"testing"
)

// requireSIMD fails the test when the SIMD module should have been
// installed ($VERITY_BLAKE3_SIMD_WASM, see simd/testdata/preload.js) but
// is not, and skips it when nobody asked for it.
func requireSIMD(t *testing.T) {
	t.Helper()
	if simdGroup.Type() != js.TypeFunction && os.Getenv("VERITY_BLAKE3_SIMD_WASM") == "" {
		t.Skip("no SIMD module: run with VERITY_BLAKE3_SIMD_WASM and the preload of simd/testdata (make test-wasm)")
	}
	if !simdEnabled {
		t.Fatal("VERITY_BLAKE3_SIMD_WASM is set but globalThis.__verityBlake3Group is not a function: is NODE_OPTIONS=--require=.../simd/testdata/preload.js set?")
	}
}

// TestSIMDMatchesGo hashes the same inputs with the SIMD module and in Go:
// lengths around every group and tree boundary (partial groups, one byte
// over or under), Sum, ChainingValue at many chunk counters, and checks
// the module was used.
func TestSIMDMatchesGo(t *testing.T) {
	requireSIMD(t)
	data := input(300 << 10)
	rng := rand.New(rand.NewPCG(1, 2))
	for i := range data[:100<<10] {
		data[i] ^= byte(rng.Uint32())
	}
	var lens []int
	for _, base := range []int{0, 16 << 10, 32 << 10, 48 << 10, 64 << 10, 128 << 10, 256 << 10, 300 << 10} {
		for _, d := range []int{-1025, -1024, -65, -1, 0, 1, 64, 1023, 1024, 1025} {
			if n := base + d; n >= 0 && n <= len(data) {
				lens = append(lens, n)
			}
		}
	}
	before := SIMDGroups()
	for _, n := range lens {
		for _, off := range []int{0, 3} { // unaligned input too
			d := data[off : off+n-min(n, off)]
			got := Sum256(d)
			gotCV := ChainingValue(d, 16*5)
			setSIMD(false)
			want := Sum256(d)
			wantCV := ChainingValue(d, 16*5)
			setSIMD(true)
			if got != want {
				t.Fatalf("len %d (offset %d): Sum256 with SIMD %x, in Go %x", len(d), off, got, want)
			}
			if gotCV != wantCV {
				t.Fatalf("len %d (offset %d): ChainingValue with SIMD %x, in Go %x", len(d), off, gotCV, wantCV)
			}
		}
	}
	// One group at every chunk counter a block's groups have, and far beyond.
	g := data[:groupLen]
	for _, counter := range []uint64{0, 16, 32, 240, 4096, 1<<20 + 16, 1<<31 - 16} {
		got := ChainingValue(g, counter)
		setSIMD(false)
		want := ChainingValue(g, counter)
		setSIMD(true)
		if got != want {
			t.Fatalf("group at chunk %d: SIMD %x, Go %x", counter, got, want)
		}
	}
	// Random inputs, offsets and counters (a property test: go test -fuzz
	// does not run under js/wasm).
	for range 300 {
		n, off := rng.IntN(len(data)-64), rng.IntN(64)
		d := data[off : off+n]
		counter := uint64(rng.IntN(1<<20)) &^ 15
		got, gotCV := Sum256(d), ChainingValue(d, counter)
		setSIMD(false)
		want, wantCV := Sum256(d), ChainingValue(d, counter)
		setSIMD(true)
		if got != want || gotCV != wantCV {
			t.Fatalf("len %d (offset %d, chunk %d): SIMD %x %x, Go %x %x", n, off, counter, got, gotCV, want, wantCV)
		}
	}
	if SIMDGroups() == before {
		t.Fatal("the SIMD module hashed no group")
	}
}

// FuzzSIMDMatchesGo: any input and chunk counter hash the same with the
// SIMD module and in Go.
func FuzzSIMDMatchesGo(f *testing.F) {
	f.Add(input(17<<10), uint32(0))
	f.Add(input(64<<10+5), uint32(48))
	f.Fuzz(func(t *testing.T, data []byte, c uint32) {
		requireSIMD(t)
		counter := uint64(c&^15) % (1 << 30)
		got, gotCV := Sum256(data), ChainingValue(data, counter)
		setSIMD(false)
		defer setSIMD(true)
		if want := Sum256(data); got != want {
			t.Fatalf("len %d: Sum256 with SIMD %x, in Go %x", len(data), got, want)
		}
		if want := ChainingValue(data, counter); gotCV != want {
			t.Fatalf("len %d at chunk %d: ChainingValue with SIMD %x, in Go %x", len(data), counter, gotCV, want)
		}
	})
}

// BenchmarkSum256Go is BenchmarkSum256 without the SIMD module.
func BenchmarkSum256Go(b *testing.B) {
	was := setSIMD(false)
	defer setSIMD(was)
	data := input(256 << 10)
	b.SetBytes(int64(len(data)))
	for b.Loop() {
		Sum256(data)
	}
}
