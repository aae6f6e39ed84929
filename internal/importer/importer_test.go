package importer

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"hash"
	"io"
	"os"
	"path/filepath"
	"testing"

	"github.com/ipfs/boxo/ipld/merkledag"
	"github.com/ipfs/go-cid"
	mh "github.com/multiformats/go-multihash"
	mhcore "github.com/multiformats/go-multihash/core"
	luke "lukechampine.com/blake3"

	"github.com/verity-cdn/verity/internal/blake3mh"
	vcar "github.com/verity-cdn/verity/internal/car"
	vcid "github.com/verity-cdn/verity/internal/cid"
)

// pattern returns n deterministic bytes.
func pattern(n int, seed byte) []byte {
	b := make([]byte, n)
	x := uint32(seed) + 1
	for i := range b {
		x = x*1664525 + 1013904223
		b[i] = byte(x >> 24)
	}
	return b
}

func write(t testing.TB, path string, data []byte) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, data, 0o644); err != nil {
		t.Fatal(err)
	}
}

// knownTree is the fixture whose root CID is pinned below.
func knownTree(t testing.TB) string {
	dir := t.TempDir()
	writeKnownTree(t, dir)
	return dir
}

func writeKnownTree(t testing.TB, dir string) {
	write(t, filepath.Join(dir, "index.html"), []byte("<!doctype html><title>verity</title>\n"))
	write(t, filepath.Join(dir, "empty"), nil)
	write(t, filepath.Join(dir, "css", "site.css"), []byte("body { margin: 0 }\n"))
	write(t, filepath.Join(dir, "media", "one.bin"), pattern(256<<10, 1))
	write(t, filepath.Join(dir, "media", "big.bin"), pattern(3*(256<<10)+1000, 2))
}

// Pinned: the roots Kubo v0.43.0 and the JS importer give for the same
// content (both inputs are in TestInteropWithKubo, which says how).
const (
	knownTreeCID = "bafyb4iajns3radgczk4d2ybviqh5pnppdcf7xkbmr4qe7q4swkcyfb5eae"
	helloCID     = "bafkr4ihs2kjn2qlfcj47pnvtd4amlcq5654qiom6qydjo24earkecsge2a"
)

type memSink struct {
	blocks map[string][]byte
	order  []cid.Cid
}

func (s *memSink) Put(_ context.Context, c cid.Cid, data []byte) error {
	if s.blocks == nil {
		s.blocks = map[string][]byte{}
	}
	if _, dup := s.blocks[c.KeyString()]; dup {
		return fmt.Errorf("block %s put twice", c)
	}
	s.blocks[c.KeyString()] = bytes.Clone(data)
	s.order = append(s.order, c)
	return nil
}

func importDir(t testing.TB, path string, opts Options) (cid.Cid, *memSink) {
	t.Helper()
	s := &memSink{}
	root, err := Import(context.Background(), path, s, opts)
	if err != nil {
		t.Fatal(err)
	}
	return root, s
}

// withLukechampine runs f with go-multihash's default BLAKE3 registered.
func withLukechampine(f func()) {
	mhcore.RegisterVariableSize(mhcore.BLAKE3, func(size int) (hash.Hash, bool) {
		if size == -1 {
			size = 32
		} else if size <= 0 || size > 128 {
			return nil, false
		}
		return luke.New(size, nil), true
	})
	defer mhcore.RegisterVariableSize(mhcore.BLAKE3, blake3mh.New)
	f()
}

func TestKnownCIDs(t *testing.T) {
	dir := knownTree(t)
	root, _ := importDir(t, dir, Options{})
	var ref cid.Cid
	withLukechampine(func() { ref, _ = importDir(t, dir, Options{}) })
	if root != ref {
		t.Fatalf("zeebo %s != lukechampine %s", root, ref)
	}
	if root.String() != knownTreeCID {
		t.Errorf("tree root %s, pinned %s", root, knownTreeCID)
	}
	hello := filepath.Join(t.TempDir(), "hello.txt")
	write(t, hello, []byte("hello verity\n"))
	h, _ := importDir(t, hello, Options{})
	if h.String() != helloCID {
		t.Errorf("hello.txt %s, pinned %s", h, helloCID)
	}
	if h.Prefix().Codec != cid.Raw || h.Prefix().MhType != mh.BLAKE3 || h.Version() != 1 {
		t.Errorf("small file CID prefix %+v", h.Prefix())
	}
}

func TestDeterministicAndComplete(t *testing.T) {
	dir := knownTree(t)
	r1, s1 := importDir(t, dir, Options{})
	r2, s2 := importDir(t, dir, Options{})
	if r1 != r2 || len(s1.blocks) != len(s2.blocks) {
		t.Fatalf("two runs differ: %s %s", r1, r2)
	}
	// Every block is reachable from the root and every link resolves.
	seen := map[string]bool{}
	var walk func(c cid.Cid)
	walk = func(c cid.Cid) {
		if seen[c.KeyString()] {
			return
		}
		seen[c.KeyString()] = true
		data, ok := s1.blocks[c.KeyString()]
		if !ok {
			t.Fatalf("block %s missing", c)
		}
		vc, _, _ := vcid.Decode(c.Bytes())
		if err := vc.Verify(data); err != nil {
			t.Fatalf("%s: %v", c, err)
		}
		if c.Prefix().Codec == cid.DagProtobuf {
			nd, err := merkledag.DecodeProtobuf(data)
			if err != nil {
				t.Fatal(err)
			}
			for _, l := range nd.Links() {
				walk(l.Cid)
			}
		}
	}
	walk(r1)
	if len(seen) != len(s1.blocks) {
		t.Fatalf("%d blocks imported, %d reachable", len(s1.blocks), len(seen))
	}
}

