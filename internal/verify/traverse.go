package verify

import (
	"errors"
	"strings"

	"github.com/verity-cdn/verity/internal/car"
	"github.com/verity-cdn/verity/internal/cid"
	"github.com/verity-cdn/verity/internal/errfmt"
	"github.com/verity-cdn/verity/internal/unixfs"
)

// decodePB decodes a verified dag-pb block and its UnixFS data.
func decodePB(c cid.CID, data []byte) (unixfs.Node, unixfs.FSNode, error) {
	n, err := unixfs.DecodeNode(data)
	if err != nil {
		return unixfs.Node{}, unixfs.FSNode{}, &BlockError{CID: c, Err: ErrMalformed, Detail: err.Error()}
	}
	if !n.HasData {
		return n, unixfs.FSNode{}, &BlockError{CID: c, Err: ErrUnsupported, Detail: "dag-pb node without UnixFS data"}
	}
	fs, err := unixfs.DecodeData(n.Data)
	if err != nil {
		return n, unixfs.FSNode{}, &BlockError{CID: c, Err: ErrMalformed, Detail: err.Error()}
	}
	return n, fs, nil
}

func blockErr(c cid.CID, err error) error {
	var be *BlockError
	if errors.As(err, &be) {
		return err
	}
	sentinel := ErrMalformed
	if errors.Is(err, unixfs.ErrUnsupported) {
		sentinel = ErrUnsupported
	}
	return &BlockError{CID: c, Err: sentinel, Detail: err.Error()}
}

// resolve walks the path, verifies the entity's root block and prepares the
// entity's traversal.
func (r *Reader) resolve() error {
	if !r.req.Root.Defined() {
		return wrapf(ErrBadRequest, "no root CID")
	}
	if len(r.req.Path) > MaxPathSegments {
		return wrapf(ErrBadRequest, "path of %d segments", len(r.req.Path))
	}
	if r.req.Range != nil {
		if err := r.req.Range.validate(); err != nil {
			return err
		}
	}
	if err := r.open(); err != nil {
		return err
	}
	cur := r.req.Root
	for i, seg := range r.req.Path {
		next, found, err := r.lookup(cur, seg)
		if err != nil {
			return err
		}
		if !found {
			return wrapf(ErrNotFound, "%q in %s (/%s)", seg, cur, strings.Join(r.req.Path[:i+1], "/"))
		}
		cur = next
	}
	if !isEmptyIdentity(r.header) && !r.header.Equal(cur) && !r.header.Equal(r.req.Root) {
		return wrapf(ErrMalformed, "CAR root %s is neither the request root nor the entity %s", r.header, cur)
	}
	data, err := r.next(cur)
	if err != nil {
		return err
	}
	r.entity.CID = cur
	if cur.Codec == cid.CodecRaw {
		return r.startFile(uint64(len(data)), nil, data)
	}
	n, fs, err := decodePB(cur, data)
	if err != nil {
		return err
	}
	switch fs.Type {
	case unixfs.TDirectory:
		r.entity.Kind = KindDirectory
		r.dir = map[string][]byte{cur.Key(): data}
		return r.finish()
	case unixfs.THAMTShard:
		r.entity.Kind = KindDirectory
		r.dir = map[string][]byte{cur.Key(): data}
		if err := r.preloadShard(cur, n, fs, 0); err != nil {
			return err
		}
		return r.finish()
	case unixfs.TSymlink:
		r.entity.Kind = KindSymlink
		r.entity.Size = int64(len(fs.Data))
		r.pending = fs.Data
		return r.finish()
	case unixfs.TFile:
		if len(n.Links) == 0 {
			return r.startFile(uint64(len(fs.Data)), nil, fs.Data)
		}
		children, total, err := fileChildren(cur, n, fs)
		if err != nil {
			return err
		}
		size := total
		if fs.HasFileSize {
			if fs.FileSize != total {
				return &BlockError{CID: cur, Err: ErrMalformed, Detail: errfmt.Sprintf("filesize %d, children hold %d", fs.FileSize, total)}
			}
			size = fs.FileSize
		}
		return r.startFile(size, children, nil)
	case unixfs.TRaw:
		if len(n.Links) != 0 {
			return &BlockError{CID: cur, Err: ErrUnsupported, Detail: "UnixFS raw node with links"}
		}
		return r.startFile(uint64(len(fs.Data)), nil, fs.Data)
	default:
		return &BlockError{CID: cur, Err: ErrUnsupported, Detail: "UnixFS " + fs.Type.String()}
	}
}

