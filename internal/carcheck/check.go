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
	// Partial accepts links to blocks the CAR does not hold: the CAR is
	// part of a DAG whose other parts are held elsewhere (a bucket root's
	// directory blocks, without the objects). Every block it holds must
	// still be reachable from the root through blocks it holds.
	Partial bool
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
	cr, err := car.NewReader(r, car.Config{MaxSectionSize: cfg.maxBlock() + 128})
	if err != nil {
		return Result{}, carErr(err, "")
	}
	ch, err := NewChecker(cr.Roots(), cfg)
	if err != nil {
		return Result{}, err
	}
	for {
		c, data, err := cr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return Result{}, carErr(err, "")
		}
		if err := ch.Add(c, data); err != nil {
			return Result{}, err
		}
	}
	res, err := ch.Finish()
	if err != nil {
		return Result{}, err
	}
	res.Bytes = cr.Offset()
	return res, nil
}

func (cfg Config) maxBlock() int {
	if cfg.MaxBlockSize <= 0 {
		return DefaultMaxBlockSize
	}
	return cfg.MaxBlockSize
}

// Checker applies Check's rules to a CAR whose sections the caller reads
// itself, so a CAR can be checked while it is stored, in one pass: the
// per-block rules (hash, codec, size, duplicates, a well-formed root) as
// each block is added, the whole-DAG rules (nothing missing, nothing
// extra) at Finish. Nothing read may be used as the DAG until Finish
// returns nil.
type Checker struct {
	cfg    Config
	root   cid.CID
	blocks map[string]*block
	order  []string
}

// NewChecker starts checking a CAR whose header names roots.
func NewChecker(roots []cid.CID, cfg Config) (*Checker, error) {
	if len(roots) != 1 {
		return nil, fail(CodeRoots, "", "the header names %d roots; a deploy has exactly one", len(roots))
	}
	cfg.MaxBlockSize = cfg.maxBlock()
	return &Checker{cfg: cfg, root: roots[0], blocks: make(map[string]*block)}, nil
}

// Add checks the next section of the CAR: block c with bytes data.
func (ch *Checker) Add(c cid.CID, data []byte) error {
	if len(data) > ch.cfg.MaxBlockSize {
		return fail(CodeTooLarge, c.String(), "block of %d bytes is over the %d-byte limit", len(data), ch.cfg.MaxBlockSize)
	}
	if err := c.Verify(data); err != nil {
		var uh *cid.UnknownHashError
		if errors.As(err, &uh) {
			return fail(CodeUnsupported, c.String(), "multihash 0x%x is not accepted (use blake3 or sha2-256)", uh.Code)
		}
		return fail(CodeHashMismatch, c.String(), "the block's bytes do not hash to its CID")
	}
	key := c.Key()
	if _, dup := ch.blocks[key]; dup {
		return fail(CodeDuplicate, c.String(), "the block appears more than once (a CAR holds each block once)")
	}
	b := &block{c: c}
	switch c.Codec {
	case cid.CodecRaw:
	case cid.CodecDagPB:
		n, err := unixfs.DecodeNode(data)
		if err != nil {
			return fail(CodeMalformed, c.String(), "dag-pb: %v", err)
		}
		for _, l := range n.Links {
			b.links = append(b.links, l.Hash.Key())
		}
		if c.Equal(ch.root) {
			if err := checkRoot(n, c); err != nil {
				return err
			}
		}
	default:
		return fail(CodeUnsupported, c.String(), "codec 0x%x is not accepted (UnixFS uses raw and dag-pb)", c.Codec)
	}
	ch.blocks[key] = b
	ch.order = append(ch.order, key)
	return nil
}

// Finish checks the DAG the added blocks make: the root is present, every
// block it links (transitively) too, and every block is reachable from
// it. Result.Bytes is left zero.
func (ch *Checker) Finish() (Result, error) {
	root, blocks := ch.root, ch.blocks
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
				if lc.HashCode == cid.HashIdentity || ch.cfg.Partial {
					continue // its bytes are in the CID, or held elsewhere
				}
				return Result{}, fail(CodeMissingBlock, lc.String(), "linked from %s but not in the CAR", b.c)
			}
			if !child.seen {
				child.seen = true
				stack = append(stack, child)
			}
		}
	}
	for _, k := range ch.order {
		if b := blocks[k]; !b.seen {
			return Result{}, fail(CodeExtraBlock, b.c.String(), "not reachable from the root %s", root)
		}
	}
	return Result{Root: root, Blocks: len(blocks)}, nil
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
