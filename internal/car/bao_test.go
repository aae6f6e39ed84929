package car

import (
	"bytes"
	"errors"
	"io"
	"math/rand/v2"
	"testing"

	"github.com/verity-cdn/verity/internal/bao"
	"github.com/verity-cdn/verity/internal/cid"
)

// baoBlocks are blocks of every kind a bao16 body holds: raw BLAKE3 blocks
// around the group size (transcoded), a raw sha2-256 block and a dag-pb
// one (both passed through).
func baoBlocks(t testing.TB) []block {
	var bs []block
	for i, n := range []int{0, 1, 16384, 16385, 100000, 262144} {
		data := bytes.Repeat([]byte{byte(i + 1), 2, 3}, n/3+1)[:n]
		c, err := cid.Sum(cid.CodecRaw, cid.HashBLAKE3, data)
		if err != nil {
			t.Fatal(err)
		}
		bs = append(bs, block{c, data})
	}
	for _, codec := range []uint64{cid.CodecDagPB, cid.CodecRaw} {
		data := bytes.Repeat([]byte("pass through;"), 3000)
		hash := uint64(cid.HashBLAKE3)
		if codec == cid.CodecRaw {
			hash = cid.HashSHA256
		}
		c, err := cid.Sum(codec, hash, data)
		if err != nil {
			t.Fatal(err)
		}
		bs = append(bs, block{c, data})
	}
	return bs
}

// transcode writes in through a BaoWriter in pieces of random sizes.
func transcode(t testing.TB, in []byte, seed uint64) ([]byte, error) {
	var out bytes.Buffer
	w := NewBaoWriter(&out, 0)
	rng := rand.New(rand.NewPCG(seed, 1))
	for len(in) > 0 {
		n := min(len(in), 1+rng.IntN(40000))
		if _, err := w.Write(in[:n]); err != nil {
			return nil, err
		}
		in = in[n:]
	}
	return out.Bytes(), w.Close()
}

// TestBaoWriter: the bao16 body has the same header and sections; raw
// BLAKE3 sections carry the Bao encoding, which decodes to the block.
func TestBaoWriter(t *testing.T) {
	bs := baoBlocks(t)
	in := writeCAR(t, []cid.CID{bs[0].c}, bs)
	for seed := range uint64(4) {
		out, err := transcode(t, in, seed)
		if err != nil {
			t.Fatal(err)
		}
		r, err := NewReader(bytes.NewReader(out), Config{})
		if err != nil {
			t.Fatal(err)
		}
		if len(r.Roots()) != 1 || !r.Roots()[0].Equal(bs[0].c) {
			t.Fatalf("roots %v", r.Roots())
		}
		for i, b := range bs {
			c, n, err := r.NextSection()
			if err != nil {
				t.Fatalf("section %d: %v", i, err)
			}
			payload, err := io.ReadAll(r.Payload())
			if err != nil || len(payload) != n {
				t.Fatalf("section %d: %d of %d payload bytes, %v", i, len(payload), n, err)
			}
			if !c.Equal(b.c) {
				t.Fatalf("section %d is %s, want %s", i, c, b.c)
			}
			if !BaoSection(c) {
				if !bytes.Equal(payload, b.data) {
					t.Fatalf("section %d (%s) altered", i, c)
				}
				continue
			}
			if uint64(n) != bao.EncodedSize(uint64(len(b.data))) {
				t.Fatalf("section %d: payload of %d bytes for a block of %d", i, n, len(b.data))
			}
			got, err := bao.Decode(payload, [32]byte(c.Digest))
			if err != nil || !bytes.Equal(got, b.data) {
				t.Fatalf("section %d: %v", i, err)
			}
		}
		if _, _, err := r.NextSection(); err != io.EOF {
			t.Fatalf("after the last section: %v", err)
		}
	}
}

func TestBaoWriterErrors(t *testing.T) {
	bs := baoBlocks(t)
	in := writeCAR(t, []cid.CID{bs[0].c}, bs)
	for _, cut := range []int{1, 5, len(in) / 2, len(in) - 1} {
		if _, err := transcode(t, in[:cut], 0); !errors.Is(err, ErrTruncated) {
			t.Fatalf("cut at %d: %v", cut, err)
		}
	}
	// A block that does not match its CID is refused, not encoded.
	bad := append([]block(nil), bs...)
	bad[4].data = bytes.Clone(bad[4].data)
	bad[4].data[500] ^= 1
	if _, err := transcode(t, writeCAR(t, nil, bad), 0); !errors.Is(err, ErrMalformed) {
		t.Fatalf("altered block: %v", err)
	}
	// Too large.
	var out bytes.Buffer
	w := NewBaoWriter(&out, 1000)
	if _, err := w.Write(in); !errors.Is(err, ErrTooLarge) {
		t.Fatalf("over the section limit: %v", err)
	}
}

