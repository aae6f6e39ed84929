//go:build !js

package verify_test

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"path/filepath"
	"testing"

	"github.com/verity-cdn/verity/internal/bao"
	"github.com/verity-cdn/verity/internal/car"
	"github.com/verity-cdn/verity/internal/cid"
	"github.com/verity-cdn/verity/internal/importer"
	"github.com/verity-cdn/verity/internal/unixfs"
	"github.com/verity-cdn/verity/internal/verify"
)

// toSlices transcodes the CAR a gateway served for req into its
// bao16-slices body, as a node does.
func toSlices(t testing.TB, v1 []byte, req verify.Request) []byte {
	var out bytes.Buffer
	w := car.NewBaoWriter(&out, 0)
	w.UseSlices(verify.NewSlicePlan(req))
	if _, err := w.Write(v1); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return out.Bytes()
}

// readSlices reads body as a bao16-slices body for req.
func readSlices(body []byte, req verify.Request) (got []byte, err error, blocks []int) {
	r := verify.NewReader(bytes.NewReader(body), req, verify.Options{Slices: true, OnBlock: func(_ cid.CID, n int) { blocks = append(blocks, n) }})
	got, err = io.ReadAll(r)
	return got, err, blocks
}

// checkSlices fetches req's CAR from f's gateway and checks that its
// bao16-slices body verifies to req's range of data and counts the same
// whole blocks as its bao16 body; it returns both bodies.
func checkSlices(t *testing.T, f *fixture, req verify.Request, data []byte) (body, whole []byte) {
	t.Helper()
	v1 := f.fetch(req)
	body, whole = toSlices(t, v1, req), toBao(t, v1)
	got, err, blocks := readSlices(body, req)
	want := sliceRange(data, req.Range)
	if err != nil || !bytes.Equal(got, want) {
		t.Fatalf("%d bytes of %d: %v", len(got), len(want), err)
	}
	_, _, _, wholeBlocks := readBao(whole, req)
	if fmt.Sprint(blocks) != fmt.Sprint(wholeBlocks) {
		t.Fatalf("OnBlock %v, with whole blocks %v", blocks, wholeBlocks)
	}
	return body, whole
}

// sliceFixture is a 5¼-block file under a directory, served by boxo.
func sliceFixture(t *testing.T) (*fixture, []byte) {
	dir := t.TempDir()
	data := randBytes(7, 5*block+12345)
	writeFile(t, filepath.Join(dir, "v.bin"), data)
	return newFixture(t, dir, importer.Options{}), data
}

// TestSlicesGatewayRanges: for every range, the bao16-slices body of the
// CAR boxo serves verifies to the range's bytes, counts the same whole
// blocks as the bao16 body, and is smaller by what the range skips of its
// first and last leaf.
func TestSlicesGatewayRanges(t *testing.T) {
	f, data := sliceFixture(t)
	cases := append(rangeCases(int64(len(data)), block),
		verify.ByteRange{From: block + 20000, To: block + 20001},
		verify.ByteRange{From: 2*block + 16383, To: 2*block + 16384},
		verify.ByteRange{From: 3*block - 1, To: 4*block + 5},
		verify.ByteRange{From: 2*block + 192<<10, To: -1},
		verify.ByteRange{From: 2*block + 192<<10, To: 2*block + 192<<10 + 65535},
		verify.ByteRange{From: 5 * block, To: -1},
		verify.ByteRange{From: 5*block + 12344, To: -1},
		verify.ByteRange{From: -20000, To: -1},
	)
	for _, rg := range cases {
		t.Run(fmt.Sprintf("%d:%d", rg.From, rg.To), func(t *testing.T) {
			req := verify.Request{Root: f.root, Path: []string{"v.bin"}, Range: &rg}
			body, whole := checkSlices(t, f, req, data)
			// What the slices leave out: the groups of the first and last
			// leaf outside the range, less the parents kept.
			if rg.From == 2*block+192<<10 && len(whole)-len(body) < 190<<10 {
				t.Fatalf("the body is %d bytes, %d with whole blocks: the 192 KiB before the range were sent", len(body), len(whole))
			}
			if len(body) > len(whole) {
				t.Fatalf("the body is %d bytes, %d with whole blocks", len(body), len(whole))
			}
		})
	}
	// Without a range, nothing is sliced: the body is the bao16 body.
	req := verify.Request{Root: f.root, Path: []string{"v.bin"}}
	v1 := f.fetch(req)
	if !bytes.Equal(toSlices(t, v1, req), toBao(t, v1)) {
		t.Fatal("a request without a range got slices")
	}
}

