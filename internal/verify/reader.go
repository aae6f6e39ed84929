package verify

import (
	"errors"
	"io"
	"strconv"

	"github.com/verity-cdn/verity/internal/bao"
	"github.com/verity-cdn/verity/internal/car"
	"github.com/verity-cdn/verity/internal/cid"
	"github.com/verity-cdn/verity/internal/errfmt"
)

// DefaultMaxBlockSize is the default for Options.MaxBlockSize.
const DefaultMaxBlockSize = 2 << 20

// maxDepth bounds the depth of a file DAG.
const maxDepth = 64

// Kind is the kind of the entity at the end of the path.
type Kind int

// Entity kinds.
const (
	KindFile Kind = iota + 1
	KindDirectory
	KindSymlink
)

func (k Kind) String() string {
	switch k {
	case KindFile:
		return "file"
	case KindDirectory:
		return "directory"
	case KindSymlink:
		return "symlink"
	}
	return "unknown"
}

// Entity describes the resolved entity.
type Entity struct {
	CID  cid.CID
	Kind Kind
	Size int64 // file size in bytes (files and raw blocks); symlink target length
}

// Options tune a Reader. Zero values are sensible defaults.
type Options struct {
	MaxBlockSize int                       // default 2 MiB
	OnBlock      func(c cid.CID, size int) // called after each verified block
	// Bao: the stream is a bao16 body (docs/protocol.md §3.2), in which
	// each raw BLAKE3 block comes as its Bao encoding. The raw leaves of a
	// file are then released one 16 KiB chunk group at a time, each as
	// soon as it is verified; OnBlock still fires once per whole block.
	Bao bool
	// Slices: the stream is a bao16-slices body (docs/protocol.md §3.3):
	// as Bao, except that a raw leaf of the file the range covers only in
	// part comes as the Bao slice of the part (LeafSlice), which is all
	// of it the Reader accepts. OnBlock counts such a leaf whole, as the
	// node does. It implies Bao.
	Slices bool
}

// Stats counts what a Reader has verified so far.
type Stats struct {
	Blocks int   // blocks read from the stream and verified
	Bytes  int64 // their total size
}

// Reader yields the verified bytes of the requested range. It is not safe
// for concurrent use.
type Reader struct {
	src  io.Reader
	req  Request
	opts Options

	cr       *car.Reader
	header   cid.CID // the root the CAR header names
	stats    Stats
	err      error // sticky
	resolved bool
	entity   Entity
	dir      map[string][]byte // a directory entity's verified blocks by CID key (Lookup)

	// file state
	start, end uint64 // requested bytes [start, end)
	stack      []*frame
	pending    []byte // verified bytes ready for Read
	done       bool   // traversal complete and end of stream checked

	// the raw leaf being streamed group by group (Options.Bao)
	leaf    *bao.Decoder
	leafCID cid.CID
	leafPos uint64 // absolute offset of the leaf in the file
	tail    []byte // the range's last bytes, held while their block completes
}

// frame is a file DAG node being read.
type frame struct {
	children []child
	i        int
	pos      uint64 // absolute offset of children[i]
}

type child struct {
	c    cid.CID
	size uint64
}

// NewReader starts verifying the CAR stream car against req. Nothing is read
// until Entity or Read is called.
func NewReader(car io.Reader, req Request, opts Options) *Reader {
	if opts.MaxBlockSize <= 0 {
		opts.MaxBlockSize = DefaultMaxBlockSize
	}
	opts.Bao = opts.Bao || opts.Slices
	return &Reader{src: car, req: req, opts: opts}
}

// Stats returns the number of blocks and bytes verified so far.
func (r *Reader) Stats() Stats { return r.stats }

// Entity blocks until the path is resolved and the entity's root block
// verified. For directories and symlinks it also checks that the stream
// ends where the traversal does.
func (r *Reader) Entity() (Entity, error) {
	if r.err != nil {
		return Entity{}, r.err
	}
	if !r.resolved {
		if err := r.resolve(); err != nil {
			r.err = err
			return Entity{}, err
		}
		r.resolved = true
	}
	return r.entity, nil
}

