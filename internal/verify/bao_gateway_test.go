//go:build !js

package verify_test

import (
	"bytes"
	"fmt"
	"io"
	"path/filepath"
	"testing"

	"github.com/verity-cdn/verity/internal/importer"
	"github.com/verity-cdn/verity/internal/verify"
)

// verifyBao verifies the bao16 body of a gateway's CAR.
func verifyBao(t *testing.T, carBytes []byte, req verify.Request) (verify.Entity, []byte, error) {
	r := verify.NewReader(bytes.NewReader(toBao(t, carBytes)), req, verify.Options{Bao: true})
	ent, err := r.Entity()
	if err != nil || ent.Kind == verify.KindDirectory {
		return ent, nil, err
	}
	b, err := io.ReadAll(r)
	return ent, b, err
}

// TestBaoGatewayFiles: every file of the site, as boxo serves it and a
// node transcodes it, verifies as a bao16 body.
func TestBaoGatewayFiles(t *testing.T) {
	dir, files := siteTree(t)
	f := newFixture(t, dir, importer.Options{})
	for p, want := range files {
		req := verify.Request{Root: f.root, Path: splitPath(p)}
		ent, got, err := verifyBao(t, f.fetch(req), req)
		if err != nil || ent.Size != int64(len(want)) || !bytes.Equal(got, want) {
			t.Fatalf("%s: %d bytes, entity %+v, %v", p, len(got), ent, err)
		}
	}
	for _, p := range [][]string{nil, {"css"}} {
		req := verify.Request{Root: f.root, Path: p}
		if ent, _, err := verifyBao(t, f.fetch(req), req); err != nil || ent.Kind != verify.KindDirectory {
			t.Fatalf("%v: %+v %v", p, ent, err)
		}
	}
}

// TestBaoGatewayRanges: ranges over 256 KiB leaves, including ones that
// start and end inside a block, are clipped at the group level.
func TestBaoGatewayRanges(t *testing.T) {
	dir := t.TempDir()
	const chunk = 256 << 10
	data := randBytes(6, 5*chunk+12345)
	writeFile(t, filepath.Join(dir, "v.bin"), data)
	f := newFixture(t, dir, importer.Options{})
	cases := append(rangeCases(int64(len(data)), chunk),
		verify.ByteRange{From: chunk + 20000, To: chunk + 20001},     // inside one group
		verify.ByteRange{From: 2*chunk + 16383, To: 2*chunk + 16384}, // across groups
		verify.ByteRange{From: 3*chunk - 1, To: 4*chunk + 5},
	)
	for _, rg := range cases {
		t.Run(fmt.Sprintf("%d:%d", rg.From, rg.To), func(t *testing.T) {
			req := verify.Request{Root: f.root, Path: []string{"v.bin"}, Range: &rg}
			ent, got, err := verifyBao(t, f.fetch(req), req)
			if err != nil {
				t.Fatal(err)
			}
			if want := sliceRange(data, &rg); ent.Size != int64(len(data)) || !bytes.Equal(got, want) {
				t.Fatalf("got %d bytes, want %d", len(got), len(want))
			}
		})
	}
}

// BenchmarkVerifyBao is BenchmarkVerify over the bao16 body.
func BenchmarkVerifyBao(b *testing.B) {
	dir := b.TempDir()
	data := randBytes(3, 16<<20)
	writeFile(b, filepath.Join(dir, "f.bin"), data)
	f := newFixture(b, dir, importer.Options{})
	req := verify.Request{Root: f.root, Path: []string{"f.bin"}}
	body := toBao(b, f.fetch(req))
	b.SetBytes(int64(len(data)))
	for b.Loop() {
		r := verify.NewReader(bytes.NewReader(body), req, verify.Options{Bao: true})
		n, err := io.Copy(io.Discard, r)
		if err != nil || n != int64(len(data)) {
			b.Fatal(n, err)
		}
	}
}
