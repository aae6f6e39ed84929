package sha512

import (
	stdsha512 "crypto/sha512"
	"encoding/hex"
	"testing"
)

// FIPS 180-4 examples (one block, two blocks) and the empty input.
var vectors = []struct{ in, hex string }{
	{"", "cf83e1357eefb8bdf1542850d66d8007d620e4050b5715dc83f4a921d36ce9ce47d0d13c5d85f2b0ff8318d2877eec2f63b931bd47417a81a538327af927da3e"},
	{"abc", "ddaf35a193617abacc417349ae20413112e6fa4e89a97ea20a9eeee64b55d39a2192992a274fc1a836ba3c23a3feebbd454d4423643ce80e2a9ac94fa54ca49f"},
	{"abcdefghbcdefghicdefghijdefghijkefghijklfghijklmghijklmnhijklmnoijklmnopjklmnopqklmnopqrlmnopqrsmnopqrstnopqrstu",
		"8e959b75dae313da8cf4f72814fc143f8f7779c6eb9f7fa17299aeadb6889018501d289e4900f7e4331b99dec4b5433ac7d329eeb6dd26545e96e55b874be909"},
}

func TestVectors(t *testing.T) {
	for _, v := range vectors {
		got := Sum512([]byte(v.in))
		if hex.EncodeToString(got[:]) != v.hex {
			t.Errorf("%q: %x, want %s", v.in, got, v.hex)
		}
	}
}

// TestMatchesStdlib compares with crypto/sha512 over every length up to
// 400 bytes (all padding cases, one to three blocks) and a few large inputs.
func TestMatchesStdlib(t *testing.T) {
	data := make([]byte, 1<<20+77)
	for i := range data {
		data[i] = byte(i*13 + i>>9)
	}
	lens := []int{1 << 10, 64 << 10, 256 << 10, len(data)}
	for n := 0; n <= 400; n++ {
		lens = append(lens, n)
	}
	for _, n := range lens {
		if Sum512(data[:n]) != stdsha512.Sum512(data[:n]) {
			t.Fatalf("len %d: differs from crypto/sha512", n)
		}
	}
}

func FuzzMatchesStdlib(f *testing.F) {
	for _, v := range vectors {
		f.Add([]byte(v.in))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		if Sum512(data) != stdsha512.Sum512(data) {
			t.Fatalf("len %d: differs from crypto/sha512", len(data))
		}
	})
}

// BenchmarkSum512 hashes one receipt-sized message.
func BenchmarkSum512(b *testing.B) {
	data := make([]byte, 145)
	b.SetBytes(int64(len(data)))
	for b.Loop() {
		Sum512(data)
	}
}

func BenchmarkStdlibSum512(b *testing.B) {
	data := make([]byte, 145)
	b.SetBytes(int64(len(data)))
	for b.Loop() {
		stdsha512.Sum512(data)
	}
}
