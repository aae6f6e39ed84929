package node

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/ipfs/boxo/blockstore"
	dshelp "github.com/ipfs/boxo/datastore/dshelp"
	"github.com/ipfs/boxo/ipld/merkledag"
	blocks "github.com/ipfs/go-block-format"
	"github.com/ipfs/go-cid"
	datastore "github.com/ipfs/go-datastore"
	flatfs "github.com/ipfs/go-ds-flatfs"
	car "github.com/ipld/go-car/v2"
	"github.com/multiformats/go-multihash"

	"github.com/verity-cdn/verity/internal/carcheck"
	vcid "github.com/verity-cdn/verity/internal/cid"
)

const (
	blocksDir = "blocks"
	tmpDir    = "tmp"
)

var shardFunc = flatfs.NextToLast(2)

// openStore opens (creating if needed) the flatfs datastore under
// dir/blocks, and the blockstore over it. flatfs does not fsync each file
// it writes: whoever writes blocks syncs the store once after (syncStore)
// before anything relies on them.
//
// Every block read is checked against its CID before it is served: a block
// damaged on disk is refused (ErrCorruptBlock), counted and logged, never
// sent. onCorrupt is called for each such block.
func openStore(dir string, onCorrupt func(cid.Cid)) (*flatfs.Datastore, blockstore.Blockstore, error) {
	ds, err := flatfs.CreateOrOpen(filepath.Join(dir, blocksDir), shardFunc, false)
	if err != nil {
		return nil, nil, fmt.Errorf("node: open blockstore: %w", err)
	}
	bs := blockstore.NewIdStore(&checkedBlockstore{
		Blockstore: blockstore.NewBlockstore(ds, blockstore.NoPrefix()),
		onCorrupt:  onCorrupt,
	})
	return ds, bs, nil
}

// checkedBlockstore verifies each block it reads against its CID.
type checkedBlockstore struct {
	blockstore.Blockstore
	onCorrupt func(cid.Cid)
}

var _ blockstore.Blockstore = (*checkedBlockstore)(nil)

func (b *checkedBlockstore) Get(ctx context.Context, c cid.Cid) (blocks.Block, error) {
	blk, err := b.Blockstore.Get(ctx, c)
	if err != nil {
		return nil, err
	}
	sum, err := c.Prefix().Sum(blk.RawData())
	if err != nil {
		return nil, fmt.Errorf("node: check block %s: %w", c, err)
	}
	if !sum.Equals(c) {
		if b.onCorrupt != nil {
			b.onCorrupt(c)
		}
		return nil, &CorruptBlockError{CID: c}
	}
	return blk, nil
}

// clearTmp removes what imports left in DataDir/tmp: CARs staged by a
// node that was killed while importing or pinning, which nothing else
// would ever remove. Only imports write there, and none runs yet.
func (n *Node) clearTmp() error {
	dir := filepath.Join(n.cfg.DataDir, tmpDir)
	ents, err := os.ReadDir(dir)
	if err != nil {
		return fmt.Errorf("node: data dir: %w", err)
	}
	var files int
	var bytes int64
	for _, e := range ents {
		if fi, err := e.Info(); err == nil {
			bytes += fi.Size()
		}
		if err := os.RemoveAll(filepath.Join(dir, e.Name())); err != nil {
			return fmt.Errorf("node: clear %s: %w", dir, err)
		}
		files++
	}
	if files > 0 {
		n.log.Info("removed imports left unfinished by the last run", "files", files, "bytes", bytes)
	}
	return nil
}

// BlockPath returns the path of the file holding block c. The file may not
// exist.
func (n *Node) BlockPath(c cid.Cid) (string, error) {
	if !c.Defined() {
		return "", errors.New("node: undefined CID")
	}
	key := dshelp.MultihashToDsKey(c.Hash()).String()[1:]
	return filepath.Join(n.cfg.DataDir, blocksDir, shardFunc.Func()(key), key+".data"), nil
}

// Has reports whether the block c is stored.
func (n *Node) Has(ctx context.Context, c cid.Cid) (bool, error) {
	return n.bs.Has(ctx, c)
}

// ImportCAR reads a CAR (v1 or v2) from r, verifies every block against its
// CID and stores the blocks. It is all or nothing with respect to content:
// if any block is malformed, too large or does not match its CID, nothing is
// stored and the error wraps ErrBadCAR. It returns the CAR's roots.
//
// The CAR is staged in DataDir/tmp while it is verified, so memory use does
// not grow with its size.
func (n *Node) ImportCAR(ctx context.Context, r io.Reader) ([]cid.Cid, error) {
	return n.importCAR(ctx, r, cid.Undef, cid.Undef)
}

