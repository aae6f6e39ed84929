package blake3mh

import (
	"bytes"
	"crypto/rand"
	"testing"

	mh "github.com/multiformats/go-multihash"
	luke "lukechampine.com/blake3"
)

func TestSameAsLukechampine(t *testing.T) {
	for _, n := range []int{0, 1, 63, 64, 1023, 1024, 1025, 64 << 10, 300 << 10} {
		data := make([]byte, n)
		_, _ = rand.Read(data)
		for _, size := range []int{-1, 1, 16, 32, 33, 64, 128} {
			got, err := mh.Sum(data, mh.BLAKE3, size)
			if err != nil {
				t.Fatal(err)
			}
			l := size
			if l == -1 {
				l = 32
			}
			h := luke.New(l, nil)
			h.Write(data)
			want := h.Sum(nil)
			dec, err := mh.Decode(got)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(dec.Digest, want) {
				t.Fatalf("n=%d size=%d: digest differs from lukechampine.com/blake3", n, size)
			}
		}
	}
	if _, ok := New(0); ok {
		t.Fatal("size 0 accepted")
	}
	if _, ok := New(129); ok {
		t.Fatal("size 129 accepted")
	}
}

// TestRegistered checks that go-multihash now hands out zeebo's hasher.
func TestRegistered(t *testing.T) {
	h, err := mh.GetHasher(mh.BLAKE3)
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := h.(*hasher); !ok {
		t.Fatalf("registered hasher is %T", h)
	}
}
