package verify_test

import (
	"bytes"
	"math/rand"
	"testing"

	"github.com/verity-cdn/verity/internal/car"
	"github.com/verity-cdn/verity/internal/cid"
	"github.com/verity-cdn/verity/internal/unixfs"
	"github.com/verity-cdn/verity/internal/verify"
)

type blk struct {
	c    cid.CID
	data []byte
}

func mustSum(t testing.TB, codec uint64, data []byte) cid.CID {
	c, err := cid.Sum(codec, cid.HashBLAKE3, data)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// handFile builds a balanced file DAG (raw leaves of chunk bytes, width
// links per node) and returns its root and blocks in DFS order.
func handFile(t testing.TB, data []byte, chunk, width int) (cid.CID, []blk) {
	type node struct {
		c      cid.CID
		size   uint64
		blocks []blk
	}
	var level []node
	for off := 0; off < len(data) || off == 0; off += chunk {
		leaf := data[off:min(off+chunk, len(data))]
		c := mustSum(t, cid.CodecRaw, leaf)
		level = append(level, node{c, uint64(len(leaf)), []blk{{c, leaf}}})
		if len(data) == 0 {
			break
		}
	}
	for len(level) > 1 {
		var next []node
		for i := 0; i < len(level); i += width {
			kids := level[i:min(i+width, len(level))]
			var n unixfs.Node
			fs := unixfs.FSNode{Type: unixfs.TFile, HasFileSize: true}
			for _, k := range kids {
				n.Links = append(n.Links, unixfs.Link{Hash: k.c, Name: "", HasName: true, Tsize: k.size, HasTsize: true})
				fs.BlockSizes = append(fs.BlockSizes, k.size)
				fs.FileSize += k.size
			}
			n.Data, n.HasData = unixfs.EncodeData(fs), true
			b := unixfs.EncodeNode(n)
			c := mustSum(t, cid.CodecDagPB, b)
			blocks := []blk{{c, b}}
			for _, k := range kids {
				blocks = append(blocks, k.blocks...)
			}
			next = append(next, node{c, fs.FileSize, blocks})
		}
		level = next
	}
	return level[0].c, level[0].blocks
}

// handDir wraps entries in a basic directory.
func handDir(t testing.TB, names []string, cids []cid.CID) blk {
	var n unixfs.Node
	for i, name := range names {
		n.Links = append(n.Links, unixfs.Link{Hash: cids[i], Name: name, HasName: true, Tsize: 1, HasTsize: true})
	}
	n.Data, n.HasData = unixfs.EncodeData(unixfs.FSNode{Type: unixfs.TDirectory}), true
	b := unixfs.EncodeNode(n)
	return blk{mustSum(t, cid.CodecDagPB, b), b}
}

func writeHandCAR(t testing.TB, root cid.CID, bs []blk) []byte {
	var buf bytes.Buffer
	w, err := car.NewWriter(&buf, []cid.CID{root})
	if err != nil {
		t.Fatal(err)
	}
	for _, b := range bs {
		if err := w.Put(b.c, b.data); err != nil {
			t.Fatal(err)
		}
	}
	return buf.Bytes()
}

// handSite: /f.bin is a depth-2 file (chunk 100, width 4) under a directory.
func handSite(t testing.TB, n int) (verify.Request, []byte, []byte) {
	data := randBytes(11, n)
	fc, fblocks := handFile(t, data, 100, 4)
	dir := handDir(t, []string{"a.txt", "f.bin"}, []cid.CID{mustSum(t, cid.CodecRaw, []byte("a")), fc})
	req := verify.Request{Root: dir.c, Path: []string{"f.bin"}}
	return req, writeHandCAR(t, fc, append([]blk{dir}, fblocks...)), data
}

func TestHandBuiltDepth2(t *testing.T) {
	req, b, data := handSite(t, 1750)
	r := verify.NewReader(bytes.NewReader(b), req, verify.Options{})
	ent, err := r.Entity()
	if err != nil || ent.Kind != verify.KindFile || ent.Size != int64(len(data)) {
		t.Fatalf("%+v %v", ent, err)
	}
	var got bytes.Buffer
	if _, err := got.ReadFrom(r); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got.Bytes(), data) {
		t.Fatal("bytes differ")
	}
	st := r.Stats()
	if st.Blocks != 1+1+2+5+18 || st.Bytes < int64(len(data)) {
		t.Fatalf("stats %+v", st)
	}
}

func randBytes(seed int64, n int) []byte {
	b := make([]byte, n)
	rand.New(rand.NewSource(seed)).Read(b)
	return b
}