// Read reads verified entity bytes: the file's bytes within the requested
// range, or a symlink's target. It returns io.EOF only after the traversal is
// complete and the stream has ended.
func (r *Reader) Read(p []byte) (int, error) {
	if _, err := r.Entity(); err != nil {
		return 0, err
	}
	if r.entity.Kind == KindDirectory {
		r.err = wrapf(ErrUnsupported, "%s is a directory", r.entity.CID)
		return 0, r.err
	}
	for len(r.pending) == 0 {
		if r.done {
			return 0, io.EOF
		}
		if err := r.advance(); err != nil {
			r.err = err
			return 0, err
		}
	}
	n := copy(p, r.pending)
	r.pending = r.pending[n:]
	// Groups of a streamed leaf that have already arrived go out in the
	// same Read, so a fast stream is not cut into 16 KiB pieces; nothing
	// waits for bytes that have not arrived.
	for n < len(p) && len(r.pending) == 0 && r.leafBuffered() {
		if err := r.advanceLeaf(); err != nil {
			r.err = err // returned by the next Read, after these bytes
			break
		}
		m := copy(p[n:], r.pending)
		r.pending = r.pending[m:]
		n += m
	}
	return n, nil
}

// leafBuffered reports whether the next group of the leaf being streamed
// can be verified from bytes already received, and is not the range's
// last (which waits for the rest of its block).
func (r *Reader) leafBuffered() bool {
	if r.leaf == nil {
		return false
	}
	off, size, need := r.leaf.Peek()
	return r.leafPos+off+size < r.end && need <= r.cr.Buffered()
}

// open reads the CAR header.
func (r *Reader) open() error {
	cr, err := car.NewReader(r.src, car.Config{MaxSectionSize: r.opts.MaxBlockSize + 256})
	if err != nil {
		return mapCARError(err, cid.CID{})
	}
	roots := cr.Roots()
	if len(roots) != 1 {
		return wrapf(ErrMalformed, "CAR header names %d roots, want 1", len(roots))
	}
	r.cr = cr
	r.header = roots[0]
	return nil
}

func mapCARError(err error, expected cid.CID) error {
	var sentinel error
	switch {
	case errors.Is(err, car.ErrTruncated):
		sentinel = ErrTruncated
	case errors.Is(err, car.ErrTooLarge):
		sentinel = ErrTooLarge
	case errors.Is(err, car.ErrMalformed), errors.Is(err, car.ErrVersion):
		sentinel = ErrMalformed
	default:
		// A transport failure: the stream could not be completed.
		sentinel = ErrTruncated
	}
	if expected.Defined() {
		return &BlockError{CID: expected, Err: sentinel, Detail: err.Error()}
	}
	return errfmt.Errorf("%w: %w", sentinel, err)
}

// isEmptyIdentity reports whether c is the empty identity CID boxo names as
// the root of a not-found response.
func isEmptyIdentity(c cid.CID) bool {
	return c.Version == 1 && c.HashCode == cid.HashIdentity && len(c.Digest) == 0
}

// next returns the verified bytes of the block expected next.
func (r *Reader) next(expected cid.CID) ([]byte, error) {
	if expected.HashCode == cid.HashIdentity {
		// Never sent: the CID carries the bytes.
		if err := expected.Verify(expected.Digest); err != nil {
			return nil, &BlockError{CID: expected, Err: ErrMalformed, Detail: err.Error()}
		}
		return expected.Digest, nil
	}
	if expected.Codec != cid.CodecRaw && expected.Codec != cid.CodecDagPB {
		return nil, &BlockError{CID: expected, Err: ErrUnsupported, Detail: errfmt.Sprintf("codec 0x%x", expected.Codec)}
	}
	if r.opts.Bao && car.BaoSection(expected) {
		return r.nextBao(expected)
	}
	c, data, err := r.cr.Next()
	if err == io.EOF {
		return nil, &BlockError{CID: expected, Err: ErrTruncated, Detail: "stream ended"}
	}
	if err != nil {
		return nil, mapCARError(err, expected)
	}
	if !c.Equal(expected) {
		return nil, &BlockError{CID: expected, Got: c, Err: ErrUnexpectedBlock}
	}
	if len(data) > r.opts.MaxBlockSize {
		return nil, &BlockError{CID: c, Err: ErrTooLarge, Detail: errfmt.Sprintf("%d bytes", len(data))}
	}
	if err := c.Verify(data); err != nil {
		if errors.Is(err, cid.ErrHashMismatch) {
			return nil, &BlockError{CID: c, Err: ErrHashMismatch}
		}
		return nil, &BlockError{CID: c, Err: ErrUnsupported, Detail: err.Error()}
	}
	r.verified(c, len(data))
	return data, nil
}

