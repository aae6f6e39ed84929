package bao_test

import (
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"math/rand/v2"
	"testing"

	lbao "lukechampine.com/blake3/bao"

	"github.com/verity-cdn/verity/internal/bao"
	"github.com/verity-cdn/verity/internal/blake3"
)

// lengths are the block lengths every test covers: around chunk and group
// boundaries, up to one full 256 KiB block.
var lengths = []int{0, 1, 1023, 1024, 16383, 16384, 16385, 65536, 200000, 262143, 262144}

func data(n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(i % 251)
	}
	return b
}

// TestMatchesLukechampine: our encoding is byte for byte
// lukechampine.com/blake3/bao's with group 4, and each decoder accepts the
// other's encoding.
func TestMatchesLukechampine(t *testing.T) {
	for _, n := range lengths {
		d := data(n)
		enc, root := bao.Encode(nil, d)
		want, wantRoot := lbao.EncodeBuf(d, bao.GroupLog, false)
		if root != wantRoot || root != blake3.Sum256(d) {
			t.Fatalf("len %d: root %x, lukechampine %x", n, root, wantRoot)
		}
		if !bytes.Equal(enc, want) {
			t.Fatalf("len %d: encoding differs from lukechampine's (%d vs %d bytes)", n, len(enc), len(want))
		}
		if got := bao.EncodedSize(uint64(n)); got != uint64(len(enc)) || int(got) != lbao.EncodedSize(n, bao.GroupLog, false) {
			t.Fatalf("len %d: EncodedSize %d, encoding is %d bytes", n, got, len(enc))
		}
		if !lbao.VerifyBuf(enc, nil, bao.GroupLog, root) {
			t.Fatalf("len %d: lukechampine's decoder refuses our encoding", n)
		}
		var out bytes.Buffer
		if ok, err := lbao.Decode(&out, bytes.NewReader(enc), nil, bao.GroupLog, root); !ok || err != nil || !bytes.Equal(out.Bytes(), d) {
			t.Fatalf("len %d: lukechampine's Decode of ours: ok %v err %v", n, ok, err)
		}
		got, err := bao.Decode(want, wantRoot)
		if err != nil || !bytes.Equal(got, d) {
			t.Fatalf("len %d: our Decode of lukechampine's: %v", n, err)
		}
		// Streaming: groups in order, each at its offset.
		r := bytes.NewReader(want)
		size, err := bao.ReadHeader(r)
		if err != nil || size != uint64(n) {
			t.Fatalf("len %d: header %d, %v", n, size, err)
		}
		dec := bao.NewDecoder(r, root, size)
		var off uint64
		groups := 0
		for {
			o, g, err := dec.Next()
			if err == io.EOF {
				break
			}
			if err != nil {
				t.Fatalf("len %d: group %d: %v", n, groups, err)
			}
			if o != off || len(g) > bao.GroupSize || !bytes.Equal(g, d[o:o+uint64(len(g))]) {
				t.Fatalf("len %d: group %d at %d (%d bytes), want at %d", n, groups, o, len(g), off)
			}
			off += uint64(len(g))
			groups++
		}
		if off != uint64(n) || uint64(groups) != bao.Groups(uint64(n)) || r.Len() != 0 {
			t.Fatalf("len %d: %d bytes in %d groups, %d left unread", n, off, groups, r.Len())
		}
	}
}