// outboardMap is an Outboards holding the outboards of some blocks.
type outboardMap map[string][]byte

func (m outboardMap) Outboard(digest []byte, n int) ([]byte, bool) {
	ob, ok := m[string(digest)]
	return ob, ok
}

// TestBaoWriterOutboards: with the outboards of its blocks the writer
// gives the same body as it does hashing them; it takes the parents it is
// given as they are (they come from whoever checked the block), refuses
// an outboard of another length, and hashes and checks blocks it has no
// outboard for.
func TestBaoWriterOutboards(t *testing.T) {
	bs := baoBlocks(t)
	in := writeCAR(t, []cid.CID{bs[0].c}, bs)
	want, err := transcode(t, in, 0)
	if err != nil {
		t.Fatal(err)
	}
	obs := outboardMap{}
	for _, b := range bs[:4] { // some blocks only: the others are hashed
		if BaoSection(b.c) {
			obs[string(b.c.Digest)], _ = bao.AppendOutboard(nil, b.data)
		}
	}
	write := func(in []byte, o Outboards) ([]byte, error) {
		var out bytes.Buffer
		w := NewBaoWriter(&out, 0)
		w.UseOutboards(o)
		if _, err := w.Write(in); err != nil {
			return nil, err
		}
		return out.Bytes(), w.Close()
	}
	got, err := write(in, obs)
	if err != nil || !bytes.Equal(got, want) {
		t.Fatalf("with outboards: %v, %d bytes, want %d", err, len(got), len(want))
	}

	// The parents given are used as they are: the encoding of a block
	// with another block's outboard is one no decoder accepts.
	big := bs[5] // 256 KiB
	other := bytes.Clone(big.data)
	other[0] ^= 1
	lie := outboardMap{}
	lie[string(big.c.Digest)], _ = bao.AppendOutboard(nil, other)
	got, err = write(in, lie)
	if err != nil || bytes.Equal(got, want) || len(got) != len(want) {
		t.Fatalf("with another block's outboard: %v", err)
	}
	// An outboard of another length is refused.
	short := outboardMap{string(big.c.Digest): lie[string(big.c.Digest)][:100]}
	if _, err := write(in, short); !errors.Is(err, ErrMalformed) {
		t.Fatalf("an outboard of another length: %v", err)
	}
	// A block without an outboard is still checked.
	bad := append([]block(nil), bs...)
	bad[4].data = bytes.Clone(bad[4].data)
	bad[4].data[500] ^= 1
	if _, err := write(writeCAR(t, nil, bad), outboardMap{}); !errors.Is(err, ErrMalformed) {
		t.Fatalf("altered block without an outboard: %v", err)
	}
}

// TestBaoWriterClosed: a closed writer refuses writes; writers made after
// it, with the buffers it gave back, write what a fresh one does.
func TestBaoWriterClosed(t *testing.T) {
	bs := baoBlocks(t)
	in := writeCAR(t, []cid.CID{bs[0].c}, bs)
	var out bytes.Buffer
	w := NewBaoWriter(&out, 0)
	if _, err := w.Write(in); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := w.Write(in[:1]); err == nil {
		t.Fatal("a write after Close was taken")
	}
	want := out.Bytes()
	for seed := range uint64(8) {
		got, err := transcode(t, in, seed)
		if err != nil || !bytes.Equal(got, want) {
			t.Fatalf("seed %d: %v", seed, err)
		}
	}
}

// TestNextSectionSkips: a payload left unread is skipped; a truncated one
// is ErrTruncated.
func TestNextSectionSkips(t *testing.T) {
	bs := makeBlocks(t, 3)
	good := writeCAR(t, nil, bs)
	r, err := NewReader(bytes.NewReader(good), Config{})
	if err != nil {
		t.Fatal(err)
	}
	if c, _, err := r.NextSection(); err != nil || !c.Equal(bs[0].c) {
		t.Fatal(c, err)
	}
	if c, data, err := r.Next(); err != nil || !c.Equal(bs[1].c) || !bytes.Equal(data, bs[1].data) {
		t.Fatal(c, err)
	}
	c, n, err := r.NextSection()
	if err != nil || !c.Equal(bs[2].c) || n != len(bs[2].data) {
		t.Fatal(c, n, err)
	}
	r, _ = NewReader(bytes.NewReader(good[:len(good)-3]), Config{})
	r.Next()
	r.Next()
	if _, _, err := r.NextSection(); err != nil {
		t.Fatal(err)
	}
	if _, err := io.ReadAll(r.Payload()); !errors.Is(err, ErrTruncated) {
		t.Fatalf("truncated payload: %v", err)
	}
	if _, _, err := r.NextSection(); !errors.Is(err, ErrTruncated) {
		t.Fatalf("error not sticky: %v", err)
	}
}

