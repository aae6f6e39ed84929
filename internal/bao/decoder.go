package bao

import (
	"io"

	"github.com/verity-cdn/verity/internal/blake3"
)

// Decoder verifies the combined encoding of one block of known length and
// hash, one chunk group at a time. It reads exactly the encoding (after
// its length prefix) from its reader and nothing more. It is not safe for
// concurrent use.
type Decoder struct {
	r     io.Reader
	size  uint64
	stack []node // subtrees still to read, the next one last
	buf   []byte // the current group
	pbuf  [ParentSize]byte
	err   error // sticky
	done  bool
}

// node is a subtree of the block still to be read and checked against cv.
type node struct {
	cv       [32]byte
	off, len uint64
	root     bool
}

// NewDecoder returns a Decoder for a block of size bytes whose BLAKE3 hash
// is root; r is positioned after the encoding's length prefix (see
// ReadHeader), which the caller has checked to be size.
func NewDecoder(r io.Reader, root [32]byte, size uint64) *Decoder {
	return &Decoder{r: r, size: size, stack: []node{{cv: root, len: size, root: true}}}
}

// Size returns the block's length.
func (d *Decoder) Size() uint64 { return d.size }

// Peek returns the offset and length of the group Next returns next, and
// the bytes of encoding Next reads for it (the parents on the way down and
// the group). With no group left it returns zeros.
func (d *Decoder) Peek() (off, size uint64, need int) {
	if len(d.stack) == 0 || d.err != nil {
		return 0, 0, 0
	}
	nd := d.stack[len(d.stack)-1]
	for nd.len > GroupSize {
		need += ParentSize
		nd.len = split(nd.len)
	}
	return nd.off, nd.len, need + int(nd.len)
}

// Done reports whether every group has been returned: the whole block is
// verified (Next would return io.EOF).
func (d *Decoder) Done() bool { return len(d.stack) == 0 && d.err == nil }

// Next reads and verifies the next chunk group and returns its offset in
// the block and its bytes, valid until the next call. Groups come in
// order; an empty block is one empty group. After the last group Next
// returns io.EOF: the whole block is then verified. A group that fails is
// never returned, and errors are sticky.
func (d *Decoder) Next() (uint64, []byte, error) {
	if d.err != nil {
		return 0, nil, d.err
	}
	if len(d.stack) == 0 {
		return 0, nil, io.EOF
	}
	off, g, err := d.next()
	if err != nil {
		d.err = err
		return 0, nil, err
	}
	return off, g, nil
}

func (d *Decoder) next() (uint64, []byte, error) {
	nd := d.stack[len(d.stack)-1]
	d.stack = d.stack[:len(d.stack)-1]
	// Descend along the left edge, checking each parent and keeping its
	// right child for later.
	for nd.len > GroupSize {
		p := d.pbuf[:]
		if _, err := io.ReadFull(d.r, p); err != nil {
			return 0, nil, readErr(err, "parent", nd.off)
		}
		l, r := [32]byte(p[:32]), [32]byte(p[32:])
		if parentCV(&l, &r, nd.root) != nd.cv {
			return 0, nil, &Error{Err: ErrHashMismatch, At: "parent", Off: nd.off}
		}
		mid := split(nd.len)
		d.stack = append(d.stack, node{cv: r, off: nd.off + mid, len: nd.len - mid})
		nd = node{cv: l, off: nd.off, len: mid}
	}
	if d.buf == nil {
		d.buf = make([]byte, GroupSize)
	}
	g := d.buf[:nd.len]
	if _, err := io.ReadFull(d.r, g); err != nil {
		return 0, nil, readErr(err, "chunk group", nd.off)
	}
	if groupCV(g, nd.off/blake3.ChunkLen, nd.root) != nd.cv {
		return 0, nil, &Error{Err: ErrHashMismatch, At: "chunk group", Off: nd.off}
	}
	return nd.off, g, nil
}