// TestFullBlockOverhead: a full 256 KiB block carries 15 parents.
// TestOutboard: the outboard encoding is lukechampine.com/blake3/bao's
// (group 4, outboard) byte for byte, with the same root as Sum and
// Encode; AppendCombined makes Encode's encoding from it; Encode and
// both appends write every byte of what they append, whatever the spare
// capacity of dst holds.
func TestOutboard(t *testing.T) {
	dirty := bytes.Repeat([]byte{0xa5}, 300<<10)
	for _, n := range append(lengths, 3*16384+5, 15*16384+1) {
		d := data(n)
		enc, root := bao.Encode(nil, d)
		ob, obRoot := bao.AppendOutboard(nil, d)
		want, wantRoot := lbao.EncodeBuf(d, bao.GroupLog, true)
		if obRoot != root || wantRoot != root || bao.Sum(d) != root {
			t.Fatalf("len %d: outboard root %x, lukechampine's %x, Sum %x, Encode's %x", n, obRoot, wantRoot, bao.Sum(d), root)
		}
		if !bytes.Equal(ob, want) || uint64(len(ob)) != bao.OutboardSize(uint64(n)) {
			t.Fatalf("len %d: outboard differs from lukechampine's (%d vs %d bytes)", n, len(ob), len(want))
		}
		comb, err := bao.AppendCombined(nil, d, ob)
		if err != nil || !bytes.Equal(comb, enc) {
			t.Fatalf("len %d: AppendCombined: %v", n, err)
		}
		prefix := []byte("prefix")
		for name, got := range map[string][]byte{
			"Encode":         func() []byte { b, _ := bao.Encode(append(dirty[:0:len(dirty)], prefix...), d); return b }(),
			"AppendCombined": func() []byte { b, _ := bao.AppendCombined(append(dirty[:0:len(dirty)], prefix...), d, ob); return b }(),
		} {
			if !bytes.Equal(got, append(prefix, enc...)) {
				t.Fatalf("len %d: %s into a used buffer differs", n, name)
			}
		}
		if got, _ := bao.AppendOutboard(append(dirty[:0:len(dirty)], prefix...), d); !bytes.Equal(got, append(prefix, ob...)) {
			t.Fatalf("len %d: AppendOutboard into a used buffer differs", n)
		}
		// An outboard of another length is refused.
		for _, bad := range [][]byte{ob[:len(ob)-1], append(bytes.Clone(ob), 0), nil} {
			if _, err := bao.AppendCombined(nil, d, bad); !errors.Is(err, bao.ErrMalformed) {
				t.Fatalf("len %d: outboard of %d bytes: %v", n, len(bad), err)
			}
		}
		// So is the outboard of a block one byte longer.
		if n > 0 {
			if _, err := bao.AppendCombined(nil, d[:n-1], ob); !errors.Is(err, bao.ErrMalformed) {
				t.Fatalf("len %d: the outboard of one byte more: %v", n, err)
			}
		}
	}
}

func TestFullBlockOverhead(t *testing.T) {
	if got := bao.EncodedSize(256<<10) - 256<<10; got != 8+15*64 {
		t.Fatalf("overhead %d bytes", got)
	}
}

// decodeAll runs the streaming decoder over enc (with its header) for a
// block expected to be want, checking every returned group against want.
// It returns the bytes returned and the first error (nil after a complete,
// verified block).
func decodeAll(t testing.TB, enc []byte, root [32]byte, size uint64, want []byte) (int, error) {
	r := bytes.NewReader(enc)
	n, err := bao.ReadHeader(r)
	if err != nil {
		return 0, err
	}
	if n != size {
		return 0, bao.ErrMalformed
	}
	dec := bao.NewDecoder(r, root, size)
	total := 0
	for {
		off, g, err := dec.Next()
		if err == io.EOF {
			if uint64(total) != size {
				t.Fatalf("EOF after %d of %d bytes", total, size)
			}
			return total, nil
		}
		if err != nil {
			if _, _, again := dec.Next(); again != err {
				t.Fatalf("error not sticky: %v then %v", err, again)
			}
			return total, err
		}
		if off != uint64(total) || off+uint64(len(g)) > uint64(len(want)) || !bytes.Equal(g, want[off:off+uint64(len(g))]) {
			t.Fatalf("released %d bytes at %d that are not the block's", len(g), off)
		}
		total += len(g)
	}
}