// importCAR is ImportCAR; with dag defined the CAR comes from a source
// trusted for nothing (another node) and must be dag's traversal: its only
// root is dag, and every block is dag or a block linked (as often as
// linked) from one before it, so an endless or stuffed CAR is refused
// while it is staged, before it can fill the disk. With whole defined, the
// CAR must be exactly whole's complete DAG, checked by the checker the
// gateway applies to deploys (internal/carcheck: one root, every block
// once, nothing missing, nothing extra) as it streams in, before anything
// is stored.
//
// The CAR is parsed and verified once, as it arrives, while its bytes are
// staged in DataDir/tmp; the staged copy (still in the page cache) is then
// moved into the store, whose files are written without an fsync each, and
// made durable by one sync of the store (syncStore) before importCAR
// returns, so a pin recorded after it never names a block that is not on
// disk (docs/operating-a-node.md, "Pinning and durability").
func (n *Node) importCAR(ctx context.Context, r io.Reader, dag, whole cid.Cid) ([]cid.Cid, error) {
	if n.closed.Load() {
		return nil, ErrClosed
	}
	n.countMu.RLock() // after the background count (blockcount.go)
	defer n.countMu.RUnlock()
	f, err := os.CreateTemp(filepath.Join(n.cfg.DataDir, tmpDir), "import-*.car")
	if err != nil {
		return nil, fmt.Errorf("node: import: %w", err)
	}
	defer os.Remove(f.Name())
	defer f.Close()

	// Pass 1, over the stream: verify every block while staging the bytes.
	// With whole defined the checker hashes each block (BLAKE3 or
	// sha2-256 only), so go-car does not hash it again.
	opts := []car.Option{car.MaxAllowedSectionSize(uint64(n.cfg.MaxBlockSize) + 128)}
	readOpts := opts
	if whole.Defined() {
		readOpts = append(opts, car.WithTrustedCAR(true))
	}
	br, err := car.NewBlockReader(io.TeeReader(r, f), readOpts...)
	if err != nil {
		return nil, fmt.Errorf("%w: header: %v", ErrBadCAR, err)
	}
	roots := br.Roots
	var owed map[string]int // dag's blocks still expected, by multihash
	if dag.Defined() {
		if len(roots) != 1 || !roots[0].Equals(dag) {
			return nil, fmt.Errorf("%w: the CAR's roots are %v", ErrBadCAR, roots)
		}
		owed = map[string]int{string(dag.Hash()): 1}
	}
	var chk *carcheck.Checker
	if whole.Defined() {
		if chk, err = newChecker(roots, n.cfg.MaxBlockSize); err != nil {
			return nil, err
		}
	}
	count := 0
	for {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		blk, err := br.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("%w: block %d: %v", ErrBadCAR, count, err)
		}
		if len(blk.RawData()) > n.cfg.MaxBlockSize {
			return nil, fmt.Errorf("%w: block %s is larger than %d bytes", ErrBadCAR, blk.Cid(), n.cfg.MaxBlockSize)
		}
		if owed != nil {
			if err := takeOwed(owed, blk); err != nil {
				return nil, err
			}
		}
		if chk != nil {
			if err := checkBlock(chk, blk); err != nil {
				return nil, err
			}
		}
		count++
	}
	if chk != nil {
		res, err := chk.Finish()
		if err != nil {
			return nil, fmt.Errorf("%w: %w", ErrBadCAR, err)
		}
		if !bytes.Equal(res.Root.Bytes(), whole.Bytes()) {
			return nil, fmt.Errorf("%w: the CAR's root is %s, not %s", ErrBadCAR, res.Root, whole)
		}
	}

	// Pass 2: store from the staged copy, checked in pass 1 (every block
	// is checked again whenever it is read from the store).
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		return nil, fmt.Errorf("node: import: %w", err)
	}
	br, err = car.NewBlockReader(bufio.NewReaderSize(f, 1<<20), append(opts, car.WithTrustedCAR(true))...)
	if err != nil {
		return nil, fmt.Errorf("node: import: %w", err)
	}
	added, paths, err := n.storeBlocks(ctx, br)
	if err != nil {
		return nil, err
	}
	// Drop the staged copy first, so the sync does not write it out too.
	f.Close()
	os.Remove(f.Name())
	if err := n.syncStore(paths); err != nil {
		return nil, fmt.Errorf("node: import: sync the store: %w", err)
	}
	n.metrics.addBlocks(added)
	n.log.Info("imported CAR", "roots", roots, "blocks", count, "new", added)
	return roots, nil
}

