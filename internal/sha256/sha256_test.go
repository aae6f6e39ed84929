package sha256

import (
	stdsha256 "crypto/sha256"
	"encoding/hex"
	"testing"
)

// FIPS 180-4 examples and the empty input.
var vectors = []struct{ in, hex string }{
	{"", "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"},
	{"abc", "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"},
	{"abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq", "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1"},
}

func TestVectors(t *testing.T) {
	for _, v := range vectors {
		got := Sum256([]byte(v.in))
		if hex.EncodeToString(got[:]) != v.hex {
			t.Errorf("%q: %x, want %s", v.in, got, v.hex)
		}
	}
}

// TestMatchesStdlib compares with crypto/sha256 over every length up to
// 300 bytes (all padding cases) and a few large inputs.
func TestMatchesStdlib(t *testing.T) {
	data := make([]byte, 1<<20+77)
	for i := range data {
		data[i] = byte(i*13 + i>>9)
	}
	lens := []int{1 << 10, 64 << 10, 256 << 10, len(data)}
	for n := 0; n <= 300; n++ {
		lens = append(lens, n)
	}
	for _, n := range lens {
		if Sum256(data[:n]) != stdsha256.Sum256(data[:n]) {
			t.Fatalf("len %d: differs from crypto/sha256", n)
		}
	}
}

func FuzzMatchesStdlib(f *testing.F) {
	for _, v := range vectors {
		f.Add([]byte(v.in))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		if Sum256(data) != stdsha256.Sum256(data) {
			t.Fatalf("len %d: differs from crypto/sha256", len(data))
		}
	})
}

// BenchmarkSum256 hashes one 256 KiB block.
func BenchmarkSum256(b *testing.B) {
	data := make([]byte, 256<<10)
	b.SetBytes(int64(len(data)))
	for b.Loop() {
		Sum256(data)
	}
}

func BenchmarkStdlibSum256(b *testing.B) {
	data := make([]byte, 256<<10)
	b.SetBytes(int64(len(data)))
	for b.Loop() {
		stdsha256.Sum256(data)
	}
}