// TestSlicesDeepTree: the node's plan and the client agree on every leaf's
// window in a file three levels deep (64 KiB leaves, three links a node),
// reached through a sharded directory: every range verifies to its bytes,
// with the same whole blocks counted as bao16, and a range into the middle
// of a leaf is sent as a slice.
func TestSlicesDeepTree(t *testing.T) {
	const chunk = 64 << 10
	dir := t.TempDir()
	data := randBytes(11, 20*chunk+123)
	writeFile(t, filepath.Join(dir, "d", "v.bin"), data)
	for i := range 5 {
		writeFile(t, filepath.Join(dir, "d", fmt.Sprintf("other%d", i)), []byte{byte(i)})
	}
	f := newFixture(t, dir, importer.Options{ChunkSize: chunk, MaxLinks: 3, HAMTShardingSize: 1})
	n := int64(len(data))
	rng := rand.New(rand.NewPCG(3, 4))
	cases := rangeCases(n, chunk)
	for range 40 {
		from := rng.Int64N(n)
		cases = append(cases, verify.ByteRange{From: from, To: from + rng.Int64N(3*chunk)})
	}
	sliced := 0
	for _, rg := range cases {
		t.Run(fmt.Sprintf("%d:%d", rg.From, rg.To), func(t *testing.T) {
			req := verify.Request{Root: f.root, Path: []string{"d", "v.bin"}, Range: &rg}
			body, whole := checkSlices(t, f, req, data)
			if len(body) < len(whole) {
				sliced++
			}
		})
	}
	// The range from 17 bytes into the second leaf leaves out its first
	// group.
	if sliced == 0 {
		t.Fatal("no range was sent as slices")
	}
}

// TestSlicesFirstGroupAtOnce: the range's first group is released as
// soon as it and the parents above it arrived, not after the groups of
// its leaf before the range.
func TestSlicesFirstGroupAtOnce(t *testing.T) {
	f, data := sliceFixture(t)
	rg := verify.ByteRange{From: 2*block + 192<<10, To: -1}
	req := verify.Request{Root: f.root, Path: []string{"v.bin"}, Range: &rg}
	body := toSlices(t, f.fetch(req), req)
	// Cut the body 1 KiB after where the first group ends: five parents and
	// 16 KiB after the leaf's section starts.
	leaf := leafAt(t, f, 2)
	at := payloadAt(t, body, leaf) + bao.HeaderSize + 5*bao.ParentSize + bao.GroupSize
	r := verify.NewReader(io.MultiReader(bytes.NewReader(body[:at]), blockForever{}), req, verify.Options{Slices: true})
	buf := make([]byte, 1<<20)
	n, err := r.Read(buf)
	if err != nil || !bytes.Equal(buf[:n], data[rg.From:rg.From+bao.GroupSize]) {
		t.Fatalf("first read: %d bytes, %v; want the range's first group", n, err)
	}
}

// blockForever fails a Read that would wait for bytes that do not come.
type blockForever struct{}

func (blockForever) Read([]byte) (int, error) {
	return 0, errors.New("read past the bytes that had arrived")
}

// leafAt returns the CID of the i-th 256 KiB leaf of the fixture's file.
func leafAt(t *testing.T, f *fixture, i int) cid.CID {
	t.Helper()
	rg := verify.ByteRange{From: int64(i) * block, To: int64(i)*block + 1}
	req := verify.Request{Root: f.root, Path: []string{"v.bin"}, Range: &rg}
	r, err := car.NewReader(bytes.NewReader(f.fetch(req)), car.Config{})
	if err != nil {
		t.Fatal(err)
	}
	var last cid.CID
	for {
		c, _, err := r.Next()
		if err == io.EOF {
			return last
		}
		if err != nil {
			t.Fatal(err)
		}
		last = c
	}
}

