package bao_test

import (
	"bytes"
	"errors"
	"io"
	"math/rand/v2"
	"testing"

	lbao "lukechampine.com/blake3/bao"

	"github.com/verity-cdn/verity/internal/bao"
)

// windows are the (offset, length) pairs every slice test covers for a
// block of n bytes: at and around group boundaries, one byte, the whole
// block, a tail, and some at random.
func windows(n int, rng *rand.Rand) [][2]uint64 {
	w := [][2]uint64{{0, 1}, {0, uint64(n)}, {uint64(n) - 1, 1}, {uint64(n) / 2, uint64(n) - uint64(n)/2}}
	for _, off := range []int{bao.GroupSize - 1, bao.GroupSize, bao.GroupSize + 1, 192 << 10, 200000 - 1} {
		if off < n {
			w = append(w, [2]uint64{uint64(off), 1}, [2]uint64{uint64(off), uint64(n - off)}, [2]uint64{uint64(off), uint64(min(n-off, 40000))})
		}
	}
	for range 8 {
		off := rng.IntN(n)
		w = append(w, [2]uint64{uint64(off), uint64(1 + rng.IntN(n-off))})
	}
	return w
}

// decodeSlice runs a slice decoder over enc (with its header) for the
// window [off, off+length) of a block expected to be want, checking every
// returned group against want and that the groups come in order from the
// window's first. It returns the bytes returned and the first error (nil
// once the whole window is verified).
func decodeSlice(t testing.TB, enc []byte, root [32]byte, size, off, length uint64, want []byte) (int, error) {
	t.Helper()
	r := bytes.NewReader(enc)
	n, err := bao.ReadHeader(r)
	if err != nil {
		return 0, err
	}
	if n != size {
		return 0, bao.ErrMalformed
	}
	lo, hi, _ := bao.Window(size, off, length)
	dec := bao.NewSliceDecoder(r, root, size, off, length)
	next := lo
	for {
		goff, g, err := dec.Next()
		if err == io.EOF {
			if next != hi {
				t.Fatalf("EOF at %d, the window ends at %d", next, hi)
			}
			if r.Len() != 0 {
				return int(next - lo), bao.ErrMalformed
			}
			return int(next - lo), nil
		}
		if err != nil {
			return int(next - lo), err
		}
		if goff != next || goff+uint64(len(g)) > uint64(len(want)) || !bytes.Equal(g, want[goff:goff+uint64(len(g))]) {
			t.Fatalf("released %d bytes at %d that are not the block's (next %d)", len(g), goff, next)
		}
		next += uint64(len(g))
	}
}

// TestSliceMatchesLukechampine: a slice is byte for byte
// lukechampine.com/blake3/bao's ExtractSlice with group 4 (taken from the
// combined encoding), its DecodeSlice accepts ours and gives the window's
// bytes, and our slice decoder accepts its slices and returns exactly the
// groups of the window.
func TestSliceMatchesLukechampine(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	for _, n := range lengths {
		if n == 0 {
			continue
		}
		d := data(n)
		enc, root := bao.Encode(nil, d)
		ob, _ := bao.AppendOutboard(nil, d)
		for _, w := range windows(n, rng) {
			off, length := w[0], w[1]
			got, err := bao.AppendSlice(nil, d, ob, off, length)
			if err != nil {
				t.Fatalf("len %d [%d,+%d): %v", n, off, length, err)
			}
			var want bytes.Buffer
			if err := lbao.ExtractSlice(&want, bytes.NewReader(enc), nil, bao.GroupLog, off, length); err != nil {
				t.Fatalf("len %d [%d,+%d): lukechampine: %v", n, off, length, err)
			}
			if !bytes.Equal(got, want.Bytes()) {
				t.Fatalf("len %d [%d,+%d): slice differs from lukechampine's (%d vs %d bytes)", n, off, length, len(got), want.Len())
			}
			if size, ok := bao.SliceSize(uint64(n), off, length); !ok || size != uint64(len(got)) {
				t.Fatalf("len %d [%d,+%d): SliceSize %d %v, slice is %d bytes", n, off, length, size, ok, len(got))
			}
			if out, ok := lbao.VerifySlice(got, bao.GroupLog, off, length, root); !ok || !bytes.Equal(out, d[off:off+length]) {
				t.Fatalf("len %d [%d,+%d): lukechampine's VerifySlice of ours: %v", n, off, length, ok)
			}
			lo, hi, _ := bao.Window(uint64(n), off, length)
			if m, err := decodeSlice(t, want.Bytes(), root, uint64(n), off, length, d); err != nil || uint64(m) != hi-lo {
				t.Fatalf("len %d [%d,+%d): our decoder on lukechampine's slice: %d bytes, %v", n, off, length, m, err)
			}
		}
	}
}

