package importer

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ipfs/boxo/ipld/merkledag"
	ufs "github.com/ipfs/boxo/ipld/unixfs"
	"github.com/ipfs/go-cid"
)

// Interop with the reference implementations.
//
// The inputs below are generated, never committed. Every pinned root CID was
// produced, identically, by
//
//   - Kubo v0.43.0 (cmd/ipfs built from the github.com/ipfs/kubo@v0.43.0
//     module with its own go.mod, so with boxo v0.42.1, not the boxo this
//     module uses), offline and without a daemon:
//
//     ipfs init --profile=test
//     ipfs --offline add -r -Q --hidden --only-hash \
//     --cid-version=1 --raw-leaves --hash=blake3 --chunker=size-262144 NAME
//
//   - the JS importer ipfs-unixfs-importer 17.1.1 (multiformats 14.0.5,
//     BLAKE3 from @noble/hashes 2.4.0) with cidVersion 1, rawLeaves,
//     reduceSingleLeafToSelf, fixedSize 262144 and balanced 174: see
//     testdata/interop/js.
//
// testdata/interop/regen.sh rebuilds both and prints Verity's, Kubo's and
// the JS importer's root for every input; testdata/interop/README.md says
// how and what differs between the reference tools. To only write the
// inputs:
//
//	VERITY_INTEROP_OUT=/tmp/in go test -run TestWriteInteropInputs ./internal/importer/

// interopInput is one file or directory given to every importer.
type interopInput struct {
	name  string
	large bool // skipped with -short
	make  func(t testing.TB, path string)
	shape string // what the root is: "raw", "file", "dir" or "hamt"
	want  string // root CID from Kubo; the JS importer gives the same
}

// hamtEdgeEntries is how many 8-byte names fill a directory whose boxo links
// estimate (name length + CID length per entry, 36 bytes for these CIDs)
// reaches HAMTShardingSize together with one last, longer name.
const hamtEdgeEntries = 5956

var interopInputs = []interopInput{
	{
		name:  "empty",
		make:  func(t testing.TB, p string) { write(t, p, nil) },
		shape: "raw",
		want:  "bafkr4ifpcne3t5pzugtkaqcn5i3nzskjtpfslsnnyejlpte2spfoihzsmi",
	},
	{
		name:  "one-byte",
		make:  func(t testing.TB, p string) { write(t, p, []byte{'v'}) },
		shape: "raw",
		want:  "bafkr4ih364jjbe2cskj5kwftte6kcomi3k5isp2kden4fmob4w2sudiboi",
	},
	{
		name:  "chunk",
		make:  func(t testing.TB, p string) { write(t, p, pattern(ChunkSize, 10)) },
		shape: "raw",
		want:  "bafkr4iesahy2xgohl53bfjy2zqen24fvfqo5rpah2xwudzv3vujqhcwrsu",
	},
	{
		name:  "chunk-plus-one",
		make:  func(t testing.TB, p string) { write(t, p, pattern(ChunkSize+1, 11)) },
		shape: "file",
		want:  "bafyb4icw67qke44enblnembt4rj3oerng7dpkn42cvxdjpaoptraihm4sy",
	},
	{
		// One chunk more than a node holds: a root over 174 + 1 leaves.
		name:  "chunks-175", // 44 MiB, imported in a fraction of a second
		make:  func(t testing.TB, p string) { write(t, p, pattern(175*ChunkSize, 12)) },
		shape: "file",
		want:  "bafyb4ig3jfxgxaiunndwkaxpud4dbuyvxoqhb4nxbk75yunh2ux2jwvmjm",
	},
	{
		name:  "hello.txt",
		make:  func(t testing.TB, p string) { write(t, p, []byte("hello verity\n")) },
		shape: "raw",
		want:  "bafkr4ihs2kjn2qlfcj47pnvtd4amlcq5654qiom6qydjo24earkecsge2a",
	},
	{
		name:  "known-tree", // the fixture of TestKnownCIDs
		make:  writeKnownTree,
		shape: "dir",
		want:  "bafyb4iajns3radgczk4d2ybviqh5pnppdcf7xkbmr4qe7q4swkcyfb5eae",
	},
	{
		name:  "tree",
		make:  makeTree,
		shape: "dir",
		want:  "bafyb4ihzq364b62vjcpd35kbpyuuey32sb7yfgxi3wm5qtrfchyvr2ujvu",
	},
	{
		name:  "hamt",
		large: true,
		make:  makeHAMT,
		shape: "hamt",
		want:  "bafyb4igohvne63qlfgsaylvnmfbyehxgg242j23hnpnqq7bcbiko7uecwi",
	},
	{
		// Links estimate exactly HAMTShardingSize: still a basic directory.
		name:  "hamt-edge-at",
		large: true,
		make:  func(t testing.TB, p string) { makeHAMTEdge(t, p, 0) },
		shape: "dir",
		want:  "bafyb4ic2cuu4nhh4defvvz24iiuar6vfhtmxqm7oiajp4exfxnylnfv6c4",
	},
	{
		// One byte over: a HAMT.
		name:  "hamt-edge-over",
		large: true,
		make:  func(t testing.TB, p string) { makeHAMTEdge(t, p, 1) },
		shape: "hamt",
		want:  "bafyb4ifqaolrhbvkokbye24n3hq4tmdefwt4vx2cygrmqyq4ou2jneshhe",
	},
}