// TestSlicesAttacks: a node that sends the client anything but the slices
// it computed itself gets an error at that leaf, and none of the leaf's
// bytes outside what verified reaches the reader.
func TestSlicesAttacks(t *testing.T) {
	f, data := sliceFixture(t)
	rg := verify.ByteRange{From: 2*block + 192<<10, To: 4*block + 5000}
	req := verify.Request{Root: f.root, Path: []string{"v.bin"}, Range: &rg}
	v1 := f.fetch(req)
	want := sliceRange(data, &rg)
	good := toSlices(t, v1, req)

	check := func(name string, body []byte, sentinel error) {
		t.Helper()
		got, err, _ := readSlices(body, req)
		if !bytes.HasPrefix(want, got) {
			t.Fatalf("%s: released %d bytes that are not the range's", name, len(got))
		}
		if !errors.Is(err, sentinel) {
			t.Fatalf("%s: %d bytes, err %v, want %v", name, len(got), err, sentinel)
		}
	}
	// The whole block where the slice was due (an older node's encoding
	// announced as slices): its length does not match the window's.
	check("whole first leaf", toBao(t, v1), verify.ErrMalformed)

	// A slice of another window the client did not ask for: the groups
	// from 128 KiB into the leaf, as a node would send for a range that
	// starts there.
	other := verify.ByteRange{From: 2*block + 128<<10, To: rg.To}
	oreq := verify.Request{Root: f.root, Path: []string{"v.bin"}, Range: &other}
	check("another window", toSlices(t, f.fetch(oreq), oreq), verify.ErrMalformed)

	// A window of the same size one group later: the parents above it do
	// not verify. (One group of the leaf: both windows have four parents.)
	one := verify.ByteRange{From: 2*block + 192<<10 + 100, To: 2*block + 192<<10 + 200}
	next := verify.ByteRange{From: one.From + bao.GroupSize, To: one.To + bao.GroupSize}
	oneReq := verify.Request{Root: f.root, Path: []string{"v.bin"}, Range: &one}
	nextReq := verify.Request{Root: f.root, Path: []string{"v.bin"}, Range: &next}
	oneBody, nextBody := toSlices(t, f.fetch(oneReq), oneReq), toSlices(t, f.fetch(oneReq), nextReq)
	if len(oneBody) != len(nextBody) {
		t.Fatalf("the two windows' bodies are %d and %d bytes", len(oneBody), len(nextBody))
	}
	if got, err, _ := readSlices(nextBody, oneReq); len(got) != 0 || !errors.Is(err, verify.ErrHashMismatch) {
		t.Fatalf("shifted window: %d bytes, %v", len(got), err)
	}

	// A flipped byte in the slice's first group, then in a parent.
	leaf := leafAt(t, f, 2)
	at := payloadAt(t, good, leaf) + bao.HeaderSize
	for name, off := range map[string]int{"parent": 3, "group": 5*bao.ParentSize + 100} {
		bad := bytes.Clone(good)
		bad[at+off] ^= 1
		check(name, bad, verify.ErrHashMismatch)
	}

	// A slices body read by a client that asked for whole blocks.
	if _, err := io.ReadAll(verify.NewReader(bytes.NewReader(good), req, verify.Options{Bao: true})); !errors.Is(err, verify.ErrMalformed) {
		t.Fatalf("a slice where the whole block was due: %v", err)
	}
	// The body cut anywhere never ends cleanly.
	for cut := 0; cut < len(good); cut += 997 {
		if got, err, _ := readSlices(good[:cut], req); err == nil || !bytes.HasPrefix(want, got) {
			t.Fatalf("cut at %d: %d bytes, %v", cut, len(got), err)
		}
	}
}

// TestSlicesMutations: random mutations of a bao16-slices body never
// release a byte that is not the range's, and never end in a silent
// short read.
func TestSlicesMutations(t *testing.T) {
	f, data := sliceFixture(t)
	ranges := []verify.ByteRange{{From: block + 100, To: 3*block + 40000}, {From: 2*block + 192<<10, To: -1}, {From: 20000, To: 20000}}
	rng := rand.New(rand.NewPCG(5, 5))
	iters := 600
	if testing.Short() {
		iters = 150
	}
	var bodies [][]byte
	for _, rg := range ranges {
		bodies = append(bodies, toSlices(t, f.fetch(verify.Request{Root: f.root, Path: []string{"v.bin"}, Range: &rg}), verify.Request{Root: f.root, Path: []string{"v.bin"}, Range: &rg}))
	}
	for i := 0; i < iters; i++ {
		k := i % len(ranges)
		b := bytes.Clone(bodies[k])
		for m := rng.IntN(3) + 1; m > 0; m-- {
			switch rng.IntN(3) {
			case 0:
				b[rng.IntN(len(b))] ^= byte(1 << rng.IntN(8))
			case 1:
				b = b[:rng.IntN(len(b))]
			case 2:
				at := rng.IntN(len(b))
				b = append(b[:at], b[at+1:]...)
			}
			if len(b) == 0 {
				break
			}
		}
		req := verify.Request{Root: f.root, Path: []string{"v.bin"}, Range: &ranges[k]}
		want := sliceRange(data, req.Range)
		got, err, _ := readSlices(b, req)
		if !bytes.HasPrefix(want, got) {
			t.Fatalf("mutation %d: released %d bytes that are not the range's", i, len(got))
		}
		if err == nil && !bytes.Equal(got, want) {
			t.Fatalf("mutation %d: silent short read: %d of %d bytes", i, len(got), len(want))
		}
	}
}