// lookup reads the directory block dir (and the HAMT shards along the way)
// and finds name in it.
func (r *Reader) lookup(dir cid.CID, name string) (cid.CID, bool, error) {
	return lookupIn(r.next, dir, name)
}

// Lookup finds name in the directory the request resolved to (Entity
// returned KindDirectory), among the directory's blocks this Reader
// verified; it reads nothing more. found is false when the directory has no
// such entry; err is ErrBadRequest when the entity is not a directory. It is
// safe for concurrent use once Entity has returned.
func (r *Reader) Lookup(name string) (c cid.CID, found bool, err error) {
	if r.dir == nil || r.entity.Kind != KindDirectory {
		return cid.CID{}, false, wrapf(ErrBadRequest, "lookup of %q: the entity is not a directory", name)
	}
	get := func(c cid.CID) ([]byte, error) {
		if b, ok := r.dir[c.Key()]; ok {
			return b, nil
		}
		return nil, &BlockError{CID: c, Err: ErrMalformed, Detail: "HAMT shard not in the directory's blocks"}
	}
	return lookupIn(get, r.entity.CID, name)
}

// lookupIn finds name in the directory block dir, reading it and the HAMT
// shards along the way with get.
func lookupIn(get func(cid.CID) ([]byte, error), dir cid.CID, name string) (cid.CID, bool, error) {
	data, err := get(dir)
	if err != nil {
		return cid.CID{}, false, err
	}
	if dir.Codec == cid.CodecRaw {
		return cid.CID{}, false, nil // a raw block has no children
	}
	n, fs, err := decodePB(dir, data)
	if err != nil {
		return cid.CID{}, false, err
	}
	switch fs.Type {
	case unixfs.TDirectory:
		lk, ok := unixfs.LookupDir(n, name)
		return lk.Hash, ok, nil
	case unixfs.THAMTShard:
		hv := unixfs.NewHashBits(name)
		cur := dir
		for {
			sh, err := unixfs.NewShard(n, fs)
			if err != nil {
				return cid.CID{}, false, blockErr(cur, err)
			}
			res, lk, err := sh.Lookup(name, hv)
			if err != nil {
				return cid.CID{}, false, blockErr(cur, err)
			}
			switch res {
			case unixfs.NotFound:
				return cid.CID{}, false, nil
			case unixfs.Found:
				return lk.Hash, true, nil
			}
			cur = lk.Hash
			data, err := get(cur)
			if err != nil {
				return cid.CID{}, false, err
			}
			if cur.Codec != cid.CodecDagPB {
				return cid.CID{}, false, &BlockError{CID: cur, Err: ErrMalformed, Detail: "HAMT child is not dag-pb"}
			}
			if n, fs, err = decodePB(cur, data); err != nil {
				return cid.CID{}, false, err
			}
		}
	default:
		// Files, symlinks and other nodes have no named children.
		return cid.CID{}, false, nil
	}
}

