package car

import (
	"io"

	"github.com/verity-cdn/verity/internal/cid"
)

// Writer writes a CARv1 stream. It does not check that data matches c.
type Writer struct {
	w   io.Writer
	buf []byte
}

// NewWriter writes the header naming roots to w and returns a Writer for the
// blocks.
func NewWriter(w io.Writer, roots []cid.CID) (*Writer, error) {
	h := encodeHeader(roots)
	buf := cid.AppendUvarint(make([]byte, 0, 16+len(h)), uint64(len(h)))
	buf = append(buf, h...)
	if _, err := w.Write(buf); err != nil {
		return nil, err
	}
	return &Writer{w: w}, nil
}

// NewBlockWriter returns a Writer that appends block sections to w, for a
// stream whose header was written separately.
func NewBlockWriter(w io.Writer) *Writer { return &Writer{w: w} }

// Put writes one block section.
func (w *Writer) Put(c cid.CID, data []byte) error { return w.PutRaw(c.Bytes(), data) }

// PutRaw writes one block section for the binary CID cb.
func (w *Writer) PutRaw(cb, data []byte) error {
	w.buf = cid.AppendUvarint(w.buf[:0], uint64(len(cb)+len(data)))
	w.buf = append(w.buf, cb...)
	if _, err := w.w.Write(w.buf); err != nil {
		return err
	}
	_, err := w.w.Write(data)
	return err
}
