package importer

import (
	"io"

	chunker "github.com/ipfs/boxo/chunker"
	"github.com/ipfs/go-cid"
	mh "github.com/multiformats/go-multihash"
)

// A file's chunks are read and hashed on a goroutine a few chunks ahead
// of boxo's DAG builder (aheadSplitter), so reading the tree and hashing
// its leaves use one core while the builder and the CAR's writes
// (aheadWriter) use the other. The builder asks the CID of each raw leaf
// of the CidBuilder it was given (aheadBuilder), which takes the digest
// the goroutine computed for the chunk it handed out last. The digest
// is the same function's (multihash.Sum), so the CIDs are unchanged.

// aheadChunks is how many chunks the goroutine reads ahead.
const aheadChunks = 4

// aheadChunk is one chunk read ahead, with its digest.
type aheadChunk struct {
	data []byte
	sum  mh.Multihash // of data, when hashing it worked
	err  error
}

// aheadSplitter is a chunker.Splitter reading from another one on a
// goroutine. stop ends the goroutine; it must be called.
type aheadSplitter struct {
	inner  chunker.Splitter
	mhType uint64
	ch     chan aheadChunk
	quit   chan struct{}
	done   chan struct{}
	last   aheadChunk // the chunk NextBytes returned last
}

var _ chunker.Splitter = (*aheadSplitter)(nil)

func newAheadSplitter(inner chunker.Splitter, mhType uint64) *aheadSplitter {
	s := &aheadSplitter{
		inner:  inner,
		mhType: mhType,
		ch:     make(chan aheadChunk, aheadChunks),
		quit:   make(chan struct{}),
		done:   make(chan struct{}),
	}
	go s.run()
	return s
}

func (s *aheadSplitter) run() {
	defer close(s.done)
	defer close(s.ch)
	for {
		data, err := s.inner.NextBytes()
		c := aheadChunk{data: data, err: err}
		if err == nil {
			c.sum, _ = mh.Sum(data, s.mhType, -1) // on an error the builder hashes it and reports it
		}
		select {
		case s.ch <- c:
		case <-s.quit:
			return
		}
		if err != nil {
			return
		}
	}
}

// NextBytes returns the inner splitter's next chunk, or its error.
func (s *aheadSplitter) NextBytes() ([]byte, error) {
	c, ok := <-s.ch
	if !ok {
		return nil, io.EOF
	}
	s.last = c
	return c.data, c.err
}

func (s *aheadSplitter) Reader() io.Reader { return s.inner.Reader() }

// stop ends the goroutine and waits for it.
func (s *aheadSplitter) stop() {
	close(s.quit)
	<-s.done
}

// sumOf returns the digest computed ahead for data, if data is the chunk
// NextBytes returned last.
func (s *aheadSplitter) sumOf(data []byte) mh.Multihash {
	l := s.last.data
	if s.last.sum == nil || len(l) != len(data) || len(l) == 0 || &l[0] != &data[0] {
		return nil
	}
	return s.last.sum
}

// aheadBuilder is the importer's CID builder, but for raw leaves it takes
// the digest the splitter computed ahead.
type aheadBuilder struct {
	cid.V1Builder
	s *aheadSplitter
}

var _ cid.Builder = aheadBuilder{}

func (b aheadBuilder) Sum(data []byte) (cid.Cid, error) {
	if b.Codec == cid.Raw && b.MhType == b.s.mhType && b.MhLength == -1 {
		if sum := b.s.sumOf(data); sum != nil {
			return cid.NewCidV1(cid.Raw, sum), nil
		}
	}
	return b.V1Builder.Sum(data)
}

func (b aheadBuilder) WithCodec(c uint64) cid.Builder {
	b.Codec = c
	return b
}
