package car

import (
	"errors"
	"io"
	"sync"

	"github.com/verity-cdn/verity/internal/bao"
	"github.com/verity-cdn/verity/internal/cid"
	"github.com/verity-cdn/verity/internal/errfmt"
)

// BaoSection reports whether a section for c carries, in a bao16 body
// (docs/protocol.md §3.2), the block's Bao combined encoding instead of
// the block: c is a raw block (0x55) with a 32-byte BLAKE3 multihash.
func BaoSection(c cid.CID) bool {
	return c.Version == 1 && c.Codec == cid.CodecRaw && c.HashCode == cid.HashBLAKE3 && len(c.Digest) == 32
}

// BaoWriter turns a CARv1 stream written to it into the bao16 body of
// docs/protocol.md §3.2: the same header and sections in the same order,
// except that each section for which BaoSection holds carries the block's
// Bao combined encoding (bao.Encode: 16 KiB chunk groups) in place of the
// block, its length prefix counting the encoding. Each such block is
// checked against its CID on the way (the encoding computes its hash),
// unless its outboard encoding comes from the writer's Outboards.
//
// It holds one section at a time and writes each one, transcoded, to the
// underlying writer as soon as its last byte has been written to it. Its
// buffers come from a pool shared by all BaoWriters and go back to it
// when it fails or is closed.
type BaoWriter struct {
	w          io.Writer
	maxSection uint64
	outboards  Outboards
	slicer     Slicer
	ob         []byte // an outboard the writer computed (outboard)

	header  bool   // the header has been passed on
	lenBuf  []byte // the length varint being read
	want    uint64 // bytes of the current header or section still expected
	reading bool   // a length was read; its bytes are being collected
	bufs    *baoBuffers
	err     error // sticky
}

// Outboards gives a BaoWriter the outboard encodings (bao.AppendOutboard)
// of blocks already checked against their CIDs.
type Outboards interface {
	// Outboard returns the outboard encoding of the n-byte block whose
	// BLAKE3 digest is digest, computed from the very bytes the writer is
	// given for it, if it holds one. The slice is read before the
	// section is written, not after.
	Outboard(digest []byte, n int) ([]byte, bool)
}

// UseOutboards has b take the parents of each block o holds an outboard
// encoding for from o instead of hashing the block: whoever fills o checks
// each block against its CID when it computes its outboard, and the block
// reaches b unchanged (the node's store does, node/outboard.go). Blocks o
// does not hold are hashed and checked as without it.
func (b *BaoWriter) UseOutboards(o Outboards) { b.outboards = o }

// Slicer tells a BaoWriter which raw BLAKE3 blocks it sends as a Bao
// slice (the bao16-slices encoding, docs/protocol.md §3.3): verify's
// SlicePlan, which follows the CAR's file to know where each leaf sits.
type Slicer interface {
	// Section is given each section of the CAR in order, before it is
	// written, and returns the window [off, off+length) of the block to
	// send as a slice, with ok true when it goes as one.
	Section(c cid.CID, block []byte) (off, length uint64, ok bool)
}

// UseSlices has b send each raw BLAKE3 block s says to as the Bao slice
// of its window instead of its whole encoding (bao.AppendSlice).
func (b *BaoWriter) UseSlices(s Slicer) { b.slicer = s }

// baoBuffers are a BaoWriter's section and output buffers.
type baoBuffers struct {
	sec []byte // the current section
	out []byte // the transcoded section
}

// baoPool holds the buffers of BaoWriters that failed or were closed, so
// that each stream does not grow its own to a block's size.
var baoPool = sync.Pool{New: func() any { return new(baoBuffers) }}

// maxPooled bounds the buffers put back in the pool: those grown for
// blocks of more than 1 MiB (the content model's are 256 KiB) are dropped.
const maxPooled = 1<<20 + 64<<10

// errClosed is the sticky error of a closed BaoWriter.
var errClosed = errors.New("car: write to a closed BaoWriter")

// NewBaoWriter returns a BaoWriter writing to w, refusing sections longer
// than maxSection bytes (0: DefaultMaxSectionSize).
func NewBaoWriter(w io.Writer, maxSection int) *BaoWriter {
	if maxSection <= 0 {
		maxSection = DefaultMaxSectionSize
	}
	return &BaoWriter{w: w, maxSection: uint64(maxSection)}
}

