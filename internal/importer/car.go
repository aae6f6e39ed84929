package importer

import (
	"context"
	"io"

	"github.com/ipfs/go-cid"

	vcar "github.com/verity-cdn/verity/internal/car"
	vcid "github.com/verity-cdn/verity/internal/cid"
)

// carSink writes block sections (no header).
type carSink struct{ w *vcar.Writer }

func (s *carSink) Put(_ context.Context, c cid.Cid, data []byte) error {
	return s.w.PutRaw(c.Bytes(), data)
}

func writeHeader(w io.Writer, root cid.Cid) error {
	r, _, err := vcid.Decode(root.Bytes())
	if err != nil {
		return err
	}
	_, err = vcar.NewWriter(w, []vcid.CID{r})
	return err
}
