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
	r      io.Reader
	size   uint64
	lo, hi uint64 // the window of a slice (Window); the whole block otherwise
	stack  []node // subtrees still to read, the next one last
	buf    []byte // the current group
	pbuf   [ParentSize]byte
	err    error // sticky
	done   bool
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
	return &Decoder{r: r, size: size, hi: size, stack: []node{{cv: root, len: size, root: true}}}
}

// NewSliceDecoder returns a Decoder for the slice of a block of size bytes
// whose BLAKE3 hash is root, for [off, off+length) (see AppendSlice): it
// reads and verifies only the groups of Window(size, off, length), in
// order, and the parents above them. r is positioned after the slice's
// length prefix, which the caller has checked to be size. An empty window
// gives a Decoder whose Next fails with ErrMalformed.
func NewSliceDecoder(r io.Reader, root [32]byte, size, off, length uint64) *Decoder {
	lo, hi, ok := Window(size, off, length)
	if !ok {
		return &Decoder{r: r, size: size, err: &Error{Err: ErrMalformed, At: "slice window", Off: off}}
	}
	return &Decoder{r: r, size: size, lo: lo, hi: hi, stack: []node{{cv: root, len: size, root: true}}}
}

// child returns the child of nd (longer than a group) that the descent
// takes next, and whether the right one is left for later: the left child
// unless it is outside the window.
func (d *Decoder) child(nd node, l, r [32]byte) (next node, right node, keep bool) {
	mid := split(nd.len)
	left := node{cv: l, off: nd.off, len: mid}
	right = node{cv: r, off: nd.off + mid, len: nd.len - mid}
	if !overlaps(left.off, left.len, d.lo, d.hi) {
		return right, node{}, false
	}
	return left, right, overlaps(right.off, right.len, d.lo, d.hi)
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
		nd, _, _ = d.child(nd, [32]byte{}, [32]byte{})
	}
	return nd.off, nd.len, need + int(nd.len)
}

// Done reports whether every group has been returned: the whole block (or
// the slice's window) is verified (Next would return io.EOF).
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
		next, right, keep := d.child(nd, l, r)
		if keep {
			d.stack = append(d.stack, right)
		}
		nd = next
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