// TestSliceSmallerThanBlock: a range starting 192 KiB into a full block is
// proved by its last 64 KiB and five parents (two above that quarter,
// three within it), not the whole encoding.
func TestSliceSmallerThanBlock(t *testing.T) {
	n := uint64(256 << 10)
	size, ok := bao.SliceSize(n, 192<<10, 1<<20)
	if want := uint64(bao.HeaderSize + 64<<10 + 5*bao.ParentSize); !ok || size != want {
		t.Fatalf("slice of the last quarter: %d bytes (%v), want %d (the whole encoding is %d)", size, ok, want, bao.EncodedSize(n))
	}
	if lo, hi, ok := bao.Window(n, 200000, 1<<30); !ok || lo != 196608 || hi != n {
		t.Fatalf("Window(256 KiB, 200000, 1 GiB) = %d, %d, %v", lo, hi, ok)
	}
	for _, w := range [][2]uint64{{0, 0}, {n, 1}, {n + 5, 10}} {
		if _, _, ok := bao.Window(n, w[0], w[1]); ok {
			t.Errorf("Window(%d, %d, %d) is not empty", n, w[0], w[1])
		}
		if _, err := bao.AppendSlice(nil, data(int(n)), mustOutboard(data(int(n))), w[0], w[1]); !errors.Is(err, bao.ErrMalformed) {
			t.Errorf("AppendSlice of an empty window: %v", err)
		}
		if _, _, err := bao.NewSliceDecoder(bytes.NewReader(nil), [32]byte{}, n, w[0], w[1]).Next(); !errors.Is(err, bao.ErrMalformed) {
			t.Errorf("a slice decoder of an empty window: %v", err)
		}
	}
}

func mustOutboard(d []byte) []byte {
	ob, _ := bao.AppendOutboard(nil, d)
	return ob
}

// TestSliceAttacks: what a node could send instead of the slice asked for
// never releases a byte that is not the block's, and never verifies: the
// whole encoding, the slice of another window, a slice of other bytes of
// the same length, a flipped byte anywhere, a cut, a byte too many.
func TestSliceAttacks(t *testing.T) {
	n := 256 << 10
	d := data(n)
	ob := mustOutboard(d)
	_, root := bao.Encode(nil, d)
	off, length := uint64(192<<10), uint64(40000)
	slice, err := bao.AppendSlice(nil, d, ob, off, length)
	if err != nil {
		t.Fatal(err)
	}
	check := func(name string, enc []byte, want error) {
		t.Helper()
		if _, err := decodeSlice(t, enc, root, uint64(n), off, length, d); !errors.Is(err, want) {
			t.Errorf("%s: %v, want %v", name, err, want)
		}
	}
	if _, err := decodeSlice(t, slice, root, uint64(n), off, length, d); err != nil {
		t.Fatalf("the slice itself: %v", err)
	}
	whole, _ := bao.Encode(nil, d)
	check("the whole encoding", whole, bao.ErrHashMismatch)
	otherWindow, _ := bao.AppendSlice(nil, d, ob, 0, length)
	check("the slice of the block's start", otherWindow, bao.ErrHashMismatch)
	other := data(n)
	other[n-1] ^= 1
	otherSlice, _ := bao.AppendSlice(nil, other, mustOutboard(other), off, length)
	check("a slice of other bytes", otherSlice, bao.ErrHashMismatch)
	for i := bao.HeaderSize; i < len(slice); i += 997 {
		bad := bytes.Clone(slice)
		bad[i] ^= 0x10
		check("a flipped byte", bad, bao.ErrHashMismatch)
	}
	for _, cut := range []int{bao.HeaderSize, bao.HeaderSize + 1, len(slice) / 2, len(slice) - 1} {
		check("a cut slice", slice[:cut], bao.ErrTruncated)
	}
	check("a byte too many", append(bytes.Clone(slice), 0), bao.ErrMalformed)
}

// FuzzSliceDecoder: whatever the encoding and the window asked for, the
// slice decoder never panics, every byte it releases is the block's and
// at its offset, and it reports success only for the whole window.
func FuzzSliceDecoder(f *testing.F) {
	d := data(100000) // 7 groups
	ob := mustOutboard(d)
	_, root := bao.Encode(nil, d)
	for _, w := range [][2]uint64{{0, 1}, {50000, 20000}, {99999, 1}, {16384, 83616}} {
		s, _ := bao.AppendSlice(nil, d, ob, w[0], w[1])
		f.Add(s, w[0], w[1])
		f.Add(s[:len(s)/2], w[0], w[1])
		f.Add(s, w[0]+16384, w[1])
	}
	f.Fuzz(func(t *testing.T, e []byte, off, length uint64) {
		if len(e) < bao.HeaderSize {
			return
		}
		lo, hi, ok := bao.Window(uint64(len(d)), off, length)
		dec := bao.NewSliceDecoder(bytes.NewReader(e[bao.HeaderSize:]), root, uint64(len(d)), off, length)
		next := lo
		for {
			goff, g, err := dec.Next()
			if err == io.EOF {
				if !ok || next != hi {
					t.Fatalf("verified [%d, %d) for the window [%d, %d) (%v)", lo, next, lo, hi, ok)
				}
				break
			}
			if err != nil {
				break
			}
			if goff != next || goff+uint64(len(g)) > uint64(len(d)) || !bytes.Equal(g, d[goff:goff+uint64(len(g))]) {
				t.Fatalf("released %d bytes at %d that are not the block's", len(g), goff)
			}
			next += uint64(len(g))
		}
	})
}
