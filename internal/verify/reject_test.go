//go:build !js

package verify_test

import (
	"bytes"
	"errors"
	"io"
	"path/filepath"
	"testing"

	"github.com/verity-cdn/verity/internal/cid"
	"github.com/verity-cdn/verity/internal/importer"
	"github.com/verity-cdn/verity/internal/unixfs"
	"github.com/verity-cdn/verity/internal/verify"
)

// depth2 serves a depth-2 file inside a directory and returns the request,
// the good CAR and the file bytes.
func depth2(t *testing.T) (verify.Request, []byte, []byte) {
	dir := t.TempDir()
	data := randBytes(7, 40*1024+5)
	writeFile(t, filepath.Join(dir, "d", "f.bin"), data)
	f := newFixture(t, dir, importer.Options{ChunkSize: 1024, MaxLinks: 8})
	req := verify.Request{Root: f.root, Path: []string{"d", "f.bin"}}
	return req, f.fetch(req), data
}

// readChecked verifies and checks that whatever was returned before an
// error is a prefix of want.
func readChecked(t *testing.T, b []byte, req verify.Request, want []byte) error {
	t.Helper()
	r := verify.NewReader(bytes.NewReader(b), req, verify.Options{})
	got, err := io.ReadAll(r)
	if !bytes.HasPrefix(want, got) {
		t.Fatalf("returned %d bytes that are not a prefix of the file", len(got))
	}
	if err == nil && !bytes.Equal(got, want) {
		t.Fatalf("no error but %d of %d bytes", len(got), len(want))
	}
	return err
}

func TestStructure(t *testing.T) {
	req, good, data := depth2(t)
	roots, secs := blocksOf(t, good)
	if len(roots) != 1 {
		t.Fatalf("roots %v", roots)
	}
	// root dir, d, file root, intermediate nodes, leaves
	var pb, raw int
	for _, s := range secs {
		if s.c.Codec == cid.CodecDagPB {
			pb++
		} else {
			raw++
		}
	}
	if raw != 41 || pb < 2+1+6 {
		t.Fatalf("%d dag-pb and %d raw blocks; want a depth-2 DAG", pb, raw)
	}
	if roots[0].Equal(req.Root) {
		t.Logf("gateway names the request root in the CAR header")
	}
	if err := readChecked(t, good, req, data); err != nil {
		t.Fatal(err)
	}
}

func TestRejectFlippedByte(t *testing.T) {
	req, good, data := depth2(t)
	roots, secs := blocksOf(t, good)
	for i := range secs {
		bad := make([]section, len(secs))
		copy(bad, secs)
		d := bytes.Clone(secs[i].data)
		d[len(d)/2] ^= 0x01
		bad[i].data = d
		err := readChecked(t, assemble(t, roots, bad), req, data)
		var be *verify.BlockError
		if !errors.Is(err, verify.ErrHashMismatch) || !errors.As(err, &be) || !be.CID.Equal(secs[i].c) {
			t.Fatalf("block %d flipped: err = %v", i, err)
		}
	}
}

func TestRejectReordered(t *testing.T) {
	req, good, data := depth2(t)
	roots, secs := blocksOf(t, good)
	for _, ij := range [][2]int{{0, 1}, {2, 3}, {len(secs) - 2, len(secs) - 1}, {4, 20}} {
		bad := make([]section, len(secs))
		copy(bad, secs)
		bad[ij[0]], bad[ij[1]] = bad[ij[1]], bad[ij[0]]
		if err := readChecked(t, assemble(t, roots, bad), req, data); !errors.Is(err, verify.ErrUnexpectedBlock) {
			t.Fatalf("swap %v: err = %v", ij, err)
		}
	}
}

func TestRejectMissingBlock(t *testing.T) {
	req, good, data := depth2(t)
	roots, secs := blocksOf(t, good)
	for i := range secs {
		bad := append(append([]section{}, secs[:i]...), secs[i+1:]...)
		err := readChecked(t, assemble(t, roots, bad), req, data)
		want := verify.ErrUnexpectedBlock
		if i == len(secs)-1 {
			want = verify.ErrTruncated
		}
		if !errors.Is(err, want) {
			t.Fatalf("without block %d: err = %v, want %v", i, err, want)
		}
	}
}

