package verify_test

import (
	"bytes"
	"errors"
	"io"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/verity-cdn/verity/internal/bao"
	"github.com/verity-cdn/verity/internal/car"
	"github.com/verity-cdn/verity/internal/cid"
	"github.com/verity-cdn/verity/internal/verify"
)

const block = 256 << 10

// baoSite is handSite with the project's 256 KiB chunks: /f.bin is a file
// of four full leaves and a partial one under a directory. It returns the
// request, the v1 CAR, its bao16 body, the file and the file's leaves.
func baoSite(t testing.TB) (verify.Request, []byte, []byte, []byte, []blk) {
	data := randBytes(21, 4*block+70000)
	fc, fblocks := handFile(t, data, block, 174)
	dir := handDir(t, []string{"f.bin"}, []cid.CID{fc})
	req := verify.Request{Root: dir.c, Path: []string{"f.bin"}}
	v1 := writeHandCAR(t, fc, append([]blk{dir}, fblocks...))
	var leaves []blk
	for _, b := range fblocks {
		if b.c.Codec == cid.CodecRaw {
			leaves = append(leaves, b)
		}
	}
	return req, v1, toBao(t, v1), data, leaves
}

// toBao transcodes a CAR into its bao16 body, as a node does.
func toBao(t testing.TB, v1 []byte) []byte {
	var out bytes.Buffer
	w := car.NewBaoWriter(&out, 0)
	if _, err := w.Write(v1); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return out.Bytes()
}

// payloadAt returns the offset in the bao16 body of the payload (the Bao
// encoding) of the section for c.
func payloadAt(t testing.TB, body []byte, c cid.CID) int {
	r, err := car.NewReader(bytes.NewReader(body), car.Config{})
	if err != nil {
		t.Fatal(err)
	}
	for {
		sc, _, err := r.NextSection()
		if err != nil {
			t.Fatalf("no section for %s: %v", c, err)
		}
		if sc.Equal(c) {
			return int(r.Offset())
		}
	}
}

// groupAt returns the offset, inside the Bao encoding of an n-byte block,
// of the data of chunk group i (pre-order: a parent, the left subtree,
// the right one).
func groupAt(n, i int) int {
	pos := bao.HeaderSize
	var walk func(off, n int) bool
	walk = func(off, n int) bool {
		if n <= bao.GroupSize {
			if off == i*bao.GroupSize {
				return true
			}
			pos += n
			return false
		}
		pos += bao.ParentSize
		mid := 1
		for mid*2 < n {
			mid *= 2
		}
		return walk(off, mid) || walk(off+mid, n-mid)
	}
	walk(0, n)
	return pos
}

// readBao verifies body as a bao16 body and returns what Read released,
// the error that ended it, the sizes of the reads and the blocks OnBlock
// saw.
func readBao(body []byte, req verify.Request) (got []byte, err error, reads []int, blocks []int) {
	return readBaoFrom(bytes.NewReader(body), req)
}

func readBaoFrom(src io.Reader, req verify.Request) (got []byte, err error, reads []int, blocks []int) {
	r := verify.NewReader(src, req, verify.Options{Bao: true, OnBlock: func(_ cid.CID, n int) { blocks = append(blocks, n) }})
	buf := make([]byte, 1<<20)
	for {
		n, err := r.Read(buf)
		got = append(got, buf[:n]...)
		if n > 0 {
			reads = append(reads, n)
		}
		if err == io.EOF {
			return got, nil, reads, blocks
		}
		if err != nil {
			return got, err, reads, blocks
		}
	}
}

// dribble returns at most 4 KiB per Read, as a network stream may.
type dribble struct{ r io.Reader }

func (d dribble) Read(p []byte) (int, error) { return d.r.Read(p[:min(len(p), 4096)]) }