// makeTree writes a small site: nested and empty directories, hidden files,
// non-ASCII names (NFC and NFD spellings of the same word), names whose byte
// order differs from a case-insensitive or per-character order, and files of
// zero, one and several chunks.
func makeTree(t testing.TB, dir string) {
	files := map[string][]byte{
		"index.html":                          []byte("<!doctype html><title>verity</title>\n"),
		".hidden":                             []byte("hidden\n"),
		".well-known/security.txt":            []byte("Contact: mailto:security@example.com\n"),
		"empty.txt":                           nil,
		"B.txt":                               []byte("upper\n"),
		"a.txt":                               []byte("lower\n"),
		"a-b/x":                               []byte("dash\n"),
		"a.b/x":                               []byte("dot\n"),
		"a/b/c/d/deep.txt":                    []byte("deep\n"),
		"caf\u00e9.txt":                       []byte("nfc\n"),
		"cafe\u0301.txt":                      []byte("nfd\n"),
		"\u65e5\u672c\u8a9e/\u6587\u66f8.txt": []byte("japanese\n"),
		"emoji \U0001F680.txt":                []byte("rocket\n"),
		"with space/file name.txt":            []byte("space\n"),
		"media/one-chunk.bin":                 pattern(ChunkSize, 20),
		"media/three-chunks.bin":              pattern(2*ChunkSize+1000, 21),
		"media/same-as-one-chunk.bin":         pattern(ChunkSize, 20),
	}
	for name, data := range files {
		write(t, filepath.Join(dir, filepath.FromSlash(name)), data)
	}
	for _, d := range []string{"empty-dir", ".empty-hidden-dir", "a/empty"} {
		if err := os.MkdirAll(filepath.Join(dir, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
}

// makeHAMT writes a directory well over the sharding threshold (about
// 320 KiB of links), with subdirectories so that shards hold directories too.
func makeHAMT(t testing.TB, dir string) {
	for i := 0; i < 6000; i++ {
		write(t, filepath.Join(dir, fmt.Sprintf("file-%05d.txt", i)), []byte(fmt.Sprintf("%d\n", i)))
	}
	for i := 0; i < 3; i++ {
		write(t, filepath.Join(dir, fmt.Sprintf("sub-%d", i), "index.html"), []byte(fmt.Sprintf("sub %d\n", i)))
	}
}

// makeHAMTEdge writes a directory whose links estimate is
// HAMTShardingSize+extra: hamtEdgeEntries names of 8 bytes and one name of
// 44+extra bytes, each pointing to a distinct raw leaf (36-byte CID).
func makeHAMTEdge(t testing.TB, dir string, extra int) {
	const cidLen = 36
	for i := 0; i < hamtEdgeEntries; i++ {
		write(t, filepath.Join(dir, fmt.Sprintf("f%07d", i)), []byte(fmt.Sprintf("%d\n", i)))
	}
	last := 256<<10 - hamtEdgeEntries*(8+cidLen) - cidLen + extra
	write(t, filepath.Join(dir, "z"+strings.Repeat("x", last-1)), []byte("last\n"))
}

// TestWriteInteropInputs writes the inputs to $VERITY_INTEROP_OUT for the
// reference importers; it does nothing otherwise.
func TestWriteInteropInputs(t *testing.T) {
	out := os.Getenv("VERITY_INTEROP_OUT")
	if out == "" {
		t.Skip("set VERITY_INTEROP_OUT to write the interop inputs")
	}
	for _, in := range interopInputs {
		p := filepath.Join(out, in.name)
		if _, err := os.Stat(p); err == nil {
			t.Fatalf("%s exists; give an empty directory", p)
		}
		in.make(t, p)
	}
}

// TestInteropWithKubo imports each input and compares the root with Kubo's.
func TestInteropWithKubo(t *testing.T) {
	for _, in := range interopInputs {
		t.Run(in.name, func(t *testing.T) {
			t.Parallel()
			if in.large && testing.Short() {
				t.Skip("large input")
			}
			p := filepath.Join(t.TempDir(), in.name)
			in.make(t, p)
			root, s := importDir(t, p, Options{})
			if got := rootShape(t, root, s); got != in.shape {
				t.Errorf("root is a %s, want a %s: the input no longer tests what it should", got, in.shape)
			}
			if root.String() != in.want {
				t.Errorf("root %s, Kubo %s", root, in.want)
			}
		})
	}
}

func rootShape(t *testing.T, root cid.Cid, s *memSink) string {
	t.Helper()
	if root.Prefix().Codec == cid.Raw {
		return "raw"
	}
	nd, err := merkledag.DecodeProtobuf(s.blocks[root.KeyString()])
	if err != nil {
		t.Fatal(err)
	}
	fsn, err := ufs.FSNodeFromBytes(nd.Data())
	if err != nil {
		t.Fatal(err)
	}
	switch fsn.Type() {
	case ufs.TFile:
		return "file"
	case ufs.TDirectory:
		return "dir"
	case ufs.THAMTShard:
		return "hamt"
	}
	return fsn.Type().String()
}