func TestWriteCAR(t *testing.T) {
	dir := knownTree(t)
	var buf bytes.Buffer
	root, err := WriteCAR(context.Background(), dir, &buf, Options{})
	if err != nil {
		t.Fatal(err)
	}
	want, s := importDir(t, dir, Options{})
	if root != want {
		t.Fatalf("WriteCAR root %s, Import %s", root, want)
	}
	r, err := vcar.NewReader(&buf, vcar.Config{})
	if err != nil {
		t.Fatal(err)
	}
	if len(r.Roots()) != 1 || string(r.Roots()[0].Bytes()) != root.KeyString() {
		t.Fatalf("CAR roots %v", r.Roots())
	}
	n := 0
	for {
		c, data, err := r.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(s.blocks[string(c.Bytes())], data) {
			t.Fatalf("block %s differs", c)
		}
		n++
	}
	if n != len(s.blocks) {
		t.Fatalf("%d blocks in CAR, %d imported", n, len(s.blocks))
	}
}

func TestLayout(t *testing.T) {
	dir := t.TempDir()
	// 175 chunks: one more than a node holds, so the root has two children.
	write(t, filepath.Join(dir, "f"), pattern(175*1024, 3))
	root, s := importDir(t, filepath.Join(dir, "f"), Options{ChunkSize: 1024})
	nd, err := merkledag.DecodeProtobuf(s.blocks[root.KeyString()])
	if err != nil {
		t.Fatal(err)
	}
	if len(nd.Links()) != 2 {
		t.Fatalf("root has %d links, want 2 (174 + 1)", len(nd.Links()))
	}
	child, _ := merkledag.DecodeProtobuf(s.blocks[nd.Links()[0].Cid.KeyString()])
	if len(child.Links()) != MaxLinks {
		t.Fatalf("first child has %d links, want %d", len(child.Links()), MaxLinks)
	}
	if c := child.Links()[0].Cid; c.Prefix().Codec != cid.Raw {
		t.Fatalf("leaf %s is not raw", c)
	}
}

func TestRefusesSymlinks(t *testing.T) {
	dir := t.TempDir()
	write(t, filepath.Join(dir, "a.txt"), []byte("a"))
	if err := os.Symlink("a.txt", filepath.Join(dir, "link")); err != nil {
		t.Skip(err)
	}
	_, err := Import(context.Background(), dir, &memSink{}, Options{})
	if !errors.Is(err, ErrSymlink) {
		t.Fatalf("err = %v, want ErrSymlink", err)
	}
}

// Into a file, WriteCAR writes the blocks after room for the header and
// the header last, without a spool: the same bytes as into any writer,
// from the file's offset, which it leaves at the CAR's end.
func TestWriteCARIntoFile(t *testing.T) {
	dir := knownTree(t)
	var want bytes.Buffer
	wantRoot, err := WriteCAR(t.Context(), dir, &want, Options{})
	if err != nil {
		t.Fatal(err)
	}
	f, err := os.Create(filepath.Join(t.TempDir(), "site.car"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	f.WriteString("before")
	root, err := WriteCAR(t.Context(), dir, f, Options{})
	if err != nil || root != wantRoot {
		t.Fatalf("root %s, %v; want %s", root, err, wantRoot)
	}
	at, _ := f.Seek(0, io.SeekCurrent)
	got, err := os.ReadFile(f.Name())
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, append([]byte("before"), want.Bytes()...)) || at != int64(len(got)) {
		t.Fatalf("the file holds %d bytes (offset %d); want \"before\" and the %d-byte CAR", len(got), at, want.Len())
	}

	// A header longer or shorter than the room: the blocks are moved.
	for _, room := range []int{10, 80} {
		hdr, err := headerOf(root)
		if err != nil {
			t.Fatal(err)
		}
		blocks := want.Bytes()[len(hdr):]
		if err := f.Truncate(0); err != nil {
			t.Fatal(err)
		}
		f.Seek(0, io.SeekStart)
		f.WriteString("before")
		f.Write(make([]byte, room))
		f.Write(blocks)
		end, _ := f.Seek(0, io.SeekCurrent)
		if err := moveBlocks(f, 6, int64(room), end, hdr); err != nil {
			t.Fatal(err)
		}
		got, _ := os.ReadFile(f.Name())
		if !bytes.Equal(got, append([]byte("before"), want.Bytes()...)) {
			t.Fatalf("room %d: the moved CAR differs", room)
		}
	}
}