// verified counts a whole verified block.
func (r *Reader) verified(c cid.CID, size int) {
	r.stats.Blocks++
	r.stats.Bytes += int64(size)
	if r.opts.OnBlock != nil {
		r.opts.OnBlock(c, size)
	}
}

// nextBao returns the verified bytes of the raw block expected next, sent
// as its Bao encoding, once all of it is verified (its length is only
// authenticated by its last group).
func (r *Reader) nextBao(expected cid.CID) ([]byte, error) {
	dec, err := r.openBao(expected, -1, window{})
	if err != nil {
		return nil, err
	}
	data := make([]byte, 0, dec.Size())
	for {
		_, g, err := dec.Next()
		if err == io.EOF {
			r.verified(expected, len(data))
			return data, nil
		}
		if err != nil {
			return nil, baoError(err, expected)
		}
		data = append(data, g...)
	}
}

// window is the part of a raw leaf sent as a Bao slice (LeafSlice).
type window struct {
	off, len uint64
	slice    bool
}

// openBao reads the head of the next section, which must be expected's,
// and the length prefix of its Bao encoding (or of its slice for w, when
// w.slice), which must be size unless size is negative, and returns the
// decoder of its chunk groups.
func (r *Reader) openBao(expected cid.CID, size int64, w window) (*bao.Decoder, error) {
	c, plen, err := r.cr.NextSection()
	if err == io.EOF {
		return nil, &BlockError{CID: expected, Err: ErrTruncated, Detail: "stream ended"}
	}
	if err != nil {
		return nil, mapCARError(err, expected)
	}
	if !c.Equal(expected) {
		return nil, &BlockError{CID: expected, Got: c, Err: ErrUnexpectedBlock}
	}
	p := r.cr.Payload()
	n, err := bao.ReadHeader(p)
	if err != nil {
		return nil, baoError(err, c)
	}
	want, what := bao.EncodedSize(n), "Bao encoding"
	if w.slice {
		want, _ = bao.SliceSize(n, w.off, w.len)
		what = "Bao slice [" + utoa(w.off) + ", " + utoa(w.off+w.len) + ")"
	}
	var detail string
	switch {
	case n > uint64(r.opts.MaxBlockSize):
		return nil, &BlockError{CID: c, Err: ErrTooLarge, Detail: "Bao encoding of a block of " + utoa(n) + " bytes"}
	case size >= 0 && n != uint64(size):
		detail = "raw leaf of " + utoa(n) + " bytes, parent says " + utoa(uint64(size))
	case want != uint64(plen):
		detail = "section of " + utoa(uint64(plen)) + " bytes for the " + what + " of " + utoa(n)
	case w.slice:
		return bao.NewSliceDecoder(p, [32]byte(c.Digest), n, w.off, w.len), nil
	default:
		return bao.NewDecoder(p, [32]byte(c.Digest), n), nil
	}
	return nil, &BlockError{CID: c, Err: ErrMalformed, Detail: detail}
}

func utoa(n uint64) string { return strconv.FormatUint(n, 10) }

// baoError maps an error of a Bao decoder reading block c.
func baoError(err error, c cid.CID) error {
	switch {
	case errors.Is(err, bao.ErrHashMismatch):
		return &BlockError{CID: c, Err: ErrHashMismatch, Detail: err.Error()}
	case errors.Is(err, bao.ErrMalformed):
		return &BlockError{CID: c, Err: ErrMalformed, Detail: err.Error()}
	}
	return mapCARError(err, c) // truncated, or the transport failed
}

// finish checks that the stream ends where the traversal does.
func (r *Reader) finish() error {
	c, _, err := r.cr.Next()
	if err == io.EOF {
		r.done = true
		return nil
	}
	if err != nil {
		return mapCARError(err, cid.CID{})
	}
	return &BlockError{CID: c, Got: c, Err: ErrUnexpectedBlock, Detail: "after the traversal completed"}
}
