package car

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"testing"

	"github.com/verity-cdn/verity/internal/cid"
)

type block struct {
	c    cid.CID
	data []byte
}

func makeBlocks(t testing.TB, n int) []block {
	var bs []block
	for i := 0; i < n; i++ {
		data := bytes.Repeat([]byte(fmt.Sprintf("block %d;", i)), i*10+1)
		c, err := cid.Sum(cid.CodecRaw, cid.HashBLAKE3, data)
		if err != nil {
			t.Fatal(err)
		}
		bs = append(bs, block{c, data})
	}
	return bs
}

func writeCAR(t testing.TB, roots []cid.CID, bs []block) []byte {
	var buf bytes.Buffer
	w, err := NewWriter(&buf, roots)
	if err != nil {
		t.Fatal(err)
	}
	for _, b := range bs {
		if err := w.Put(b.c, b.data); err != nil {
			t.Fatal(err)
		}
	}
	return buf.Bytes()
}

func readAll(b []byte, cfg Config) ([]cid.CID, []block, error) {
	r, err := NewReader(bytes.NewReader(b), cfg)
	if err != nil {
		return nil, nil, err
	}
	var out []block
	for {
		c, data, err := r.Next()
		if err == io.EOF {
			return r.Roots(), out, nil
		}
		if err != nil {
			return r.Roots(), out, err
		}
		out = append(out, block{c, data})
	}
}

func TestRoundTrip(t *testing.T) {
	bs := makeBlocks(t, 5)
	for _, roots := range [][]cid.CID{nil, {bs[0].c}, {bs[0].c, bs[1].c}} {
		b := writeCAR(t, roots, bs)
		gotRoots, got, err := readAll(b, Config{})
		if err != nil {
			t.Fatal(err)
		}
		if len(gotRoots) != len(roots) {
			t.Fatalf("roots %v, want %v", gotRoots, roots)
		}
		for i := range roots {
			if !gotRoots[i].Equal(roots[i]) {
				t.Fatalf("root %d = %s", i, gotRoots[i])
			}
		}
		if len(got) != len(bs) {
			t.Fatalf("%d blocks, want %d", len(got), len(bs))
		}
		for i := range bs {
			if !got[i].c.Equal(bs[i].c) || !bytes.Equal(got[i].data, bs[i].data) {
				t.Fatalf("block %d differs", i)
			}
		}
	}
}

func TestErrors(t *testing.T) {
	bs := makeBlocks(t, 3)
	good := writeCAR(t, []cid.CID{bs[0].c}, bs)
	hdrLen := int(good[0]) + 1
	cases := []struct {
		name string
		in   []byte
		cfg  Config
		err  error
	}{
		{"empty", nil, Config{}, ErrTruncated},
		{"header cut", good[:hdrLen-3], Config{}, ErrTruncated},
		{"section cut", good[:len(good)-1], Config{}, ErrTruncated},
		{"length cut", append(append([]byte{}, good[:hdrLen]...), 0x80), Config{}, ErrTruncated},
		{"section too large", good, Config{MaxSectionSize: 20}, ErrTooLarge},
		{"header too large", good, Config{MaxHeaderSize: 10}, ErrTooLarge},
		{"zero header", []byte{0x00}, Config{}, ErrMalformed},
		{"not a map", []byte{0x01, 0x01}, Config{}, ErrMalformed},
		{"gateway error text", append(append([]byte{}, good...), "\n\n[Gateway Error: CAR stream truncated, response is incomplete]"...), Config{}, ErrMalformed},
		{"zero section", append(append([]byte{}, good...), 0x00), Config{}, ErrMalformed},
		{"version 2", append([]byte{byte(len(versionHeader(2)))}, versionHeader(2)...), Config{}, ErrVersion},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, _, err := readAll(tc.in, tc.cfg)
			if !errors.Is(err, tc.err) {
				t.Fatalf("err = %v, want %v", err, tc.err)
			}
		})
	}
}

func versionHeader(v byte) []byte {
	b := []byte{0xa2}
	b = appendText(b, "roots")
	b = append(b, 0x80)
	b = appendText(b, "version")
	return append(b, v)
}

func TestHeaderUnknownKeysAndOrder(t *testing.T) {
	bs := makeBlocks(t, 1)
	cb := bs[0].c.Bytes()
	h := []byte{0xa3}
	h = appendText(h, "version")
	h = append(h, 0x01)
	h = appendText(h, "extra")
	h = append(h, 0x82, 0x01, 0x61, 'x')
	h = appendText(h, "roots")
	h = append(h, 0x81)
	h = appendHead(h, cborTag, tagCID)
	h = appendHead(h, cborBytes, uint64(len(cb)+1))
	h = append(h, 0)
	h = append(h, cb...)
	in := append(cid.AppendUvarint(nil, uint64(len(h))), h...)
	roots, _, err := readAll(in, Config{})
	if err != nil || len(roots) != 1 || !roots[0].Equal(bs[0].c) {
		t.Fatalf("roots %v err %v", roots, err)
	}
}