// storeBlocks writes the blocks br reads that the store does not hold
// into it, in batches, without syncing them (syncStore does, once; the
// disk starts writing each batch meanwhile, startWriteback). A
// block is held when its file exists with the block's size: one stat, no
// read; a file of another size (a write a power loss cut short) is
// rewritten. It returns how many blocks it wrote and their files.
func (n *Node) storeBlocks(ctx context.Context, br *car.BlockReader) (int, []string, error) {
	const batchBytes = 16 << 20
	var (
		b      datastore.Batch
		queued int
		added  int

		flushed int // paths[:flushed] are committed
		paths   []string
	)
	flush := func() error {
		if b == nil {
			return nil
		}
		if err := b.Commit(ctx); err != nil {
			return fmt.Errorf("node: import: store: %w", err)
		}
		startWriteback(paths[flushed:])
		b, queued, flushed = nil, 0, len(paths)
		return nil
	}
	for {
		if err := ctx.Err(); err != nil {
			return 0, nil, err
		}
		blk, err := br.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return 0, nil, fmt.Errorf("node: import: re-read: %w", err)
		}
		c := blk.Cid()
		if c.Prefix().MhType == multihash.IDENTITY {
			continue // the store holds identity CIDs implicitly
		}
		key := dshelp.MultihashToDsKey(c.Hash())
		if size, err := n.ds.GetSize(ctx, key); err == nil && size == len(blk.RawData()) {
			continue
		}
		if b == nil {
			if b, err = n.ds.Batch(ctx); err != nil {
				return 0, nil, fmt.Errorf("node: import: store: %w", err)
			}
		}
		if err := b.Put(ctx, key, blk.RawData()); err != nil {
			return 0, nil, fmt.Errorf("node: import: store: %w", err)
		}
		added++
		if p, err := n.BlockPath(c); err == nil {
			paths = append(paths, p)
		}
		if queued += len(blk.RawData()); queued >= batchBytes {
			if err := flush(); err != nil {
				return 0, nil, err
			}
		}
	}
	if err := flush(); err != nil {
		return 0, nil, err
	}
	return added, paths, nil
}

// newChecker starts a carcheck.Checker on a CAR with these roots.
func newChecker(roots []cid.Cid, maxBlock int) (*carcheck.Checker, error) {
	cr := make([]vcid.CID, len(roots))
	for i, r := range roots {
		c, _, err := vcid.Decode(r.Bytes())
		if err != nil {
			return nil, fmt.Errorf("%w: root %s: %v", ErrBadCAR, r, err)
		}
		cr[i] = c
	}
	chk, err := carcheck.NewChecker(cr, carcheck.Config{MaxBlockSize: maxBlock})
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrBadCAR, err)
	}
	return chk, nil
}

// checkBlock adds blk to chk.
func checkBlock(chk *carcheck.Checker, blk blocks.Block) error {
	c, _, err := vcid.Decode(blk.Cid().Bytes())
	if err != nil {
		return fmt.Errorf("%w: %s: %v", ErrBadCAR, blk.Cid(), err)
	}
	if err := chk.Add(c, blk.RawData()); err != nil {
		return fmt.Errorf("%w: %w", ErrBadCAR, err)
	}
	return nil
}

// takeOwed accounts for blk in the traversal of an untrusted CAR: blk must
// be owed (the root, or linked from a block before it); its links are owed
// in turn.
func takeOwed(owed map[string]int, blk blocks.Block) error {
	k := string(blk.Cid().Hash())
	if owed[k] == 0 {
		return fmt.Errorf("%w: block %s is not linked from the root (or was sent more often than linked)", ErrBadCAR, blk.Cid())
	}
	if owed[k]--; owed[k] == 0 {
		delete(owed, k)
	}
	if blk.Cid().Prefix().Codec != cid.DagProtobuf {
		return nil
	}
	nd, err := merkledag.DecodeProtobuf(blk.RawData())
	if err != nil {
		return fmt.Errorf("%w: %s: %v", ErrBadCAR, blk.Cid(), err)
	}
	for _, l := range nd.Links() {
		owed[string(l.Cid.Hash())]++
	}
	return nil
}
