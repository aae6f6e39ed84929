package car

import (
	"bufio"
	"errors"
	"io"

	"github.com/verity-cdn/verity/internal/cid"
	"github.com/verity-cdn/verity/internal/errfmt"
)

// Reader reads a CARv1 stream section by section.
type Reader struct {
	r     *bufio.Reader
	cfg   Config
	roots []cid.CID
	err   error // sticky
	n     int64 // bytes consumed
	left  int   // unread payload bytes of the section NextSection opened
}

// NewReader reads and decodes the header of the CARv1 stream r.
func NewReader(r io.Reader, cfg Config) (*Reader, error) {
	cr := &Reader{r: bufio.NewReaderSize(r, 64<<10), cfg: cfg.normalize()}
	hlen, err := cr.readLen(uint64(cr.cfg.MaxHeaderSize), true)
	if err != nil {
		if errors.Is(err, io.EOF) {
			return nil, errfmt.Errorf("%w: empty stream", ErrTruncated)
		}
		return nil, errfmt.Errorf("header: %w", err)
	}
	if hlen == 0 {
		return nil, malformed("empty header")
	}
	hb := make([]byte, hlen)
	if err := cr.readFull(hb); err != nil {
		return nil, errfmt.Errorf("header: %w", err)
	}
	roots, err := decodeHeader(hb)
	if err != nil {
		return nil, err
	}
	cr.roots = roots
	return cr, nil
}

// Roots returns the roots named in the header.
func (r *Reader) Roots() []cid.CID { return r.roots }

// Offset returns the number of bytes consumed so far.
func (r *Reader) Offset() int64 { return r.n }

// Next returns the next block. It returns io.EOF when the stream ends
// cleanly between sections. The data slice is owned by the caller. Errors
// are sticky.
func (r *Reader) Next() (cid.CID, []byte, error) {
	if r.err != nil {
		return cid.CID{}, nil, r.err
	}
	c, data, err := r.next()
	if err != nil {
		r.err = err
	}
	return c, data, err
}

func (r *Reader) next() (cid.CID, []byte, error) {
	if err := r.skipPayload(); err != nil {
		return cid.CID{}, nil, err
	}
	slen, err := r.readLen(uint64(r.cfg.MaxSectionSize), true)
	if err != nil {
		return cid.CID{}, nil, err
	}
	if slen == 0 {
		return cid.CID{}, nil, malformed("empty section")
	}
	sec := make([]byte, slen)
	if err := r.readFull(sec); err != nil {
		return cid.CID{}, nil, err
	}
	c, n, err := cid.Decode(sec)
	if err != nil {
		return cid.CID{}, nil, malformed("section CID: %v", err)
	}
	return c, sec[n:len(sec):len(sec)], nil
}

// NextSection reads the next section's length and CID, and returns the
// CID and the length of the section's payload (the bytes after the CID:
// the block, or its encoding in a bao16 body), which the caller reads
// from Payload. What the caller leaves unread is skipped by the next call
// to Next or NextSection. It returns io.EOF when the stream ends cleanly
// between sections. Errors are sticky.
func (r *Reader) NextSection() (cid.CID, int, error) {
	if r.err != nil {
		return cid.CID{}, 0, r.err
	}
	c, n, err := r.nextSection()
	if err != nil {
		r.err = err
	}
	return c, n, err
}

func (r *Reader) nextSection() (cid.CID, int, error) {
	if err := r.skipPayload(); err != nil {
		return cid.CID{}, 0, err
	}
	slen, err := r.readLen(uint64(r.cfg.MaxSectionSize), true)
	if err != nil {
		return cid.CID{}, 0, err
	}
	if slen == 0 {
		return cid.CID{}, 0, malformed("empty section")
	}
	// A CID is at most four varints and a digest.
	head, err := r.r.Peek(int(min(slen, maxCIDBytes)))
	if err != nil {
		if err == io.EOF || err == io.ErrUnexpectedEOF {
			return cid.CID{}, 0, errSectionCut
		}
		return cid.CID{}, 0, err
	}
	c, n, err := cid.Decode(head)
	if err != nil {
		return cid.CID{}, 0, malformed("section CID: %v", err)
	}
	_, _ = r.r.Discard(n)
	r.n += int64(n)
	r.left = int(slen) - n
	return c, r.left, nil
}

const maxCIDBytes = 4*10 + cid.MaxDigestLen

// Buffered returns the number of bytes received and not yet read: that
// many can be read without waiting for the underlying reader.
func (r *Reader) Buffered() int { return r.r.Buffered() }

// Payload returns a reader of the payload of the section NextSection
// opened. It ends with io.EOF at the payload's end; a stream that ends
// before is ErrTruncated.
func (r *Reader) Payload() io.Reader { return payloadReader{r} }

type payloadReader struct{ r *Reader }

func (p payloadReader) Read(b []byte) (int, error) {
	r := p.r
	if r.err != nil {
		return 0, r.err
	}
	if r.left == 0 {
		return 0, io.EOF
	}
	if len(b) > r.left {
		b = b[:r.left]
	}
	n, err := r.r.Read(b)
	r.n += int64(n)
	r.left -= n
	if err == io.EOF && r.left > 0 {
		err = errSectionCut
	}
	if err != nil && err != io.EOF {
		r.err = err
	}
	if err == io.EOF {
		err = nil
	}
	return n, err
}

// skipPayload discards what is left of the current section's payload.
func (r *Reader) skipPayload() error {
	if r.left == 0 {
		return nil
	}
	n, err := r.r.Discard(r.left)
	r.n += int64(n)
	r.left -= n
	if err == io.EOF {
		return errSectionCut
	}
	return err
}

// errSectionCut: the stream ended inside a section read by NextSection.
var errSectionCut = errfmt.Errorf("%w: the stream ended inside a section", ErrTruncated)

// readLen reads a section-length varint. At a clean end of stream it returns
// io.EOF if eofOK, otherwise ErrTruncated.
func (r *Reader) readLen(max uint64, eofOK bool) (uint64, error) {
	var x uint64
	var s uint
	for i := 0; ; i++ {
		b, err := r.r.ReadByte()
		if err != nil {
			if err == io.EOF {
				if i == 0 && eofOK {
					return 0, io.EOF
				}
				return 0, errfmt.Errorf("%w: inside a length prefix", ErrTruncated)
			}
			return 0, err
		}
		r.n++
		if i == 9 {
			return 0, malformed("length varint too long")
		}
		if b < 0x80 {
			if b == 0 && i > 0 {
				return 0, malformed("non-minimal length varint")
			}
			x |= uint64(b) << s
			break
		}
		x |= uint64(b&0x7f) << s
		s += 7
	}
	if x > max {
		return 0, errfmt.Errorf("%w: length %d exceeds limit %d", ErrTooLarge, x, max)
	}
	return x, nil
}

func (r *Reader) readFull(b []byte) error {
	n, err := io.ReadFull(r.r, b)
	r.n += int64(n)
	if err == io.EOF || err == io.ErrUnexpectedEOF {
		return errfmt.Errorf("%w: %d of %d bytes of a section", ErrTruncated, n, len(b))
	}
	return err
}
