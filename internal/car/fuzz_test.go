package car

import (
	"bytes"
	"testing"

	"github.com/verity-cdn/verity/internal/cid"
)

func FuzzReader(f *testing.F) {
	bs := makeBlocks(f, 3)
	good := writeCAR(f, []cid.CID{bs[0].c}, bs)
	f.Add(good)
	f.Add(good[:len(good)-5])
	f.Add(writeCAR(f, nil, nil))
	f.Add(append(append([]byte{}, good...), "\n\n[Gateway Error]"...))
	f.Fuzz(func(t *testing.T, in []byte) {
		roots, got, err := readAll(in, Config{MaxSectionSize: 1 << 16})
		if err != nil {
			return
		}
		// Whatever reads cleanly re-encodes to the same bytes when it was
		// written canonically.
		var buf bytes.Buffer
		w, werr := NewWriter(&buf, roots)
		if werr != nil {
			t.Fatal(werr)
		}
		for _, b := range got {
			if err := w.Put(b.c, b.data); err != nil {
				t.Fatal(err)
			}
		}
		roots2, got2, err := readAll(buf.Bytes(), Config{MaxSectionSize: 1 << 16})
		if err != nil || len(roots2) != len(roots) || len(got2) != len(got) {
			t.Fatalf("re-read: %v", err)
		}
	})
}
