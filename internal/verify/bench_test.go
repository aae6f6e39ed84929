//go:build !js

package verify_test

import (
	"bytes"
	"io"
	"path/filepath"
	"testing"

	"github.com/verity-cdn/verity/internal/importer"
	"github.com/verity-cdn/verity/internal/verify"
)

// BenchmarkVerify measures verifying a 16 MiB file CAR as served by boxo's
// gateway (64 BLAKE3 leaves of 256 KiB): MB/s of file bytes.
func BenchmarkVerify(b *testing.B) {
	dir := b.TempDir()
	data := randBytes(3, 16<<20)
	writeFile(b, filepath.Join(dir, "f.bin"), data)
	f := newFixture(b, dir, importer.Options{})
	req := verify.Request{Root: f.root, Path: []string{"f.bin"}}
	carBytes := f.fetch(req)
	b.SetBytes(int64(len(data)))
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		r := verify.NewReader(bytes.NewReader(carBytes), req, verify.Options{})
		n, err := io.Copy(io.Discard, r)
		if err != nil || n != int64(len(data)) {
			b.Fatal(n, err)
		}
	}
}