// FuzzNextSection: reading by NextSection and Payload gives what Next gives.
func FuzzNextSection(f *testing.F) {
	bs := makeBlocks(f, 3)
	good := writeCAR(f, []cid.CID{bs[0].c}, bs)
	f.Add(good)
	f.Add(good[:len(good)-5])
	f.Add(good[:60])
	f.Fuzz(func(t *testing.T, in []byte) {
		_, want, werr := readAll(in, Config{MaxSectionSize: 1 << 16})
		r, err := NewReader(bytes.NewReader(in), Config{MaxSectionSize: 1 << 16})
		if err != nil {
			return
		}
		var got []block
		for {
			c, _, err := r.NextSection()
			if err == io.EOF {
				break
			}
			if err != nil {
				if werr == nil {
					t.Fatalf("NextSection: %v; Next read it all", err)
				}
				break
			}
			data, err := io.ReadAll(r.Payload())
			if err != nil {
				if werr == nil {
					t.Fatalf("Payload: %v; Next read it all", err)
				}
				break
			}
			got = append(got, block{c, data})
		}
		if len(got) < len(want) {
			t.Fatalf("%d sections, Next read %d", len(got), len(want))
		}
		for i := range want {
			if !got[i].c.Equal(want[i].c) || !bytes.Equal(got[i].data, want[i].data) {
				t.Fatalf("section %d differs", i)
			}
		}
	})
}

// FuzzBaoWriter: whatever is written, the writer never panics, and what it
// accepts whole reads back as the same blocks.
func FuzzBaoWriter(f *testing.F) {
	bs := baoBlocks(f)[:4]
	f.Add(writeCAR(f, []cid.CID{bs[0].c}, bs))
	f.Add([]byte{0x01, 0xa0})
	f.Fuzz(func(t *testing.T, in []byte) {
		var out bytes.Buffer
		w := NewBaoWriter(&out, 1<<18)
		if _, err := w.Write(in); err != nil || w.Close() != nil {
			return
		}
		_, want, werr := readAll(in, Config{MaxSectionSize: 1 << 18})
		if werr != nil {
			return // the header itself was not CAR
		}
		r, err := NewReader(&out, Config{MaxSectionSize: 1 << 20})
		if err != nil {
			t.Fatal(err)
		}
		for i, b := range want {
			c, _, err := r.NextSection()
			if err != nil || !c.Equal(b.c) {
				t.Fatalf("section %d: %v", i, err)
			}
			p, _ := io.ReadAll(r.Payload())
			if BaoSection(c) {
				if p, err = bao.Decode(p, [32]byte(c.Digest)); err != nil {
					t.Fatal(err)
				}
			}
			if !bytes.Equal(p, b.data) {
				t.Fatalf("section %d differs", i)
			}
		}
	})
}

// BenchmarkBaoWriter transcodes what a node sends for one 2 MiB segment
// (a dag-pb block, then eight 256 KiB raw BLAKE3 blocks) through a new
// BaoWriter, as each stream makes one, fed in the 32 KiB pieces of
// io.Copy's buffer. MB/s counts the CAR's bytes.
func BenchmarkBaoWriter(b *testing.B) { benchmarkBaoWriter(b, false) }

// BenchmarkBaoWriterOutboards is BenchmarkBaoWriter with the blocks'
// outboards given, as the node's store gives them.
func BenchmarkBaoWriterOutboards(b *testing.B) { benchmarkBaoWriter(b, true) }

func benchmarkBaoWriter(b *testing.B, withOutboards bool) {
	rng := rand.New(rand.NewPCG(1, 2))
	pb := bytes.Repeat([]byte("links;"), 2000)
	pbc, err := cid.Sum(cid.CodecDagPB, cid.HashBLAKE3, pb)
	if err != nil {
		b.Fatal(err)
	}
	bs := []block{{pbc, pb}}
	for range 8 {
		data := make([]byte, 256<<10)
		for i := range data {
			data[i] = byte(rng.Uint32())
		}
		c, err := cid.Sum(cid.CodecRaw, cid.HashBLAKE3, data)
		if err != nil {
			b.Fatal(err)
		}
		bs = append(bs, block{c, data})
	}
	in := writeCAR(b, []cid.CID{pbc}, bs)
	obs := outboardMap{}
	for _, bl := range bs[1:] {
		obs[string(bl.c.Digest)], _ = bao.AppendOutboard(nil, bl.data)
	}
	b.SetBytes(int64(len(in)))
	b.ReportAllocs()
	for b.Loop() {
		w := NewBaoWriter(io.Discard, 0)
		if withOutboards {
			w.UseOutboards(obs)
		}
		for p := in; len(p) > 0; {
			n := min(len(p), 32<<10)
			if _, err := w.Write(p[:n]); err != nil {
				b.Fatal(err)
			}
			p = p[n:]
		}
		if err := w.Close(); err != nil {
			b.Fatal(err)
		}
	}
}
