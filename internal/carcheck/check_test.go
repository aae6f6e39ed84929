package carcheck

import (
	"bytes"
	"errors"
	"io"
	"os"
	"path/filepath"
	"testing"

	"github.com/verity-cdn/verity/internal/car"
	"github.com/verity-cdn/verity/internal/cid"
	"github.com/verity-cdn/verity/internal/importer"
)

type section struct {
	c    cid.CID
	data []byte
}

// siteCAR imports a small site (one multi-block file) and returns its CAR
// split into root and sections.
func siteCAR(t testing.TB) (cid.CID, []section) {
	t.Helper()
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "index.html"), []byte("<h1>hi</h1>"), 0o644); err != nil {
		t.Fatal(err)
	}
	big := bytes.Repeat([]byte("0123456789abcdef"), 40<<10) // 640 KiB: 3 chunks
	if err := os.WriteFile(filepath.Join(dir, "big.bin"), big, 0o644); err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	if _, err := importer.WriteCAR(t.Context(), dir, &buf, importer.Options{}); err != nil {
		t.Fatal(err)
	}
	r, err := car.NewReader(&buf, car.Config{})
	if err != nil {
		t.Fatal(err)
	}
	var secs []section
	for {
		c, data, err := r.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		secs = append(secs, section{c, data})
	}
	return r.Roots()[0], secs
}

func writeCAR(t testing.TB, roots []cid.CID, secs []section) []byte {
	t.Helper()
	var buf bytes.Buffer
	w, err := car.NewWriter(&buf, roots)
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range secs {
		if err := w.Put(s.c, s.data); err != nil {
			t.Fatal(err)
		}
	}
	return buf.Bytes()
}

func TestCheck(t *testing.T) {
	root, secs := siteCAR(t)
	leaf := -1
	for i, s := range secs {
		if s.c.Codec == cid.CodecRaw && len(s.data) == 256<<10 {
			leaf = i
		}
	}
	if leaf < 0 {
		t.Fatal("no full-size leaf in the test CAR")
	}
	extra, _ := cid.Sum(cid.CodecRaw, cid.HashBLAKE3, []byte("unrelated"))
	tampered := bytes.Clone(secs[leaf].data)
	tampered[0] ^= 1
	without := func(i int) []section {
		out := append([]section(nil), secs[:i]...)
		return append(out, secs[i+1:]...)
	}
	replace := func(i int, s section) []section {
		out := append([]section(nil), secs...)
		out[i] = s
		return out
	}
	cbor, _ := cid.Sum(cid.CodecDagCBOR, cid.HashBLAKE3, []byte{0xa0})

	good := writeCAR(t, []cid.CID{root}, secs)
	res, err := Check(bytes.NewReader(good), Config{})
	if err != nil {
		t.Fatalf("good CAR: %v", err)
	}
	if !res.Root.Equal(root) || res.Blocks != len(secs) || res.Bytes != int64(len(good)) {
		t.Fatalf("result %+v, want root %s, %d blocks, %d bytes", res, root, len(secs), len(good))
	}

	// A partial CAR (a bucket root's directories) may link to blocks it
	// does not hold.
	if res, err := Check(bytes.NewReader(writeCAR(t, []cid.CID{root}, without(leaf))), Config{Partial: true}); err != nil || res.Blocks != len(secs)-1 {
		t.Fatalf("partial CAR without a leaf: %+v %v", res, err)
	}

	for _, tc := range []struct {
		name string
		car  []byte
		cfg  Config
		code string
		cid  cid.CID
	}{
		{"hash mismatch", writeCAR(t, []cid.CID{root}, replace(leaf, section{secs[leaf].c, tampered})), Config{}, CodeHashMismatch, secs[leaf].c},
		{"missing block", writeCAR(t, []cid.CID{root}, without(leaf)), Config{}, CodeMissingBlock, secs[leaf].c},
		{"missing root", writeCAR(t, []cid.CID{root}, without(len(secs)-1)), Config{}, CodeMissingBlock, root},
		{"extra block", writeCAR(t, []cid.CID{root}, append(append([]section(nil), secs...), section{extra, []byte("unrelated")})), Config{}, CodeExtraBlock, extra},
		{"duplicate block", writeCAR(t, []cid.CID{root}, append(append([]section(nil), secs...), secs[leaf])), Config{}, CodeDuplicate, secs[leaf].c},
		{"two roots", writeCAR(t, []cid.CID{root, extra}, secs), Config{}, CodeRoots, cid.CID{}},
		{"no roots", writeCAR(t, nil, secs), Config{}, CodeRoots, cid.CID{}},
		{"root is a chunk", writeCAR(t, []cid.CID{secs[leaf].c}, secs), Config{}, CodeExtraBlock, cid.CID{}},
		{"cbor block", writeCAR(t, []cid.CID{root}, append(append([]section(nil), secs...), section{cbor, []byte{0xa0}})), Config{}, CodeUnsupported, cbor},
		{"block too large", good, Config{MaxBlockSize: 1000}, CodeTooLarge, cid.CID{}},
		{"truncated", good[:len(good)-10], Config{}, CodeMalformed, cid.CID{}},
		// Partial allows links out of the CAR, not blocks the root does
		// not reach, nor a bad hash.
		{"partial: extra block", writeCAR(t, []cid.CID{root}, append(without(leaf), section{extra, []byte("unrelated")})), Config{Partial: true}, CodeExtraBlock, extra},
		{"partial: hash mismatch", writeCAR(t, []cid.CID{root}, replace(leaf, section{secs[leaf].c, tampered})), Config{Partial: true}, CodeHashMismatch, secs[leaf].c},
		{"partial: missing root", writeCAR(t, []cid.CID{root}, without(len(secs)-1)), Config{Partial: true}, CodeMissingBlock, root},
		{"empty", nil, Config{}, CodeMalformed, cid.CID{}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Check(bytes.NewReader(tc.car), tc.cfg)
			var ce *Error
			if !errors.As(err, &ce) || !errors.Is(err, ErrInvalid) {
				t.Fatalf("err = %v, want *Error", err)
			}
			if ce.Code != tc.code {
				t.Fatalf("code %q (%v), want %q", ce.Code, err, tc.code)
			}
			if tc.cid.Defined() && ce.CID != tc.cid.String() {
				t.Fatalf("CID %q, want %s", ce.CID, tc.cid)
			}
		})
	}
}

func FuzzCheck(f *testing.F) {
	root, secs := siteCAR(f)
	f.Add(writeCAR(f, []cid.CID{root}, secs[:2]))
	f.Add(writeCAR(f, []cid.CID{secs[0].c}, secs[:1]))
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, b []byte) {
		res, err := Check(bytes.NewReader(b), Config{})
		if err == nil && !res.Root.Defined() {
			t.Fatal("accepted without a root")
		}
	})
}
