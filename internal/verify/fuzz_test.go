package verify_test

import (
	"bytes"
	"io"
	"testing"

	"github.com/verity-cdn/verity/internal/verify"
)

// FuzzReader feeds arbitrary bytes as the CAR stream: the reader must never
// panic or hang, and whatever it returns without error must be the file.
func FuzzReader(f *testing.F) {
	req, good, data := handSite(f, 1750)
	f.Add(good)
	f.Add(good[:len(good)/2])
	f.Add(append(bytes.Clone(good), good[len(good)-200:]...))
	f.Fuzz(func(t *testing.T, b []byte) {
		r := verify.NewReader(bytes.NewReader(b), req, verify.Options{MaxBlockSize: 1 << 16})
		got, err := io.ReadAll(r)
		if !bytes.HasPrefix(data, got) {
			t.Fatalf("returned %d bytes that are not the file's", len(got))
		}
		if err == nil && !bytes.Equal(got, data) {
			t.Fatalf("silent short read: %d of %d bytes", len(got), len(data))
		}
	})
}
