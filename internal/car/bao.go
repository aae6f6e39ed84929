package car

import (
	"io"

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
// checked against its CID on the way (the encoding computes its hash).
//
// It holds one section at a time and writes each one, transcoded, to the
// underlying writer as soon as its last byte has been written to it.
type BaoWriter struct {
	w          io.Writer
	maxSection uint64

	header  bool   // the header has been passed on
	lenBuf  []byte // the length varint being read
	want    uint64 // bytes of the current header or section still expected
	reading bool   // a length was read; its bytes are being collected
	sec     []byte // the current section
	out     []byte
	err     error // sticky
}

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
			b.sec = b.sec[:0]
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
		b.sec = append(b.sec, q...)
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

// section writes the complete section in b.sec, transcoded.
func (b *BaoWriter) section() error {
	c, n, err := cid.Decode(b.sec)
	if err != nil {
		return malformed("section CID: %v", err)
	}
	if !BaoSection(c) {
		b.out = append(cid.AppendUvarint(b.out[:0], uint64(len(b.sec))), b.sec...)
		_, err := b.w.Write(b.out)
		return err
	}
	data := b.sec[n:]
	b.out = cid.AppendUvarint(b.out[:0], uint64(n)+bao.EncodedSize(uint64(len(data))))
	b.out = append(b.out, b.sec[:n]...)
	var root [32]byte
	b.out, root = bao.Encode(b.out, data)
	if string(root[:]) != string(c.Digest) {
		return malformed("block %s does not hash to its CID", c)
	}
	_, err = b.w.Write(b.out)
	return err
}

// Close reports ErrTruncated if the stream written so far ends inside the
// header or a section. It does not close the underlying writer.
func (b *BaoWriter) Close() error {
	if b.err != nil {
		return b.err
	}
	if !b.header || b.reading || len(b.lenBuf) > 0 {
		return errfmt.Errorf("%w: the CAR stream ended inside the header or a section", ErrTruncated)
	}
	return nil
}

func (b *BaoWriter) fail(err error) (int, error) {
	b.err = err
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
