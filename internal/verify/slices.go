package verify

import (
	"github.com/verity-cdn/verity/internal/bao"
	"github.com/verity-cdn/verity/internal/cid"
	"github.com/verity-cdn/verity/internal/unixfs"
)

// Slices (docs/protocol.md §3.2, the bao16-slices block encoding): a raw
// leaf of a file that the requested range covers only in part is sent as
// the Bao slice of that part. The node and the client each compute the
// window from the range and the leaf's place in the file, with LeafSlice;
// the client never takes a window from the stream.

// LeafSlice returns the part of the raw leaf [pos, pos+size) of a file
// that the range [start, end) covers, as an offset into the leaf and a
// length, and whether the leaf goes as a slice: the range covers part of
// it, and that part widened to whole chunk groups (bao.Window) is not the
// whole leaf. A leaf that does not go as a slice goes whole.
func LeafSlice(pos, size, start, end uint64) (off, length uint64, ok bool) {
	lo, hi := max(pos, start), min(pos+size, end)
	if hi <= lo {
		return 0, 0, false
	}
	wlo, whi, _ := bao.Window(size, lo-pos, hi-lo)
	if wlo == 0 && whi == size {
		return 0, 0, false
	}
	return lo - pos, hi - lo, true
}

// A SlicePlan follows, section by section, the plain CAR a node writes
// for a ranged request and tells its block encoder which raw leaves go as
// slices (car.Slicer). It walks the file as the Reader does: the first
// dag-pb file node with links is the entity's root (the path before it is
// made of directories), and each block after it is the next child the
// range covers, depth first. It checks no hash: the node's store checked
// every block, and the client checks everything again, computing the
// windows itself, so a plan that went wrong costs a failed response,
// never a wrong byte. A CAR that leaves the walk (a block it did not
// expect) ends the plan: every block after it goes whole.
type SlicePlan struct {
	rng        *ByteRange
	start, end uint64
	rooted     bool
	lost       bool
	stack      []*frame
}

// NewSlicePlan returns the plan for a response to req, or nil when req
// has no range (every leaf then goes whole).
func NewSlicePlan(req Request) *SlicePlan {
	if req.Range == nil {
		return nil
	}
	p := &SlicePlan{rng: req.Range}
	if len(req.Path) == 0 && req.Root.HashCode == cid.HashIdentity && req.Root.Codec == cid.CodecDagPB {
		// An identity root is never in the CAR either.
		p.root(req.Root, req.Root.Digest)
	}
	return p
}

// Section takes the next section of the plain CAR, c and its block, and
// returns the window [off, off+length) of the block to send as a slice,
// with ok true when the block is a raw leaf of the file the range covers
// only in part.
func (p *SlicePlan) Section(c cid.CID, data []byte) (off, length uint64, ok bool) {
	if p == nil || p.lost {
		return 0, 0, false
	}
	if !p.rooted {
		if c.Codec == cid.CodecDagPB {
			p.root(c, data)
		}
		return 0, 0, false
	}
	ch, pos, found := p.next()
	if !found || !ch.c.Equal(c) {
		p.lost = true
		return 0, 0, false
	}
	if c.Codec == cid.CodecRaw {
		return LeafSlice(pos, uint64(len(data)), p.start, p.end)
	}
	if children := fileNode(c, data); children != nil {
		if len(p.stack) >= maxDepth {
			p.lost = true
			return 0, 0, false
		}
		p.stack = append(p.stack, &frame{children: children, pos: pos})
	}
	return 0, 0, false
}

// root takes a dag-pb block before the entity's root: a file node with
// links is that root.
func (p *SlicePlan) root(c cid.CID, data []byte) {
	n, fs, err := decodePB(c, data)
	if err != nil || fs.Type != unixfs.TFile || len(n.Links) == 0 {
		return
	}
	children, total, err := fileChildren(c, n, fs)
	if err != nil {
		p.lost = true
		return
	}
	start, end, ok := p.rng.resolve(total)
	if !ok {
		p.lost = true
		return
	}
	p.rooted, p.start, p.end = true, start, end
	p.stack = []*frame{{children: children}}
}

// next returns the child the walk loads next from the CAR and its place
// in the file, by the Reader's rule (advance). An identity child is never
// in the CAR (the Reader takes it from its CID): a leaf is passed over, a
// file node's children are walked into.
func (p *SlicePlan) next() (child, uint64, bool) {
	for len(p.stack) > 0 {
		f := p.stack[len(p.stack)-1]
		if f.i >= len(f.children) || f.pos >= p.end {
			p.stack = p.stack[:len(p.stack)-1]
			continue
		}
		ch, pos := f.children[f.i], f.pos
		f.i++
		f.pos += ch.size
		if p.start >= pos+ch.size || pos >= p.end {
			continue
		}
		if ch.c.HashCode != cid.HashIdentity {
			return ch, pos, true
		}
		if ch.c.Codec != cid.CodecDagPB {
			continue
		}
		if children := fileNode(ch.c, ch.c.Digest); children != nil {
			if len(p.stack) >= maxDepth {
				return child{}, 0, false
			}
			p.stack = append(p.stack, &frame{children: children, pos: pos})
		}
	}
	return child{}, 0, false
}

// fileNode returns the children of a dag-pb file node with links, or nil.
func fileNode(c cid.CID, data []byte) []child {
	n, fs, err := decodePB(c, data)
	if err != nil || (fs.Type != unixfs.TFile && fs.Type != unixfs.TRaw) || len(n.Links) == 0 {
		return nil
	}
	children, _, err := fileChildren(c, n, fs)
	if err != nil {
		return nil
	}
	return children
}