// preloadShard consumes all child shards of a HAMT directory, depth-first in
// link order, as go-unixfsnode's preloading reifier loads them.
func (r *Reader) preloadShard(c cid.CID, n unixfs.Node, fs unixfs.FSNode, depth int) error {
	if depth > maxDepth {
		return &BlockError{CID: c, Err: ErrMalformed, Detail: "HAMT too deep"}
	}
	sh, err := unixfs.NewShard(n, fs)
	if err != nil {
		return blockErr(c, err)
	}
	seen := make(map[string]bool)
	for _, lk := range n.Links {
		if !sh.IsShardLink(lk) {
			continue
		}
		if seen[lk.Hash.Key()] {
			continue // go-unixfsnode caches child shards per parent
		}
		seen[lk.Hash.Key()] = true
		data, err := r.next(lk.Hash)
		if err != nil {
			return err
		}
		r.dir[lk.Hash.Key()] = data
		if lk.Hash.Codec != cid.CodecDagPB {
			return &BlockError{CID: lk.Hash, Err: ErrMalformed, Detail: "HAMT child is not dag-pb"}
		}
		cn, cfs, err := decodePB(lk.Hash, data)
		if err != nil {
			return err
		}
		if err := r.preloadShard(lk.Hash, cn, cfs, depth+1); err != nil {
			return err
		}
	}
	return nil
}

// fileChildren lists a file node's children with the sizes go-unixfsnode
// uses to skip them: the link's Tsize for raw leaves, blocksizes otherwise.
func fileChildren(c cid.CID, n unixfs.Node, fs unixfs.FSNode) ([]child, uint64, error) {
	if len(fs.Data) != 0 {
		return nil, 0, &BlockError{CID: c, Err: ErrUnsupported, Detail: "file node with both data and links"}
	}
	out := make([]child, len(n.Links))
	var total uint64
	for i, lk := range n.Links {
		var size uint64
		switch {
		case lk.Hash.Codec == cid.CodecRaw:
			if !lk.HasTsize {
				return nil, 0, &BlockError{CID: c, Err: ErrUnsupported, Detail: "raw link without Tsize"}
			}
			size = lk.Tsize
		case lk.Hash.Codec == cid.CodecDagPB && i < len(fs.BlockSizes):
			size = fs.BlockSizes[i]
		case lk.Hash.Codec == cid.CodecDagPB:
			return nil, 0, &BlockError{CID: c, Err: ErrUnsupported, Detail: "dag-pb child without blocksize"}
		default:
			return nil, 0, &BlockError{CID: c, Err: ErrUnsupported, Detail: errfmt.Sprintf("child codec 0x%x", lk.Hash.Codec)}
		}
		if total+size < total {
			return nil, 0, &BlockError{CID: c, Err: ErrMalformed, Detail: "file size overflows"}
		}
		total += size
		out[i] = child{c: lk.Hash, size: size}
	}
	if total > 1<<62 {
		return nil, 0, &BlockError{CID: c, Err: ErrMalformed, Detail: "file size too large"}
	}
	return out, total, nil
}

// startFile records the entity as a file of size bytes and prepares the
// range traversal: over children for a multi-block file, or over the single
// block's bytes.
func (r *Reader) startFile(size uint64, children []child, data []byte) error {
	r.entity.Kind = KindFile
	r.entity.Size = int64(size)
	start, end, ok := r.req.Range.resolve(size)
	if !ok {
		return wrapf(ErrBadRequest, "entity-bytes %d:%d select fewer than zero bytes of %d", r.req.Range.From, r.req.Range.To, size)
	}
	r.start, r.end = start, end
	if children == nil {
		r.pending = data[start:end]
		return nil
	}
	r.stack = []*frame{{children: children}}
	return nil
}