// TestBaoBody: a bao16 body verifies to the same bytes and blocks as the
// CAR, each raw leaf released in 16 KiB groups as they arrive, and
// several at once when they have all arrived.
func TestBaoBody(t *testing.T) {
	req, v1, v2, data, leaves := baoSite(t)
	got, err, reads, _ := readBaoFrom(dribble{bytes.NewReader(v2)}, req)
	if err != nil || !bytes.Equal(got, data) {
		t.Fatalf("%d of %d bytes, %v", len(got), len(data), err)
	}
	for _, n := range reads {
		if n > bao.GroupSize {
			t.Fatalf("a read released %d bytes at once from a trickling stream; groups are %d", n, bao.GroupSize)
		}
	}
	got, err, reads, blocks := readBao(v2, req)
	if err != nil || !bytes.Equal(got, data) {
		t.Fatalf("%d of %d bytes, %v", len(got), len(data), err)
	}
	if slices.Max(reads) <= bao.GroupSize {
		t.Fatalf("groups already received were released one Read each (largest read %d)", slices.Max(reads))
	}
	r1 := verify.NewReader(bytes.NewReader(v1), req, verify.Options{})
	if _, err := io.Copy(io.Discard, r1); err != nil {
		t.Fatal(err)
	}
	if st := r1.Stats(); len(blocks) != st.Blocks {
		t.Fatalf("OnBlock saw %d blocks, the CAR has %d", len(blocks), st.Blocks)
	}
	for i, l := range leaves {
		if blocks[len(blocks)-len(leaves)+i] != len(l.data) {
			t.Fatalf("OnBlock for leaf %d: %d bytes, want the whole block (%d)", i, blocks[len(blocks)-len(leaves)+i], len(l.data))
		}
	}
	// The same body without Options.Bao is not a CAR the reader accepts.
	if _, err := io.ReadAll(verify.NewReader(bytes.NewReader(v2), req, verify.Options{})); err == nil {
		t.Fatal("a bao16 body verified as a plain CAR")
	}
}

// TestBaoReleasesBeforeTheBlockEnds: with only the first group of a leaf
// (and its parents) arrived, that group is already released; a plain CAR
// cut at the same byte releases nothing of the leaf.
func TestBaoReleasesBeforeTheBlockEnds(t *testing.T) {
	req, v1, v2, data, leaves := baoSite(t)
	at := payloadAt(t, v2, leaves[0].c) + groupAt(block, 1)
	got, err, _, blocks := readBao(v2[:at], req)
	if !bytes.Equal(got, data[:bao.GroupSize]) {
		t.Fatalf("released %d bytes, want the first group (%d)", len(got), bao.GroupSize)
	}
	if !errors.Is(err, verify.ErrTruncated) {
		t.Fatalf("err %v", err)
	}
	if len(blocks) != 2 { // the directory and the file root
		t.Fatalf("OnBlock for %d blocks before the first leaf completed", len(blocks))
	}
	cut := len(v1) - (len(v2) - at)
	r := verify.NewReader(bytes.NewReader(v1[:cut]), req, verify.Options{})
	if n, _ := io.Copy(io.Discard, r); n != 0 {
		t.Fatalf("plain CAR released %d bytes of an incomplete leaf", n)
	}
}

// TestBaoCorruptGroup: a byte altered in the middle of a block is caught
// at its group; only the groups before it are released, and the error
// names the block.
func TestBaoCorruptGroup(t *testing.T) {
	req, _, v2, data, leaves := baoSite(t)
	for _, tc := range []struct {
		leaf, group, at int
	}{
		{1, 8, 100},                         // the middle of a full block
		{0, 0, 0},                           // its first byte
		{2, 15, bao.GroupSize - 1},          // its last byte
		{4, 4, 70000 - 4*bao.GroupSize - 1}, // the partial last leaf
	} {
		bad := bytes.Clone(v2)
		bad[payloadAt(t, v2, leaves[tc.leaf].c)+groupAt(len(leaves[tc.leaf].data), tc.group)+tc.at] ^= 0x20
		got, err, _, blocks := readBao(bad, req)
		want := tc.leaf*block + tc.group*bao.GroupSize
		if !bytes.Equal(got, data[:want]) {
			t.Fatalf("leaf %d group %d: released %d bytes, want %d", tc.leaf, tc.group, len(got), want)
		}
		var be *verify.BlockError
		if !errors.Is(err, verify.ErrHashMismatch) || !errors.As(err, &be) || !be.CID.Equal(leaves[tc.leaf].c) {
			t.Fatalf("leaf %d group %d: err %v, want a hash mismatch naming %s", tc.leaf, tc.group, err, leaves[tc.leaf].c)
		}
		if len(blocks) != 2+tc.leaf {
			t.Fatalf("leaf %d: OnBlock for %d blocks", tc.leaf, len(blocks))
		}
	}
	// An altered parent stops the leaf before any of its groups.
	bad := bytes.Clone(v2)
	bad[payloadAt(t, v2, leaves[3].c)+bao.HeaderSize+3] ^= 1
	if got, err, _, _ := readBao(bad, req); !errors.Is(err, verify.ErrHashMismatch) || len(got) != 3*block {
		t.Fatalf("altered parent: %d bytes, %v", len(got), err)
	}
	// A length prefix that is not the parent's size.
	bad = bytes.Clone(v2)
	bad[payloadAt(t, v2, leaves[2].c)] ^= 1
	if got, err, _, _ := readBao(bad, req); !errors.Is(err, verify.ErrMalformed) || len(got) != 2*block {
		t.Fatalf("altered length: %d bytes, %v", len(got), err)
	}
}