func TestRejectTruncated(t *testing.T) {
	req, good, data := depth2(t)
	for cut := 0; cut < len(good); cut += 97 {
		err := readChecked(t, good[:cut], req, data)
		if !errors.Is(err, verify.ErrTruncated) {
			t.Fatalf("cut at %d of %d: err = %v", cut, len(good), err)
		}
	}
	// The gateway's in-band truncation marker.
	_, secs := blocksOf(t, good)
	roots, _ := blocksOf(t, good)
	partial := assemble(t, roots, secs[:len(secs)/2])
	partial = append(partial, "\n\n[Gateway Error: CAR stream truncated, response is incomplete]"...)
	if err := readChecked(t, partial, req, data); err == nil {
		t.Fatal("accepted a stream with the truncation marker")
	}
}

func TestRejectDuplicateAndExtra(t *testing.T) {
	req, good, data := depth2(t)
	roots, secs := blocksOf(t, good)
	// Entity root sent twice.
	dup := append(append(append([]section{}, secs[:3]...), secs[2]), secs[3:]...)
	if err := readChecked(t, assemble(t, roots, dup), req, data); !errors.Is(err, verify.ErrUnexpectedBlock) {
		t.Fatalf("duplicate entity root: %v", err)
	}
	// Request root sent twice at the start.
	dup = append([]section{secs[0]}, secs...)
	if err := readChecked(t, assemble(t, roots, dup), req, data); !errors.Is(err, verify.ErrUnexpectedBlock) {
		t.Fatalf("duplicate root: %v", err)
	}
	// An unrelated, valid block after the end.
	extra := []byte("unrelated")
	c, _ := cid.Sum(cid.CodecRaw, cid.HashBLAKE3, extra)
	more := append(append([]section{}, secs...), section{c, extra})
	if err := readChecked(t, assemble(t, roots, more), req, data); !errors.Is(err, verify.ErrUnexpectedBlock) {
		t.Fatalf("extra block: %v", err)
	}
	// ... and in the middle.
	mid := append(append(append([]section{}, secs[:5]...), section{c, extra}), secs[5:]...)
	if err := readChecked(t, assemble(t, roots, mid), req, data); !errors.Is(err, verify.ErrUnexpectedBlock) {
		t.Fatalf("extra block in the middle: %v", err)
	}
	// A header naming something else.
	if err := readChecked(t, assemble(t, []cid.CID{c}, secs), req, data); !errors.Is(err, verify.ErrMalformed) {
		t.Fatalf("foreign header root: %v", err)
	}
}

// TestNotFoundNeedsProof: a gateway claiming absence of an existing name is
// caught, and an absent name is only reported with the directory as proof.
func TestNotFoundNeedsProof(t *testing.T) {
	req, good, _ := depth2(t)
	roots, secs := blocksOf(t, good)
	empty, _ := cid.Sum(cid.CodecRaw, cid.HashIdentity, nil)
	// Not-found header but only the root: the lookup of "d" succeeds, then
	// the stream ends.
	_, err := verify.NewReader(bytes.NewReader(assemble(t, []cid.CID{empty}, secs[:1])), req, verify.Options{}).Entity()
	if !errors.Is(err, verify.ErrTruncated) {
		t.Fatalf("false not-found: %v", err)
	}
	req.Path = []string{"d", "absent"}
	_, err = verify.NewReader(bytes.NewReader(assemble(t, []cid.CID{empty}, secs[:2])), req, verify.Options{}).Entity()
	if !errors.Is(err, verify.ErrNotFound) {
		t.Fatalf("proven absence: %v", err)
	}
	_ = roots
	n, err := unixfs.DecodeNode(secs[1].data)
	if err != nil || len(n.Links) != 1 {
		t.Fatalf("dir d: %v", err)
	}
}