// TestCorruptGroup: a flipped byte is caught at the group (or parent) that
// holds it; the groups released before are exactly those before it.
func TestCorruptGroup(t *testing.T) {
	d := data(200000) // 13 groups, the last one partial
	enc, root := bao.Encode(nil, d)
	// Data offset → encoding offset of each group.
	type span struct{ enc, data, n int }
	var groups []span
	pos := bao.HeaderSize
	var walk func(off, n int)
	walk = func(off, n int) {
		if n <= bao.GroupSize {
			groups = append(groups, span{pos, off, n})
			pos += n
			return
		}
		pos += bao.ParentSize
		mid := 1
		for mid*2 < n {
			mid *= 2
		}
		walk(off, mid)
		walk(off+mid, n-mid)
	}
	walk(0, len(d))
	for i, g := range groups {
		for _, at := range []int{0, g.n / 2, g.n - 1} {
			bad := bytes.Clone(enc)
			bad[g.enc+at] ^= 0x40
			got, err := decodeAll(t, bad, root, uint64(len(d)), d)
			if !errors.Is(err, bao.ErrHashMismatch) {
				t.Fatalf("group %d byte %d: err %v", i, at, err)
			}
			if got != g.data {
				t.Fatalf("group %d: released %d bytes before the error, want %d", i, got, g.data)
			}
		}
	}
	// A flipped byte in the first parent stops everything.
	bad := bytes.Clone(enc)
	bad[bao.HeaderSize+5] ^= 1
	if got, err := decodeAll(t, bad, root, uint64(len(d)), d); !errors.Is(err, bao.ErrHashMismatch) || got != 0 {
		t.Fatalf("root parent: %d bytes, %v", got, err)
	}
	// The wrong root refuses the first node.
	other := root
	other[0] ^= 1
	if got, err := decodeAll(t, enc, other, uint64(len(d)), d); !errors.Is(err, bao.ErrHashMismatch) || got != 0 {
		t.Fatalf("wrong root: %d bytes, %v", got, err)
	}
}

func TestTruncated(t *testing.T) {
	for _, n := range lengths {
		d := data(n)
		enc, root := bao.Encode(nil, d)
		for _, cut := range []int{0, 4, bao.HeaderSize, bao.HeaderSize + 1, len(enc) / 2, len(enc) - 1} {
			if cut >= len(enc) {
				continue
			}
			_, err := decodeAll(t, enc[:cut], root, uint64(n), d)
			if !errors.Is(err, bao.ErrTruncated) {
				t.Fatalf("len %d cut at %d: err %v", n, cut, err)
			}
			if _, err := bao.Decode(enc[:cut], root); err == nil {
				t.Fatalf("len %d cut at %d: Decode succeeded", n, cut)
			}
		}
	}
}

// TestWrongLength: a length that is not the block's never verifies as a
// whole, though groups it shares with the real tree may.
func TestWrongLength(t *testing.T) {
	d := data(200000)
	enc, root := bao.Encode(nil, d)
	for _, n := range []uint64{0, 1, 16384, 199999, 200001, 262144, 1 << 40} {
		r := bytes.NewReader(enc[bao.HeaderSize:])
		dec := bao.NewDecoder(r, root, n)
		for {
			off, g, err := dec.Next()
			if err == io.EOF {
				t.Fatalf("length %d verified", n)
			}
			if err != nil {
				break
			}
			if off+uint64(len(g)) > uint64(len(d)) || !bytes.Equal(g, d[off:off+uint64(len(g))]) {
				t.Fatalf("length %d: released bytes that are not the block's", n)
			}
		}
		bad := bytes.Clone(enc)
		binary.LittleEndian.PutUint64(bad, n)
		if _, err := bao.Decode(bad, root); err == nil {
			t.Fatalf("Decode accepted length %d", n)
		}
	}
	if _, err := bao.Decode(append(bytes.Clone(enc), 0), root); !errors.Is(err, bao.ErrMalformed) {
		t.Fatalf("trailing byte: %v", err)
	}
}

// FuzzDecoder: whatever the encoding and the claimed length, the decoder
// never panics, every byte it releases is the block's, and it reports
// success only for the whole block at its true length.
func FuzzDecoder(f *testing.F) {
	d := data(40000) // 3 groups
	enc, root := bao.Encode(nil, d)
	f.Add(enc, uint64(len(d)))
	f.Add(enc[:len(enc)/2], uint64(len(d)))
	f.Add(enc, uint64(len(d)+1))
	f.Add(enc, uint64(65536))
	bad := bytes.Clone(enc)
	bad[len(bad)-100] ^= 1
	f.Add(bad, uint64(len(d)))
	f.Fuzz(func(t *testing.T, e []byte, size uint64) {
		if len(e) < bao.HeaderSize {
			return
		}
		dec := bao.NewDecoder(bytes.NewReader(e[bao.HeaderSize:]), root, size)
		total := uint64(0)
		for {
			off, g, err := dec.Next()
			if err == io.EOF {
				if size != uint64(len(d)) || total != size {
					t.Fatalf("verified %d bytes as a block of %d; the block has %d", total, size, len(d))
				}
				break
			}
			if err != nil {
				break
			}
			if off != total || off+uint64(len(g)) > uint64(len(d)) || !bytes.Equal(g, d[off:off+uint64(len(g))]) {
				t.Fatalf("released %d bytes at %d that are not the block's", len(g), off)
			}
			total += uint64(len(g))
		}
		if got, err := bao.Decode(e, root); err == nil && !bytes.Equal(got, d) {
			t.Fatalf("Decode returned %d bytes that are not the block", len(got))
		}
	})
}