// TestLeafSlice: the windows both sides compute.
func TestLeafSlice(t *testing.T) {
	for _, tc := range []struct {
		pos, size, start, end uint64
		off, length           uint64
		ok                    bool
	}{
		{0, block, 0, block, 0, 0, false},                                     // whole
		{0, block, 100, block, 0, 0, false},                                   // from inside the first group: widened to whole
		{0, block, 16384, block, 16384, block - 16384, true},                  // from the second group
		{block, block, block + 192<<10, 9 * block, 192 << 10, 64 << 10, true}, // the last quarter
		{block, block, 0, block + 10, 0, 10, true},                            // the first group only
		{0, block, block, 2 * block, 0, 0, false},                             // outside
		{0, 0, 0, 10, 0, 0, false},                                            // an empty leaf
		{0, 40000, 39999, 40000, 39999, 1, true},                              // the last group of a short leaf
		{0, 10000, 5000, 6000, 0, 0, false},                                   // a leaf of one group
	} {
		off, length, ok := verify.LeafSlice(tc.pos, tc.size, tc.start, tc.end)
		if off != tc.off || length != tc.length || ok != tc.ok {
			t.Errorf("LeafSlice(%d, %d, %d, %d) = %d, %d, %v; want %d, %d, %v", tc.pos, tc.size, tc.start, tc.end, off, length, ok, tc.off, tc.length, tc.ok)
		}
	}
}

// TestSlicesIdentityChildren: identity children are never in the CAR (the
// Reader takes them from their CIDs), and the node's plan passes over an
// identity leaf and walks into an identity file node as the Reader does:
// the leaves after them are still sent as the slices the client expects.
func TestSlicesIdentityChildren(t *testing.T) {
	a, b, c := randBytes(1, 100000), randBytes(2, 100000), randBytes(3, 100000)
	ca, cb, cc := mustSum(t, cid.CodecRaw, a), mustSum(t, cid.CodecRaw, b), mustSum(t, cid.CodecRaw, c)
	xy := []byte("xy")
	cxy, err := cid.Sum(cid.CodecRaw, cid.HashIdentity, xy)
	if err != nil {
		t.Fatal(err)
	}
	type link struct {
		c    cid.CID
		size uint64
	}
	fileNode := func(links ...link) []byte {
		var n unixfs.Node
		fs := unixfs.FSNode{Type: unixfs.TFile, HasFileSize: true}
		for _, l := range links {
			n.Links = append(n.Links, unixfs.Link{Hash: l.c, HasName: true, Tsize: l.size, HasTsize: true})
			fs.BlockSizes = append(fs.BlockSizes, l.size)
			fs.FileSize += l.size
		}
		n.Data, n.HasData = unixfs.EncodeData(fs), true
		return unixfs.EncodeNode(n)
	}
	inner := fileNode(link{cc, 100000})
	cinner, err := cid.Sum(cid.CodecDagPB, cid.HashIdentity, inner)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name   string
		middle link
		sent   []blk // the middle's blocks in the CAR
		data   []byte
	}{
		{"identity leaf", link{cxy, 2}, nil, xy},
		{"identity file node", link{cinner, 100000}, []blk{{cc, c}}, c},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rb := fileNode(link{ca, 100000}, tc.middle, link{cb, 100000})
			rc := mustSum(t, cid.CodecDagPB, rb)
			file := append(append(append([]byte{}, a...), tc.data...), b...)
			rg := verify.ByteRange{From: 50000, To: int64(len(file)) - 50000}
			req := verify.Request{Root: rc, Range: &rg}
			blocks := append(append([]blk{{rc, rb}, {ca, a}}, tc.sent...), blk{cb, b})
			v1 := writeHandCAR(t, rc, blocks)
			body, whole := toSlices(t, v1, req), toBao(t, v1)
			got, err, _ := readSlices(body, req)
			if want := file[50000 : len(file)-49999]; err != nil || !bytes.Equal(got, want) {
				t.Fatalf("%d bytes of %d: %v", len(got), len(want), err)
			}
			if len(body) >= len(whole) {
				t.Fatalf("the body is %d bytes, %d with whole blocks: nothing was sliced", len(body), len(whole))
			}
		})
	}
}
