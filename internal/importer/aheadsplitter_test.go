package importer

import (
	"bytes"
	"io"
	"math/rand/v2"
	"testing"

	chunker "github.com/ipfs/boxo/chunker"
	"github.com/ipfs/go-cid"
)

// The splitter hands out the inner splitter's chunks in order, then its
// end; the builder gives each chunk it handed out last the CID computed
// ahead, the same as hashing it in line, and hashes anything else.
func TestAheadSplitterChunksAndCIDs(t *testing.T) {
	data := make([]byte, 4*ChunkSize+5)
	rng := rand.New(rand.NewPCG(3, 4))
	for i := range data {
		data[i] = byte(rng.Uint32())
	}
	s := newAheadSplitter(chunker.NewSizeSplitter(bytes.NewReader(data), ChunkSize), CidBuilder.MhType)
	defer s.stop()
	b := aheadBuilder{V1Builder: CidBuilder, s: s}.WithCodec(cid.Raw)
	inline := CidBuilder.WithCodec(cid.Raw)
	var got []byte
	for {
		chunk, err := s.NextBytes()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, chunk...)
		if s.sumOf(chunk) == nil {
			t.Fatalf("chunk at %d: no digest computed ahead", len(got)-len(chunk))
		}
		if s.sumOf(bytes.Clone(chunk)) != nil {
			t.Fatal("a copy of the chunk took the digest computed ahead")
		}
		c, err := b.Sum(chunk)
		if err != nil {
			t.Fatal(err)
		}
		want, _ := inline.Sum(chunk)
		if !c.Equals(want) {
			t.Fatalf("chunk at %d: CID %s, hashed in line %s", len(got)-len(chunk), c, want)
		}
		other := bytes.Repeat([]byte{1}, 10)
		if c, _ := b.Sum(other); !c.Equals(must(inline.Sum(other))) {
			t.Fatal("bytes other than the last chunk: wrong CID")
		}
	}
	if !bytes.Equal(got, data) {
		t.Fatalf("the chunks hold %d bytes, not the %d read", len(got), len(data))
	}
	if _, err := s.NextBytes(); err != io.EOF {
		t.Fatalf("after the end: %v, want io.EOF", err)
	}
}

// A splitter stopped before its end ends its goroutine.
func TestAheadSplitterStopsEarly(t *testing.T) {
	s := newAheadSplitter(chunker.NewSizeSplitter(bytes.NewReader(make([]byte, 20*ChunkSize)), ChunkSize), CidBuilder.MhType)
	if _, err := s.NextBytes(); err != nil {
		t.Fatal(err)
	}
	s.stop() // returns only once the goroutine has
}

func must(c cid.Cid, err error) cid.Cid {
	if err != nil {
		panic(err)
	}
	return c
}
