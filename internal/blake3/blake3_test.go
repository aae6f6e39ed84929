package blake3

import (
	"bytes"
	"encoding/hex"
	"testing"

	zeebo "github.com/zeebo/blake3"
)

// input is the official test vectors' input: byte i is i mod 251.
func input(n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(i % 251)
	}
	return b
}

// Official test vectors (BLAKE3-team/BLAKE3 test_vectors.json, hash mode,
// the first 32 bytes).
var vectors = []struct {
	n   int
	hex string
}{
	{0, "af1349b9f5f9a1a6a0404dea36dcc9499bcb25c9adc112b7cc9a93cae41f3262"},
	{1, "2d3adedff11b61f14c886e35afa036736dcd87a74d27b5c1510225d0f592e213"},
	{1023, "10108970eeda3eb932baac1428c7a2163b0e924c9a9e25b35bba72b28f70bd11"},
	{1024, "42214739f095a406f3fc83deb889744ac00df831c10daa55189b5d121c855af7"},
	{1025, "d00278ae47eb27b34faecf67b4fe263f82d5412916c1ffd97c8cb7fb814b8444"},
	{2048, "e776b6028c7cd22a4d0ba182a8bf62205d2ef576467e838ed6f2529b85fba24a"},
	{3072, "b98cb0ff3623be03326b373de6b9095218513e64f1ee2edd2525c7ad1e5cffd2"},
	{102400, "bc3e3d41a1146b069abffad3c0d44860cf664390afce4d9661f7902e7943e085"},
}

func TestVectors(t *testing.T) {
	for _, v := range vectors {
		got := Sum256(input(v.n))
		if hex.EncodeToString(got[:]) != v.hex {
			t.Errorf("len %d: %x, want %s", v.n, got, v.hex)
		}
	}
}

// TestMatchesZeebo compares with github.com/zeebo/blake3 over lengths around
// every chunk and tree boundary, and output lengths up to 200 bytes.
func TestMatchesZeebo(t *testing.T) {
	data := input(70 << 10)
	var lens []int
	for _, base := range []int{0, 64, 1024, 2048, 3072, 4096, 5 << 10, 8 << 10, 31 << 10, 32 << 10, 33 << 10, 64 << 10} {
		for d := -65; d <= 65; d++ {
			if n := base + d; n >= 0 && n <= len(data) {
				lens = append(lens, n)
			}
		}
	}
	for _, n := range lens {
		want := zeeboSum(data[:n], 200)
		got := make([]byte, 200)
		Sum(got, data[:n])
		if !bytes.Equal(got, want) {
			t.Fatalf("len %d: differs from zeebo/blake3", n)
		}
		if s := Sum256(data[:n]); !bytes.Equal(s[:], want[:32]) {
			t.Fatalf("len %d: Sum256 differs", n)
		}
	}
}

func zeeboSum(data []byte, n int) []byte {
	h := zeebo.New()
	h.Write(data)
	out := make([]byte, n)
	h.Digest().Read(out)
	return out
}

func FuzzMatchesZeebo(f *testing.F) {
	for _, v := range vectors {
		f.Add(input(v.n), uint8(32))
	}
	f.Add([]byte("verity"), uint8(129))
	f.Fuzz(func(t *testing.T, data []byte, n uint8) {
		got := make([]byte, n)
		Sum(got, data)
		if want := zeeboSum(data, int(n)); !bytes.Equal(got, want) {
			t.Fatalf("len %d out %d: differs from zeebo/blake3", len(data), n)
		}
	})
}

// BenchmarkSum256 hashes one 256 KiB block, the importer's chunk size.
func BenchmarkSum256(b *testing.B) {
	data := input(256 << 10)
	b.SetBytes(int64(len(data)))
	for b.Loop() {
		Sum256(data)
	}
}

// BenchmarkZeeboSum256 is the same with github.com/zeebo/blake3 (SIMD
// natively, its portable code under wasm).
func BenchmarkZeeboSum256(b *testing.B) {
	data := input(256 << 10)
	b.SetBytes(int64(len(data)))
	for b.Loop() {
		zeebo.Sum256(data)
	}
}

// treeRoot hashes data as a tree of subtrees of at most group chunks,
// split as the specification splits (the left subtree holds the largest
// power of two of chunks below the total), with ChainingValue and Parent.
func treeRoot(data []byte, group int) [32]byte {
	var rec func(d []byte, counter uint64, root bool) [32]byte
	rec = func(d []byte, counter uint64, root bool) [32]byte {
		if len(d) <= group*ChunkLen {
			if root {
				return Sum256(d)
			}
			return ChainingValue(d, counter)
		}
		chunks := (len(d) + ChunkLen - 1) / ChunkLen
		left := 1
		for left*2 < chunks {
			left *= 2
		}
		l := rec(d[:left*ChunkLen], counter, false)
		r := rec(d[left*ChunkLen:], counter+uint64(left), false)
		return Parent(&l, &r, root)
	}
	return rec(data, 0, true)
}

// TestTreeNodes rebuilds the hash from ChainingValue and Parent for
// subtrees of 1, 2 and 16 chunks: it must be zeebo/blake3's.
func TestTreeNodes(t *testing.T) {
	data := input(300 << 10)
	for _, group := range []int{1, 2, 16} {
		for _, n := range []int{0, 1, 1023, 1024, 1025, 2048, 3072, 16383, 16384, 16385, 32768, 65536, 200000, 262143, 262144, 262145, 300 << 10} {
			want := zeeboSum(data[:n], 32)
			if got := treeRoot(data[:n], group); !bytes.Equal(got[:], want) {
				t.Fatalf("group %d, len %d: tree root %x, want %x", group, n, got, want)
			}
		}
	}
}

func FuzzTreeNodes(f *testing.F) {
	f.Add(input(17000), uint8(4))
	f.Add([]byte{}, uint8(0))
	f.Fuzz(func(t *testing.T, data []byte, g uint8) {
		group := 1 << (g % 6)
		want := zeeboSum(data, 32)
		if got := treeRoot(data, group); !bytes.Equal(got[:], want) {
			t.Fatalf("group %d, len %d: differs from zeebo/blake3", group, len(data))
		}
	})
}