// TestBaoTruncated: a body cut inside a group releases the groups before
// it, then fails naming the block; cut anywhere, it never ends cleanly.
func TestBaoTruncated(t *testing.T) {
	req, _, v2, data, leaves := baoSite(t)
	at := payloadAt(t, v2, leaves[1].c) + groupAt(block, 5) + 1000
	got, err, _, _ := readBao(v2[:at], req)
	var be *verify.BlockError
	if !bytes.Equal(got, data[:block+5*bao.GroupSize]) || !errors.Is(err, verify.ErrTruncated) || !errors.As(err, &be) || !be.CID.Equal(leaves[1].c) {
		t.Fatalf("%d bytes, %v", len(got), err)
	}
	for cut := 0; cut < len(v2); cut += 4099 {
		got, err, _, _ := readBao(v2[:cut], req)
		if err == nil || !bytes.HasPrefix(data, got) {
			t.Fatalf("cut at %d: %d bytes, err %v", cut, len(got), err)
		}
	}
}

// TestBaoRawRoot: a file of one raw block (the entity root) is checked
// whole before Entity returns, since only its last group proves its length.
func TestBaoRawRoot(t *testing.T) {
	for _, n := range []int{0, 5000, bao.GroupSize + 1, block} {
		data := randBytes(int64(n), n)
		c := mustSum(t, cid.CodecRaw, data)
		v2 := toBao(t, writeHandCAR(t, c, []blk{{c, data}}))
		req := verify.Request{Root: c, Range: &verify.ByteRange{From: 100, To: -1}}
		got, err, _, blocks := readBao(v2, req)
		want := data[min(100, n):]
		if err != nil || !bytes.Equal(got, want) || len(blocks) != 1 {
			t.Fatalf("len %d: %d bytes, %d blocks, %v", n, len(got), len(blocks), err)
		}
		if n > bao.GroupSize {
			bad := bytes.Clone(v2)
			bad[len(bad)-1] ^= 1
			if got, err, _, _ := readBao(bad, req); err == nil || len(got) != 0 {
				t.Fatalf("len %d: altered last byte: %d bytes, %v", n, len(got), err)
			}
		}
	}
}

// FuzzBaoReader: arbitrary bytes as a bao16 body never panic, never yield
// bytes that are not the file's, and never end cleanly short.
func FuzzBaoReader(f *testing.F) {
	data := randBytes(31, 3*bao.GroupSize+500)
	fc, fblocks := handFile(f, data, 2*bao.GroupSize, 4)
	dir := handDir(f, []string{"f.bin"}, []cid.CID{fc})
	req := verify.Request{Root: dir.c, Path: []string{"f.bin"}}
	good := toBao(f, writeHandCAR(f, fc, append([]blk{dir}, fblocks...)))
	f.Add(good, uint8(0))
	f.Add(good[:len(good)/2], uint8(0))
	bad := bytes.Clone(good)
	bad[len(bad)-300] ^= 1
	f.Add(bad, uint8(0))
	f.Add(good, uint8(1))
	ranges := []*verify.ByteRange{nil, {From: 100, To: 40000}, {From: 40000, To: -1}, {From: 20000, To: 20000}}
	f.Fuzz(func(t *testing.T, b []byte, rg uint8) {
		req := req
		req.Range = ranges[int(rg)%len(ranges)]
		want := data
		if req.Range != nil {
			want = sliceRangeOf(data, *req.Range)
		}
		got, err, _, _ := readBao(b, req)
		if !bytes.HasPrefix(want, got) {
			t.Fatalf("returned %d bytes that are not the range's", len(got))
		}
		if err == nil && !bytes.Equal(got, want) {
			t.Fatalf("silent short read: %d of %d bytes", len(got), len(want))
		}
	})
}

