//go:build !js

package car

import (
	"bytes"
	"context"
	"io"
	"testing"

	gocid "github.com/ipfs/go-cid"
	carv2 "github.com/ipld/go-car/v2"
	"github.com/ipld/go-car/v2/storage"

	"github.com/verity-cdn/verity/internal/cid"
)

// TestInteropGoCAR reads a CAR written by go-car and has go-car read ours.
func TestInteropGoCAR(t *testing.T) {
	bs := makeBlocks(t, 4)
	root, _ := gocid.Cast(bs[0].c.Bytes())
	var buf bytes.Buffer
	w, err := storage.NewWritable(&buf, []gocid.Cid{root}, carv2.WriteAsCarV1(true), carv2.AllowDuplicatePuts(true))
	if err != nil {
		t.Fatal(err)
	}
	for _, b := range bs {
		c, _ := gocid.Cast(b.c.Bytes())
		if err := w.Put(context.Background(), c.KeyString(), b.data); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Finalize(); err != nil {
		t.Fatal(err)
	}
	roots, got, err := readAll(buf.Bytes(), Config{})
	if err != nil || len(roots) != 1 || !roots[0].Equal(bs[0].c) || len(got) != len(bs) {
		t.Fatalf("reading go-car output: roots %v, %d blocks, %v", roots, len(got), err)
	}

	ours := writeCAR(t, []cid.CID{bs[0].c}, bs)
	br, err := carv2.NewBlockReader(bytes.NewReader(ours))
	if err != nil {
		t.Fatal(err)
	}
	if len(br.Roots) != 1 || br.Roots[0] != root {
		t.Fatalf("go-car roots %v", br.Roots)
	}
	n := 0
	for {
		blk, err := br.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(blk.RawData(), bs[n].data) {
			t.Fatalf("block %d differs", n)
		}
		n++
	}
	if n != len(bs) {
		t.Fatalf("go-car read %d blocks", n)
	}
}
