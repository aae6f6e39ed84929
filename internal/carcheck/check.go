package carcheck

import (
	"errors"
	"io"

	"github.com/verity-cdn/verity/internal/car"
	"github.com/verity-cdn/verity/internal/cid"
	"github.com/verity-cdn/verity/internal/unixfs"
)

// DefaultMaxBlockSize is the largest block accepted by default: 1 MiB, as
// go-car and Kubo allow (Verity's importer makes 256 KiB chunks).
const DefaultMaxBlockSize = 1 << 20

// Config limits Check. Zero values are defaults.
type Config struct {
	// MaxBlockSize bounds one block's bytes. Default DefaultMaxBlockSize.
	MaxBlockSize int
}

// Result describes a CAR that passed.
type Result struct {
	Root   cid.CID
	Blocks int   // distinct blocks, the root included
	Bytes  int64 // bytes read from the stream
}

type block struct {
	links []string // cid keys
	seen  bool     // reached from the root
	c     cid.CID
}

// Check reads the CAR from r to its end and verifies it (see the package
// doc). It returns an *Error for a CAR that is not acceptable; read errors
// of r are returned as they are.
func Check(r io.Reader, cfg Config) (Result, error) {
	if cfg.MaxBlockSize <= 0 {
		cfg.MaxBlockSize = DefaultMaxBlockSize
	}
	cr, err := car.NewReader(r, car.Config{MaxSectionSize: cfg.MaxBlockSize + 128})
	if err != nil {
		return Result{}, carErr(err, "")
	}
	roots := cr.Roots()
	if len(roots) != 1 {
		return Result{}, fail(CodeRoots, "", "the header names %d roots; a deploy has exactly one", len(roots))
	}
	root := roots[0]
	blocks := make(map[string]*block)
	var order []string
	for {
		c, data, err := cr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return Result{}, carErr(err, "")
		}
		if len(data) > cfg.MaxBlockSize {
			return Result{}, fail(CodeTooLarge, c.String(), "block of %d bytes is over the %d-byte limit", len(data), cfg.MaxBlockSize)
		}
		if err := c.Verify(data); err != nil {
			var uh *cid.UnknownHashError
			if errors.As(err, &uh) {
				return Result{}, fail(CodeUnsupported, c.String(), "multihash 0x%x is not accepted (use blake3 or sha2-256)", uh.Code)
			}
			return Result{}, fail(CodeHashMismatch, c.String(), "the block's bytes do not hash to its CID")
		}
		key := c.Key()
		if _, dup := blocks[key]; dup {
			return Result{}, fail(CodeDuplicate, c.String(), "the block appears more than once (a CAR holds each block once)")
		}
		b := &block{c: c}
		switch c.Codec {
		case cid.CodecRaw:
		case cid.CodecDagPB:
			n, err := unixfs.DecodeNode(data)
			if err != nil {
				return Result{}, fail(CodeMalformed, c.String(), "dag-pb: %v", err)
			}
			for _, l := range n.Links {
				b.links = append(b.links, l.Hash.Key())
			}
			if c.Equal(root) {
				if err := checkRoot(n, c); err != nil {
					return Result{}, err
				}
			}
		default:
			return Result{}, fail(CodeUnsupported, c.String(), "codec 0x%x is not accepted (UnixFS uses raw and dag-pb)", c.Codec)
		}
		blocks[key] = b
		order = append(order, key)
	}
	rb, ok := blocks[root.Key()]
	if !ok {
		return Result{}, fail(CodeMissingBlock, root.String(), "the root block is not in the CAR")
	}
	// Walk from the root: every link must be present.
	rb.seen = true
	stack := []*block{rb}
	for len(stack) > 0 {
		b := stack[len(stack)-1]
		stack = stack[:len(stack)-1]
		for _, k := range b.links {
			child, ok := blocks[k]
			if !ok {
				lc, _, _ := cid.Decode([]byte(k))
				if lc.HashCode == cid.HashIdentity {
					continue // its bytes are in the CID
				}
				return Result{}, fail(CodeMissingBlock, lc.String(), "linked from %s but not in the CAR", b.c)
			}
			if !child.seen {
				child.seen = true
				stack = append(stack, child)
			}
		}
	}
	for _, k := range order {
		if b := blocks[k]; !b.seen {
			return Result{}, fail(CodeExtraBlock, b.c.String(), "not reachable from the root %s", root)
		}
	}
	return Result{Root: root, Blocks: len(blocks), Bytes: cr.Offset()}, nil
}

// checkRoot accepts a UnixFS directory, HAMT shard or file as the root.
func checkRoot(n unixfs.Node, c cid.CID) error {
	fs, err := unixfs.DecodeData(n.Data)
	if err != nil {
		return fail(CodeBadRoot, c.String(), "the root is not UnixFS: %v", err)
	}
	switch fs.Type {
	case unixfs.TDirectory, unixfs.THAMTShard, unixfs.TFile, unixfs.TRaw:
		return nil
	}
	return fail(CodeBadRoot, c.String(), "the root is a UnixFS %s, not a directory or file", fs.Type)
}

// carErr maps a reader error to an *Error.
func carErr(err error, c string) error {
	switch {
	case errors.Is(err, car.ErrTooLarge):
		return fail(CodeTooLarge, c, "%v", err)
	case errors.Is(err, car.ErrMalformed), errors.Is(err, car.ErrTruncated), errors.Is(err, car.ErrVersion):
		return fail(CodeMalformed, c, "%v", err)
	}
	return err
}