// sliceRangeOf is the part of data a non-negative range selects.
func sliceRangeOf(data []byte, rg verify.ByteRange) []byte {
	end := int64(len(data))
	if rg.To >= 0 {
		end = min(rg.To+1, end)
	}
	return data[min(rg.From, end):end]
}

// TestBaoLastBlockCounted: a reader that stops once it has the range's
// last byte (as the worker's body does) has seen OnBlock for every block
// of the range, the one holding the last byte included, as with a plain
// CAR: receipts cover every block sent.
func TestBaoLastBlockCounted(t *testing.T) {
	_, _, _, data, _ := baoSite(t)
	fc, fblocks := handFile(t, data, block, 174)
	for _, rg := range []*verify.ByteRange{nil, {From: 0, To: block + 100}, {From: block + 20000, To: block + 20001}, {From: 3*block - 1, To: 4*block - 1}} {
		// The blocks a node sends for the range: the file root and the
		// leaves it overlaps.
		var secs []blk
		lo, hi := int64(0), int64(len(data))
		if rg != nil {
			lo, hi = rg.From, rg.To+1
		}
		for i, b := range fblocks {
			if b.c.Codec == cid.CodecRaw {
				if i := int64(i - 1); i*block >= hi || (i+1)*block <= lo {
					continue
				}
			}
			secs = append(secs, b)
		}
		want := data[lo:hi]
		req := verify.Request{Root: fc, Range: rg}
		v1 := writeHandCAR(t, fc, secs)
		for _, isBao := range []bool{false, true} {
			body := v1
			if isBao {
				body = toBao(t, v1)
			}
			var counted int
			r := verify.NewReader(bytes.NewReader(body), req, verify.Options{Bao: isBao, OnBlock: func(cid.CID, int) { counted++ }})
			got := make([]byte, len(want))
			if _, err := io.ReadFull(r, got); err != nil || !bytes.Equal(got, want) {
				t.Fatalf("range %v bao %v: %v", rg, isBao, err)
			}
			if counted != len(secs) {
				t.Fatalf("range %v bao %v: OnBlock for %d blocks once the range was read, want %d", rg, isBao, counted, len(secs))
			}
		}
	}
}

// TestBaoReaderMutations runs FuzzBaoReader's property over random
// mutations of a bao16 body (flipped, cut, inserted and deleted bytes),
// with and without a range, so plain `go test` exercises it too.
func TestBaoReaderMutations(t *testing.T) {
	data := randBytes(31, 3*bao.GroupSize+500)
	fc, fblocks := handFile(t, data, 2*bao.GroupSize, 4)
	dir := handDir(t, []string{"f.bin"}, []cid.CID{fc})
	good := toBao(t, writeHandCAR(t, fc, append([]blk{dir}, fblocks...)))
	ranges := []*verify.ByteRange{nil, {From: 100, To: 40000}, {From: 40000, To: -1}, {From: 20000, To: 20000}}
	rng := rand.New(rand.NewPCG(3, 3))
	iters := 1000
	if testing.Short() {
		iters = 200
	}
	for i := 0; i < iters; i++ {
		b := bytes.Clone(good)
		for k := rng.IntN(3) + 1; k > 0 && len(b) > 0; k-- {
			switch rng.IntN(4) {
			case 0:
				b[rng.IntN(len(b))] ^= byte(1 << rng.IntN(8))
			case 1:
				b = b[:rng.IntN(len(b))]
			case 2:
				at := rng.IntN(len(b) + 1)
				b = append(b[:at], append([]byte{byte(rng.Uint32())}, b[at:]...)...)
			case 3:
				at := rng.IntN(len(b))
				b = append(b[:at], b[at+1:]...)
			}
		}
		req := verify.Request{Root: dir.c, Path: []string{"f.bin"}, Range: ranges[i%len(ranges)]}
		want := data
		if req.Range != nil {
			want = sliceRangeOf(data, *req.Range)
		}
		var src io.Reader = bytes.NewReader(b)
		if i%2 == 1 {
			src = dribble{src} // no groups coalesced
		}
		got, err, _, _ := readBaoFrom(src, req)
		if !bytes.HasPrefix(want, got) {
			t.Fatalf("mutation %d: returned %d bytes that are not the range's", i, len(got))
		}
		if err == nil && !bytes.Equal(got, want) {
			t.Fatalf("mutation %d: silent short read: %d of %d bytes", i, len(got), len(want))
		}
	}
}
