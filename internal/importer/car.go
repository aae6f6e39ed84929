package importer

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"

	"github.com/ipfs/go-cid"
	"github.com/multiformats/go-multihash"

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

// carFile is a writer WriteCAR can write a CAR into in place.
type carFile interface {
	io.WriteSeeker
	io.ReaderAt
	Truncate(size int64) error
}

// writeCARInPlace is WriteCAR into f, from its current offset, without a
// spool: room is left for the header, the blocks follow, then the header
// is written into the room. Every root the importer makes is a CIDv1 with
// a 32-byte BLAKE3 digest, so the room is sized on such a CID; a root of
// another length (never made today) has the blocks moved to fit.
func writeCARInPlace(ctx context.Context, path string, f carFile, opts Options) (cid.Cid, error) {
	start, err := f.Seek(0, io.SeekCurrent)
	if err != nil {
		return cid.Undef, err
	}
	mh, err := multihash.Encode(make([]byte, 32), multihash.BLAKE3)
	if err != nil {
		return cid.Undef, err
	}
	room, err := headerOf(cid.NewCidV1(cid.DagProtobuf, mh))
	if err != nil {
		return cid.Undef, err
	}
	if _, err := f.Write(make([]byte, len(room))); err != nil {
		return cid.Undef, err
	}
	// The CAR's writes go on on a goroutine while the tree is read and
	// hashed (aheadwriter.go).
	bw := newAheadWriter(f)
	defer bw.Close()
	root, err := Import(ctx, path, &carSink{w: vcar.NewBlockWriter(bw)}, opts)
	if err != nil {
		return cid.Undef, err
	}
	if err := bw.Close(); err != nil {
		return cid.Undef, err
	}
	end, err := f.Seek(0, io.SeekCurrent)
	if err != nil {
		return cid.Undef, err
	}
	hdr, err := headerOf(root)
	if err != nil {
		return cid.Undef, err
	}
	if len(hdr) != len(room) {
		return root, moveBlocks(f, start, int64(len(room)), end, hdr)
	}
	if _, err := f.Seek(start, io.SeekStart); err != nil {
		return cid.Undef, err
	}
	if _, err := f.Write(hdr); err != nil {
		return cid.Undef, err
	}
	_, err = f.Seek(end, io.SeekStart)
	return root, err
}

// moveBlocks rewrites the CAR written in f from start, whose blocks follow
// room bytes, with the header hdr in front of them instead.
func moveBlocks(f carFile, start, room, end int64, hdr []byte) error {
	spool, err := os.CreateTemp("", "verity-import-*.car")
	if err != nil {
		return err
	}
	defer os.Remove(spool.Name())
	defer spool.Close()
	if _, err := io.Copy(spool, io.NewSectionReader(f, start+room, end-start-room)); err != nil {
		return fmt.Errorf("importer: move blocks: %w", err)
	}
	if _, err := f.Seek(start, io.SeekStart); err != nil {
		return err
	}
	if _, err := f.Write(hdr); err != nil {
		return err
	}
	if _, err := spool.Seek(0, io.SeekStart); err != nil {
		return err
	}
	if _, err := io.Copy(f, spool); err != nil {
		return fmt.Errorf("importer: move blocks: %w", err)
	}
	at, err := f.Seek(0, io.SeekCurrent)
	if err != nil {
		return err
	}
	return f.Truncate(at)
}

// headerOf is the CARv1 header (with its length prefix) naming root.
func headerOf(root cid.Cid) ([]byte, error) {
	var b bytes.Buffer
	if err := writeHeader(&b, root); err != nil {
		return nil, err
	}
	return b.Bytes(), nil
}