// advance verifies blocks until it has bytes for Read or the traversal is
// complete, following go-unixfsnode's reader: a child [pos, pos+size) is
// loaded when start < pos+size and pos < end, depth-first.
func (r *Reader) advance() error {
	for r.leaf != nil || len(r.stack) > 0 {
		if r.leaf != nil {
			if err := r.advanceLeaf(); err != nil || len(r.pending) > 0 {
				return err
			}
			continue
		}
		f := r.stack[len(r.stack)-1]
		if f.i >= len(f.children) || f.pos >= r.end {
			r.stack = r.stack[:len(r.stack)-1]
			continue
		}
		ch := f.children[f.i]
		pos := f.pos
		f.i++
		f.pos += ch.size
		if !(r.start < pos+ch.size && pos < r.end) {
			continue
		}
		if r.opts.Bao && car.BaoSection(ch.c) {
			// A raw leaf in its Bao encoding: released group by group.
			var w window
			if r.opts.Slices {
				w.off, w.len, w.slice = LeafSlice(pos, ch.size, r.start, r.end)
			}
			dec, err := r.openBao(ch.c, int64(ch.size), w)
			if err != nil {
				return err
			}
			r.leaf, r.leafCID, r.leafPos = dec, ch.c, pos
			continue
		}
		data, err := r.next(ch.c)
		if err != nil {
			return err
		}
		if ch.c.Codec == cid.CodecRaw {
			if uint64(len(data)) != ch.size {
				return &BlockError{CID: ch.c, Err: ErrMalformed, Detail: errfmt.Sprintf("raw leaf of %d bytes, parent says %d", len(data), ch.size)}
			}
			r.pending = clip(data, pos, r.start, r.end)
			if len(r.pending) > 0 {
				return nil
			}
			continue
		}
		n, fs, err := decodePB(ch.c, data)
		if err != nil {
			return err
		}
		if fs.Type != unixfs.TFile && fs.Type != unixfs.TRaw {
			return &BlockError{CID: ch.c, Err: ErrMalformed, Detail: "file child of type " + fs.Type.String()}
		}
		if len(n.Links) == 0 {
			if uint64(len(fs.Data)) != ch.size {
				return &BlockError{CID: ch.c, Err: ErrMalformed, Detail: errfmt.Sprintf("leaf of %d bytes, parent says %d", len(fs.Data), ch.size)}
			}
			r.pending = clip(fs.Data, pos, r.start, r.end)
			if len(r.pending) > 0 {
				return nil
			}
			continue
		}
		if len(r.stack) >= maxDepth {
			return &BlockError{CID: ch.c, Err: ErrMalformed, Detail: "file DAG too deep"}
		}
		children, total, err := fileChildren(ch.c, n, fs)
		if err != nil {
			return err
		}
		if total != ch.size || (fs.HasFileSize && fs.FileSize != total) {
			return &BlockError{CID: ch.c, Err: ErrMalformed, Detail: errfmt.Sprintf("node holds %d bytes, parent says %d", total, ch.size)}
		}
		r.stack = append(r.stack, &frame{children: children, pos: pos})
	}
	return r.finish()
}

// advanceLeaf verifies the next chunk group of the leaf being streamed and
// sets pending to its part inside the range. With the leaf's last group
// it counts the whole block verified, before its bytes are read, as a
// plain CAR's block is. The group holding the range's last byte is
// released only once the rest of its block is verified too, so the last
// block of every response is counted (OnBlock: receipts) before the
// reader sees its end.
func (r *Reader) advanceLeaf() error {
	off, g, err := r.leaf.Next()
	if err != nil { // io.EOF included: Done ends every leaf before
		return baoError(err, r.leafCID)
	}
	pos := r.leafPos + off
	r.pending = clip(g, pos, r.start, r.end)
	if pos+uint64(len(g)) >= r.end && !r.leaf.Done() {
		r.tail = append(r.tail[:0], r.pending...) // g is reused by Next
		for !r.leaf.Done() {
			if _, _, err := r.leaf.Next(); err != nil {
				r.pending = nil
				return baoError(err, r.leafCID)
			}
		}
		r.pending = r.tail
	}
	if r.leaf.Done() {
		r.verified(r.leafCID, int(r.leaf.Size()))
		r.leaf = nil
	}
	return nil
}

// clip returns the part of a leaf (or of a chunk group of one) at
// absolute offset pos inside [start, end).
func clip(data []byte, pos, start, end uint64) []byte {
	if end <= pos {
		return nil
	}
	lo, hi := uint64(0), uint64(len(data))
	if start > pos {
		lo = start - pos
	}
	if end < pos+hi {
		hi = end - pos
	}
	if lo >= hi {
		return nil
	}
	return data[lo:hi]
}
