package importer

import (
	"context"
	"io"

	"github.com/ipfs/go-cid"

	vcar "github.com/verity-cdn/verity/internal/car"
	vcid "github.com/verity-cdn/verity/internal/cid"
)

// carSink writes block sections (no header) to w.
type carSink struct {
	w   io.Writer
	buf []byte
}

func (s *carSink) Put(_ context.Context, c cid.Cid, data []byte) error {
	cb := c.Bytes()
	s.buf = vcid.AppendUvarint(s.buf[:0], uint64(len(cb)+len(data)))
	s.buf = append(s.buf, cb...)
	if _, err := s.w.Write(s.buf); err != nil {
		return err
	}
	_, err := s.w.Write(data)
	return err
}

func writeHeader(w io.Writer, root cid.Cid) error {
	r, _, err := vcid.Decode(root.Bytes())
	if err != nil {
		return err
	}
	_, err = vcar.NewWriter(w, []vcid.CID{r})
	return err
}