func BenchmarkEncode(b *testing.B) {
	d := data(256 << 10)
	buf := make([]byte, 0, bao.EncodedSize(256<<10))
	b.SetBytes(int64(len(d)))
	for b.Loop() {
		buf, _ = bao.Encode(buf[:0], d)
	}
}

func BenchmarkAppendOutboard(b *testing.B) {
	d := data(256 << 10)
	buf := make([]byte, 0, bao.OutboardSize(256<<10))
	b.SetBytes(int64(len(d)))
	for b.Loop() {
		buf, _ = bao.AppendOutboard(buf[:0], d)
	}
}

func BenchmarkAppendCombined(b *testing.B) {
	d := data(256 << 10)
	ob, _ := bao.AppendOutboard(nil, d)
	buf := make([]byte, 0, bao.EncodedSize(256<<10))
	b.SetBytes(int64(len(d)))
	for b.Loop() {
		buf, _ = bao.AppendCombined(buf[:0], d, ob)
	}
}

func BenchmarkDecode(b *testing.B) {
	d := data(256 << 10)
	enc, root := bao.Encode(nil, d)
	b.SetBytes(int64(len(d)))
	for b.Loop() {
		r := bytes.NewReader(enc[bao.HeaderSize:])
		dec := bao.NewDecoder(r, root, uint64(len(d)))
		for {
			if _, _, err := dec.Next(); err != nil {
				if err != io.EOF {
					b.Fatal(err)
				}
				break
			}
		}
	}
}

// TestDecoderMutations runs FuzzDecoder's property over random mutations
// of encodings (flipped, cut, inserted and deleted bytes, wrong lengths),
// so it is exercised by plain `go test` too.
func TestDecoderMutations(t *testing.T) {
	d := data(40000)
	enc, root := bao.Encode(nil, d)
	rng := rand.New(rand.NewPCG(7, 7))
	iters := 3000
	if testing.Short() {
		iters = 300
	}
	for i := 0; i < iters; i++ {
		e := bytes.Clone(enc)
		size := uint64(len(d))
		for k := rng.IntN(3) + 1; k > 0; k-- {
			switch rng.IntN(5) {
			case 0:
				e[rng.IntN(len(e))] ^= byte(1 << rng.IntN(8))
			case 1:
				e = e[:rng.IntN(len(e))]
			case 2:
				at := rng.IntN(len(e) + 1)
				e = append(e[:at], append([]byte{byte(rng.Uint32())}, e[at:]...)...)
			case 3:
				if len(e) > 0 {
					at := rng.IntN(len(e))
					e = append(e[:at], e[at+1:]...)
				}
			case 4:
				size = uint64(rng.IntN(3 * len(d)))
			}
			if len(e) == 0 {
				e = []byte{0}
			}
		}
		if len(e) < bao.HeaderSize {
			continue
		}
		dec := bao.NewDecoder(bytes.NewReader(e[bao.HeaderSize:]), root, size)
		total := uint64(0)
		for {
			off, g, err := dec.Next()
			if err == io.EOF {
				if size != uint64(len(d)) || total != size {
					t.Fatalf("mutation %d: verified %d bytes as a block of %d", i, total, size)
				}
				break
			}
			if err != nil {
				break
			}
			if off != total || off+uint64(len(g)) > uint64(len(d)) || !bytes.Equal(g, d[off:off+uint64(len(g))]) {
				t.Fatalf("mutation %d: released bytes that are not the block's", i)
			}
			total += uint64(len(g))
		}
	}
}