// Write consumes CARv1 bytes. Errors are sticky: those of the underlying
// writer, ErrMalformed or ErrTooLarge for a stream that is not a CARv1
// stream within the limits, or a block that does not hash to its CID.
func (b *BaoWriter) Write(p []byte) (int, error) {
	if b.err != nil {
		return 0, b.err
	}
	n := len(p)
	for len(p) > 0 {
		if !b.reading {
			c := p[0]
			p = p[1:]
			b.lenBuf = append(b.lenBuf, c)
			if c >= 0x80 {
				if len(b.lenBuf) == 9 {
					return b.fail(malformed("length varint too long"))
				}
				continue
			}
			x, _, err := uvarint(b.lenBuf)
			if err != nil {
				return b.fail(err)
			}
			if !b.header {
				// The header passes through unchanged.
				if _, err := b.w.Write(b.lenBuf); err != nil {
					return b.fail(err)
				}
			} else if x == 0 || x > b.maxSection {
				return b.fail(errfmt.Errorf("%w: section of %d bytes (limit %d)", ErrTooLarge, x, b.maxSection))
			}
			b.want, b.reading = x, true
			if b.bufs == nil {
				b.bufs = baoPool.Get().(*baoBuffers)
			}
			b.bufs.sec = b.bufs.sec[:0]
			continue
		}
		if !b.header {
			q := p[:min(uint64(len(p)), b.want)]
			if _, err := b.w.Write(q); err != nil {
				return b.fail(err)
			}
			p = p[len(q):]
			b.want -= uint64(len(q))
			if b.want == 0 {
				b.header, b.reading, b.lenBuf = true, false, b.lenBuf[:0]
			}
			continue
		}
		q := p[:min(uint64(len(p)), b.want)]
		b.bufs.sec = append(b.bufs.sec, q...)
		p = p[len(q):]
		b.want -= uint64(len(q))
		if b.want == 0 {
			if err := b.section(); err != nil {
				return b.fail(err)
			}
			b.reading, b.lenBuf = false, b.lenBuf[:0]
		}
	}
	return n, nil
}

// section writes the complete section in b.bufs.sec, transcoded.
func (b *BaoWriter) section() error {
	sec := b.bufs.sec
	c, n, err := cid.Decode(sec)
	if err != nil {
		return malformed("section CID: %v", err)
	}
	out := b.bufs.out[:0]
	defer func() { b.bufs.out = out }()
	data := sec[n:]
	var off, length uint64
	var slice bool
	if b.slicer != nil {
		off, length, slice = b.slicer.Section(c, data)
	}
	if !BaoSection(c) {
		out = append(cid.AppendUvarint(out, uint64(len(sec))), sec...)
		_, err := b.w.Write(out)
		return err
	}
	size := bao.EncodedSize(uint64(len(data)))
	if slice {
		var ok bool
		if size, ok = bao.SliceSize(uint64(len(data)), off, length); !ok {
			return malformed("block %s: an empty slice", c)
		}
	}
	ob, err := b.outboard(c, data)
	if err != nil {
		return err
	}
	out = cid.AppendUvarint(out, uint64(n)+size)
	out = append(out, sec[:n]...)
	if slice {
		out, err = bao.AppendSlice(out, data, ob, off, length)
	} else {
		out, err = bao.AppendCombined(out, data, ob)
	}
	if err != nil {
		return malformed("block %s: its outboard: %v", c, err)
	}
	_, err = b.w.Write(out)
	return err
}

// outboard returns the outboard encoding of the raw BLAKE3 block data
// whose CID is c: the one b.outboards keeps, or one computed here (into
// b.ob), once the block's hash is checked against c.
func (b *BaoWriter) outboard(c cid.CID, data []byte) ([]byte, error) {
	if b.outboards != nil {
		if ob, ok := b.outboards.Outboard(c.Digest, len(data)); ok {
			return ob, nil
		}
	}
	var root [32]byte
	b.ob, root = bao.AppendOutboard(b.ob[:0], data)
	if string(root[:]) != string(c.Digest) {
		return nil, malformed("block %s does not hash to its CID", c)
	}
	return b.ob, nil
}

// Close reports ErrTruncated if the stream written so far ends inside the
// header or a section. It does not close the underlying writer. Writes
// after Close fail.
func (b *BaoWriter) Close() error {
	if b.err != nil {
		return b.err
	}
	if !b.header || b.reading || len(b.lenBuf) > 0 {
		err := errfmt.Errorf("%w: the CAR stream ended inside the header or a section", ErrTruncated)
		b.fail(err)
		return err
	}
	b.fail(errClosed)
	return nil
}

// fail makes err sticky and gives the buffers back: nothing is written
// after it.
func (b *BaoWriter) fail(err error) (int, error) {
	b.err = err
	if bufs := b.bufs; bufs != nil {
		b.bufs = nil
		if cap(bufs.sec) <= maxPooled && cap(bufs.out) <= maxPooled {
			baoPool.Put(bufs)
		}
	}
	return 0, err
}

// uvarint decodes a minimal unsigned varint that fills b.
func uvarint(b []byte) (uint64, int, error) {
	var x uint64
	for i, c := range b {
		if c < 0x80 {
			if c == 0 && i > 0 {
				return 0, 0, malformed("non-minimal length varint")
			}
			return x | uint64(c)<<(7*i), i + 1, nil
		}
		x |= uint64(c&0x7f) << (7 * i)
	}
	return 0, 0, malformed("length varint cut")
}
